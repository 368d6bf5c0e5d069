// landbc::Emulator — the C++ front of a landbc bundle.
//
// A thin front (DESIGN.md, principle 1): it checks the bundle, validates
// inputs against the variables of the manifest, converts them to tensors on
// the device, and reads and writes restart files. Every bit of model logic is
// in the TorchScript stepper it loads, the same file the Python
// BoundaryConditionEmulator loads, so both give bit-identical results.
//
//   landbc::Emulator emu("weights/demo", "cpu", "float32");
//   emu.initialise(landbc::Grid::from_box(46, 50, 6, 10, emu.res(), emu.coarse_factor()),
//                  statics, priors, 2014, 12, "forward");
//   landbc::TensorMap out = emu.step(forcing);   // fields of 2015-01 on the device
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace landbc {

// The status codes of the C ABI (landbc.h), carried by every landbc::Error.
enum class Status : int {
  ok = 0,
  argument = 1,
  io = 2,
  bundle = 3,
  device = 4,
  state = 5,
  internal = 6,
};

class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  Status status() const noexcept { return status_; }

 private:
  Status status_;
};

using TensorMap = std::map<std::string, torch::Tensor>;

// A lat-lon box at a resolution; rows north to south, columns west to east.
// Mirrors emulator/grid.py: `origin` is the global (row, col) of the
// north-west pixel on the lattice at this resolution.
struct Grid {
  double lat_south = 0, lat_north = 0, lon_west = 0, lon_east = 0, res = 0;
  int64_t coarse_factor = 1;
  int64_t ny = 0, nx = 0, origin_row = 0, origin_col = 0;

  // Validates like the Python Grid (whole cells, coarse-aligned); throws Error(argument).
  static Grid from_box(double lat_south, double lat_north, double lon_west, double lon_east,
                       double res, int64_t coarse_factor);
  // The JSON object the restart files carry (the keys of Python's Grid.to_dict()).
  std::string to_json() const;
  static Grid from_json(const std::string& text);
  int64_t coarse_ny() const { return ny / coarse_factor; }
  int64_t coarse_nx() const { return nx / coarse_factor; }
};

// One variable as the manifest describes it.
struct Variable {
  std::string name, long_name, units, role, grid, dtype;  // role: static|forcing|state|derived
  double valid_min = 0, valid_max = 0;
  std::vector<std::string> channels;
  bool is_class = false;  // integer class codes (flag_values in the manifest)
  std::vector<int64_t> shape(const Grid& g) const;
  torch::ScalarType scalar_type() const;
};

class Emulator {
 public:
  // Open a bundle: manifest parsed, every sha256 checked, catalog of variables
  // read. device: "cpu", "cuda", "cuda:N"; dtype of the nets: "float32" or "bfloat16".
  explicit Emulator(const std::string& bundle_dir, const std::string& device = "cpu",
                    const std::string& dtype = "float32");
  ~Emulator();
  Emulator(Emulator&&) noexcept;
  Emulator& operator=(Emulator&&) noexcept;
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  // -- the bundle
  const std::string& bundle_name() const;
  const std::string& bundle_dir() const;
  double res() const;
  int64_t coarse_factor() const;
  std::vector<std::string> directions() const;
  const std::vector<Variable>& variables() const;  // manifest order
  std::vector<const Variable*> variables(const std::string& role) const;
  const Variable& variable(const std::string& name) const;  // throws Error(argument)
  torch::Device device() const;
  torch::ScalarType dtype() const;

  // Checks an input against its variable (shape on `grid`, finite, range, class
  // codes) and returns it as the variable's dtype on the device: no copy when
  // it already is. Throws Error(argument) naming the variable.
  torch::Tensor validate(const Variable& var, const torch::Tensor& value, const Grid& grid) const;

  // -- state
  void initialise(const Grid& grid, const TensorMap& statics, const TensorMap& priors, int year,
                  int month, const std::string& direction = "forward");
  bool initialised() const;
  const Grid& grid() const;  // throws Error(state) before initialise
  const std::string& direction() const;
  std::pair<int, int> time() const;       // month of the current state
  std::pair<int, int> next_time() const;  // month the next step produces
  TensorMap state() const;                // statics, priors, time, origin, direction
  TensorMap outputs() const;              // fields of the current month (copies)

  // Advance one month; forcing valid at next_time(). Returns the new month's
  // fields (lu, lc, lai and the derived IFS fields) on the device.
  TensorMap step(const TensorMap& forcing);

  // -- a block of a decomposed domain (MPI): the state is the block and a halo of
  // its neighbours' data (emulator/stepper.py, set_halo). Its steps run stage by
  // stage, the host filling the halo of each stage's field from the neighbours.
  int64_t stride() const;      // the tile lattice step (px): cuts lie on its multiples;
                               // both known before initialise (to decompose a domain)
  int64_t halo_width() const;  // the halo (px) a cut side needs
  void set_halo(int64_t top, int64_t bottom, int64_t left, int64_t right);
  std::vector<std::string> stages() const;  // of the next step: lu, lc, lai or lai
  // Runs `stage` (in order) on the block; after the last one the month is done
  // and outputs() holds it. Forcing as for step().
  void run_stage(const TensorMap& forcing, const std::string& stage);
  torch::Tensor field(const std::string& name) const;  // lu, lc or lai: the whole array
  void fill_halo(const std::string& name, const torch::Tensor& field);

  // -- restarts (safetensors, the format of the Python API)
  void save_restart(const std::string& path) const;
  void load_restart(const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Minimal safetensors I/O (emulator/safetensors.py is the Python twin).
void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata);
std::pair<TensorMap, std::map<std::string, std::string>> load_safetensors(const std::string& path);
// The "__metadata__" of a safetensors file, reading only its header.
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

// Cast a stepper's nets to the compute dtype (float32 or bfloat16) in channels_last
// memory format, as both fronts do after loading (bundle.load_stepper in Python).
void prepare_nets(torch::jit::Module& stepper, torch::ScalarType dtype);

// Hex sha256 of a file (OpenSSL); throws Error(io) if unreadable.
std::string sha256_file(const std::string& path);
// Hex sha256 of bytes in memory.
std::string sha256_bytes(const std::string& bytes);

const char* version();

}  // namespace landbc
