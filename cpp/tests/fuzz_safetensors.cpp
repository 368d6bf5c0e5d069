// The fuzz driver of the safetensors reader (`make fuzz`, tests/fuzz_safetensors.py):
// reads file paths on stdin, one a line, and for each runs load_safetensors_metadata
// and load_safetensors, then prints one line:
//
//   OK <tensors> <bytes>       the file was read
//   ERR <status> <message>     refused with a landbc::Error (the expected outcome)
//   BUG <message>              any other exception: a defect of the reader
//
// A crash, a hang or (under AddressSanitizer) a memory error or a leak is seen by the
// parent process: no line, a timeout, or a non-zero exit status after stdin closes.
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>

#include "landbc/emulator.hpp"

namespace {

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::cout << "READY" << std::endl;
  std::string path;
  while (std::getline(std::cin, path)) {
    try {
      const auto meta = landbc::load_safetensors_metadata(path);
      const auto [tensors, metadata] = landbc::load_safetensors(path);
      int64_t bytes = 0;
      for (const auto& [name, t] : tensors)
        bytes += t.numel() * static_cast<int64_t>(t.element_size());
      if (metadata != meta) throw std::logic_error("the two readers disagree on __metadata__");
      std::cout << "OK " << tensors.size() << " " << bytes << std::endl;
    } catch (const landbc::Error& e) {
      std::cout << "ERR " << static_cast<int>(e.status()) << " " << one_line(e.what()) << std::endl;
    } catch (const std::exception& e) {
      std::cout << "BUG " << one_line(e.what()) << std::endl;
    } catch (...) {
      std::cout << "BUG unknown exception" << std::endl;
    }
  }
  return 0;
}
