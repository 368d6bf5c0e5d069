// landbc_host_cpp — a small "Earth-system model" in C++ that takes its land
// boundary conditions (LU, LC, LAI and the IFS vegetation fields) from landbc,
// in-process, through the C++ API (landbc::Emulator, landbc/emulator.hpp).
// The same program as host.f90 (which uses the C ABI from Fortran): the same
// arguments, inputs, restart behaviour and output text.
//
//   landbc_host_cpp INPUT_DIR [OUTPUT_DIR [RESTART_FILE]]
//
// INPUT_DIR holds host.nml (namelist &landbc_host) and the raw fields written by
// `landbc host-inputs` (coupler/hostfiles.py): static/<name>.bin, prior/<name>.bin
// and forcing/<NNN>/<name>.bin, little-endian, row-major, rows north to south.
//
// The run starts from the priors at (year, month) and steps nsteps months in
// `direction`; after step restart_step it writes OUTPUT_DIR/restart_<NNN>.safetensors
// (OUTPUT_DIR defaults to INPUT_DIR and must exist). With RESTART_FILE it resumes
// instead: the restart's month says which step comes next.
//
// One line per step on standard output:
//
//   step 001 2001-01 lai 6.924681877E-01 cvh ... cvl ... lai_hv ... lai_lv ... lu_sum N lc_sum N
//
// (means over all pixels, summed in double precision in memory order; sums of the
// class codes), then "done <nsteps> steps". Any failure: a message on standard
// error and exit status 1.
#include <landbc/emulator.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>

namespace {

// A failure of the host itself (not of landbc).
struct HostError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The &landbc_host namelist as key -> value text: one `key = value` per line,
// quotes stripped (the files `landbc host-inputs` writes; not a general parser).
std::map<std::string, std::string> read_namelist(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw HostError("cannot open " + path);
  auto strip = [](std::string s) {
    const char* ws = " \t\r\n,";
    s.erase(0, s.find_first_not_of(ws));
    s.erase(s.find_last_not_of(ws) + 1);
    return s;
  };
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    line = strip(line);
    if (line.empty() || line[0] == '&' || line[0] == '/' || line[0] == '!') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) throw HostError(path + ": expected 'key = value', found " + line);
    std::string value = strip(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '\'' || value.front() == '"'))
      value = value.substr(1, value.size() - 2);
    out[strip(line.substr(0, eq))] = value;
  }
  return out;
}

const std::string& key(const std::map<std::string, std::string>& nml, const std::string& k) {
  const auto it = nml.find(k);
  if (it == nml.end()) throw HostError("host.nml: no value for " + k);
  return it->second;
}

// Months since year 0 (month arithmetic in either direction).
int month_index(int year, int month) { return 12 * year + month - 1; }

std::string month_str(int year, int month) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d", year, month);
  return buf;
}

std::string step_tag(int k) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%03d", k);
  return buf;
}

// Refills `t` (contiguous, on the CPU) in place from a raw file of exactly its size.
void read_into(torch::Tensor& t, const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw HostError("cannot open " + path);
  const auto bytes = static_cast<std::int64_t>(t.numel() * t.element_size());
  if (static_cast<std::int64_t>(in.tellg()) != bytes)
    throw HostError(path + ": expected " + std::to_string(bytes) + " bytes, found " +
                    std::to_string(static_cast<std::int64_t>(in.tellg())));
  in.seekg(0);
  if (!in.read(static_cast<char*>(t.data_ptr()), bytes)) throw HostError("cannot read " + path);
}

// One zero tensor per variable of `role`, shaped and typed as the bundle says.
landbc::TensorMap allocate(const landbc::Emulator& emu, const std::string& role,
                           const landbc::Grid& grid) {
  landbc::TensorMap out;
  for (const landbc::Variable* v : emu.variables(role))
    out[v->name] = torch::zeros(v->shape(grid), torch::dtype(v->scalar_type()));
  return out;
}

void read_all(landbc::TensorMap& fields, const std::string& dir) {
  for (auto& [name, t] : fields) read_into(t, dir + "/" + name + ".bin");
}

