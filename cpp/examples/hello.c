/* hello.c: the smallest C host. Opens a bundle and lists its variables with
 * units, as the manifest gives them. Built by ctest with pkg-config only:
 *
 *   cc hello.c $(pkg-config --cflags --libs landbc) -o hello && ./hello weights/demo
 */
#include <landbc.h>
#include <stdio.h>

int main(int argc, char** argv) {
  static const char* roles[] = {"", "static", "forcing", "state", "derived"};
  landbc_emulator* h = NULL;
  if (argc != 2) {
    fprintf(stderr, "usage: %s BUNDLE\n", argv[0]);
    return 2;
  }
  if (landbc_open(argv[1], "cpu", "float32", &h) != LANDBC_OK) {
    fprintf(stderr, "hello: %s\n", landbc_last_error());
    return 1;
  }
  printf("landbc %s, bundle %s\n", landbc_version(), argv[1]);
  for (int role = LANDBC_STATIC; role <= LANDBC_DERIVED; role++) {
    int n = 0;
    landbc_variable_count(h, role, &n);
    for (int i = 0; i < n; i++) {
      char name[64], units[64];
      if (landbc_variable_name(h, role, i, name, sizeof name) != LANDBC_OK ||
          landbc_variable_units(h, name, units, sizeof units) != LANDBC_OK) {
        fprintf(stderr, "hello: %s\n", landbc_last_error());
        return 1;
      }
      printf("%-8s %-10s [%s]\n", roles[role], name, units);
    }
  }
  return landbc_close(&h);
}