// Mean added in memory order in double precision (as landbc_host_f).
std::string mean_str(const torch::Tensor& field) {
  const torch::Tensor t = field.to(torch::kCPU, torch::kFloat32).contiguous();
  const float* p = t.data_ptr<float>();
  double s = 0;
  for (std::int64_t i = 0; i < t.numel(); ++i) s += static_cast<double>(p[i]);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9E", s / static_cast<double>(t.numel()));
  return buf;
}

std::int64_t class_sum(const torch::Tensor& field) {
  return field.to(torch::kCPU, torch::kInt64).sum().item<std::int64_t>();
}

int run(int argc, char** argv) {
  if (argc < 2 || argc > 4)
    throw HostError("usage: landbc_host_cpp INPUT_DIR [OUTPUT_DIR [RESTART_FILE]]");
  const std::string indir = argv[1];
  const std::string outdir = argc >= 3 ? argv[2] : indir;
  const std::string restart_file = argc >= 4 ? argv[3] : "";

  const auto nml = read_namelist(indir + "/host.nml");
  const std::string bundle = key(nml, "bundle"), direction = key(nml, "direction");
  const int year = std::stoi(key(nml, "year")), month = std::stoi(key(nml, "month"));
  const int nsteps = std::stoi(key(nml, "nsteps"));
  const int restart_step = std::stoi(key(nml, "restart_step"));
  if (direction != "forward" && direction != "backward")
    throw HostError("host.nml: direction must be 'forward' or 'backward', found '" + direction +
                    "'");
  const int sign = direction == "forward" ? 1 : -1;

  // -- open the bundle; start from the priors or from a restart
  landbc::Emulator emu(bundle, "cpu", "float32");
  int first = 1;
  if (restart_file.empty()) {
    const landbc::Grid grid =
        landbc::Grid::from_box(std::stod(key(nml, "lat_south")), std::stod(key(nml, "lat_north")),
                               std::stod(key(nml, "lon_west")), std::stod(key(nml, "lon_east")),
                               emu.res(), emu.coarse_factor());
    landbc::TensorMap statics = allocate(emu, "static", grid);
    landbc::TensorMap priors = allocate(emu, "state", grid);
    read_all(statics, indir + "/static");
    read_all(priors, indir + "/prior");
    emu.initialise(grid, statics, priors, year, month, direction);
  } else {
    emu.load_restart(restart_file);
    const auto [ry, rm] = emu.time();
    if (emu.direction() != direction)
      throw HostError(restart_file + ": restart direction is " + emu.direction() + ", not " +
                      direction);
    first = sign * (month_index(ry, rm) - month_index(year, month)) + 1;
    if (first < 1 || first > nsteps + 1)
      throw HostError(restart_file + ": restart month " + month_str(ry, rm) +
                      " is not a step of this run");
  }

  // -- forcing: allocated once, refilled in place every step
  landbc::TensorMap forcing = allocate(emu, "forcing", emu.grid());
  for (int k = first; k <= nsteps; ++k) {
    const std::string tag = step_tag(k);
    read_all(forcing, indir + "/forcing/" + tag);
    const landbc::TensorMap out = emu.step(forcing);
    const auto [y, m] = emu.time();
    if (month_index(y, m) != month_index(year, month) + sign * k)
      throw HostError("step " + tag + " produced " + month_str(y, m) + ", not the expected month");
    std::cout << "step " << tag << ' ' << month_str(y, m);
    for (const char* name : {"lai", "cvh", "cvl", "lai_hv", "lai_lv"})
      std::cout << ' ' << name << ' ' << mean_str(out.at(name));
    std::cout << " lu_sum " << class_sum(out.at("lu")) << " lc_sum " << class_sum(out.at("lc"))
              << '\n';
    if (k == restart_step) emu.save_restart(outdir + "/restart_" + tag + ".safetensors");
  }
  std::cout << "done " << nsteps << " steps" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const landbc::Error& e) {
    std::cout.flush();
    std::cerr << "landbc_host_cpp: landbc error " << static_cast<int>(e.status()) << ": "
              << e.what() << std::endl;
  } catch (const std::exception& e) {  // HostError, std::stoi on a bad namelist value, ...
    std::cout.flush();
    std::cerr << "landbc_host_cpp: " << e.what() << std::endl;
  }
  return 1;
}
