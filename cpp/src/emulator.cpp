// landbc::Emulator: bundle checks, input validation, device placement and
// restart files around the TorchScript stepper (the twin of emulator/api.py
// and emulator/bundle.py; the model logic is all in the stepper).
#include <openssl/evp.h>

#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#if defined(__GLIBC__)
#include <malloc.h>  // malloc_trim
#endif

#include "landbc/emulator.hpp"
#include "messages.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace landbc {

const char* version() { return LANDBC_VERSION; }  // project(VERSION) in CMakeLists.txt

namespace {

constexpr int kFormatVersion = 1;
const char* const kRestartFormat = "landbc-restart";
const char* const kRestartVersion = "1";
const char* const kRoles[] = {"static", "forcing", "state", "derived"};

std::string stepper_file(const std::string& direction) { return "stepper_" + direction + ".pt"; }

std::string names_str(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", '" : "'") + names[i] + "'";
  return out + "]";
}

std::string num_str(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

// Hand the heap's free pages back to the system after each step (glibc only): a
// step's transients vary in size and glibc keeps the holes they leave, so over
// 1850-2100 the resident set crept up by 3 % without this (`make soak`;
// emulator/api.py release_free_memory does the same for Python, and says the cost).
void release_free_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

// The message of a TorchScript exception without its interpreter traceback: a
// `raise` in the stepper arrives as torch::jit::JITException (a std::runtime_error),
// an operator's failure as c10::Error.
std::string script_error(const std::exception& e) {
  const auto* op = dynamic_cast<const c10::Error*>(&e);
  std::string msg = op ? op->what_without_backtrace() : e.what();
  const auto pos = msg.rfind("Error: ");
  if (pos != std::string::npos) msg = msg.substr(pos + 7);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

json read_json(const fs::path& path, Status status) {
  std::ifstream in(path);
  if (!in) throw Error(Status::io, "cannot read " + path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(status, path.string() + " is not valid JSON: " + e.what());
  }
}

torch::Device parse_device(const std::string& text) {
  std::optional<torch::Device> dev;
  try {
    dev.emplace(text);
  } catch (const c10::Error&) {
  }
  if (!dev || !(dev->is_cpu() || dev->is_cuda()))
    throw Error(Status::argument,
                "device: expected 'cpu', 'cuda' or 'cuda:N', found '" + text + "'");
  if (dev->is_cuda()) {
    const int64_t n = torch::cuda::device_count();
    if (n == 0)
      throw Error(Status::device,
                  "device: '" + text + "' requested but CUDA is not available here");
    if (dev->has_index() && dev->index() >= n)
      throw Error(Status::device, "device: '" + text + "' requested but only " + std::to_string(n) +
                                      " CUDA device(s) exist");
    if (!dev->has_index()) dev.emplace(torch::kCUDA, 0);
  }
  return *dev;
}

torch::ScalarType parse_dtype(const std::string& text) {
  if (text == "float32" || text == "fp32") return torch::kFloat32;
  if (text == "bfloat16" || text == "bf16") return torch::kBFloat16;
  throw Error(Status::argument, "dtype: expected 'float32' or 'bfloat16', found '" + text + "'");
}

Variable variable_from_json(const json& j, const std::string& role) {
  Variable v;
  v.name = j.at("name").get<std::string>();
  v.long_name = j.value("long_name", "");
  v.units = j.at("units").get<std::string>();
  v.role = role;
  v.grid = j.at("grid").get<std::string>();
  v.dtype = j.at("dtype").get<std::string>();
  v.valid_min = j.at("valid_min").get<double>();
  v.valid_max = j.at("valid_max").get<double>();
  v.channels = j.value("channels", std::vector<std::string>{});
  v.is_class = !j.value("flag_values", std::vector<int64_t>{}).empty();
  if (v.grid != "high" && v.grid != "coarse" && v.grid != "scalar")
    throw Error(Status::bundle, "variable '" + v.name + "' has unknown grid '" + v.grid + "'");
  return v;
}

// Cast the nets to the compute dtype in channels_last, exactly as
// bundle.load_stepper does with nn.Module.to(dtype=, memory_format=): floating
// tensors change dtype, 4-D ones become channels_last, others stay as they are.
}  // namespace

void prepare_nets(torch::jit::Module& stepper, torch::ScalarType dtype) {
  for (const char* name : {"lu_net", "lc_net", "lai_net"}) {
    torch::jit::Module net = stepper.attr(name).toModule();
    auto convert = [&](torch::Tensor t) {
      const torch::ScalarType type = t.is_floating_point() ? dtype : t.scalar_type();
      torch::Tensor out = t.dim() == 4 ? t.to(t.options().dtype(type), false, false,
                                              torch::MemoryFormat::ChannelsLast)
                                       : t.to(type);
      t.set_data(out);
    };
    for (const auto& p : net.parameters(/*recurse=*/true)) convert(p);
    for (const auto& b : net.buffers(/*recurse=*/true)) convert(b);
  }
}

namespace {

c10::Dict<std::string, torch::Tensor> to_dict(const TensorMap& m) {
  c10::Dict<std::string, torch::Tensor> d;
  for (const auto& [k, v] : m) d.insert(k, v);
  return d;
}

TensorMap from_ivalue(const c10::IValue& v) {
  TensorMap out;
  for (const auto& item : v.toGenericDict())
    out[item.key().toStringRef()] = item.value().toTensor();
  return out;
}

// Names as Python's str(torch.dtype) without "torch." (the restart's messages and
// its "nets_dtype" read the same from both fronts).
std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kUInt8:
      return "uint8";
    case torch::kInt8:
      return "int8";
    case torch::kInt16:
      return "int16";
    case torch::kInt32:
      return "int32";
    case torch::kInt64:
      return "int64";
    case torch::kFloat16:
      return "float16";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kFloat32:
      return "float32";
    case torch::kFloat64:
      return "float64";
    case torch::kBool:
      return "bool";
    default:
      return c10::toString(t);
  }
}

// "cpu" or "cuda:N", as torch::Device::str() names the devices parse_device returns.
bool is_device_name(const std::string& s) {
  if (s == "cpu") return true;
  if (s.rfind("cuda:", 0) != 0 || s.size() == 5) return false;
  return s.find_first_not_of("0123456789", 5) == std::string::npos;
}

}  // namespace

namespace {

// Hex sha256 of what `feed` passes to its argument (called with data, size).
template <class Feed>
std::string sha256_hex(Feed&& feed) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  feed([&](const void* data, size_t n) { EVP_DigestUpdate(ctx, data, n); });
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

// The bytes of a file (a stepper is hashed and loaded from the same bytes).
std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Status::io, "cannot read " + path);
  std::ostringstream data;
  data << in.rdbuf();
  if (in.bad()) throw Error(Status::io, "error reading " + path);
  return data.str();
}

}  // namespace

std::string sha256_bytes(const std::string& bytes) {
  return sha256_hex([&](auto&& update) { update(bytes.data(), bytes.size()); });
}

std::string sha256_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error(Status::io, "cannot read " + path);
  std::vector<unsigned char> block(1 << 20);
  const std::string out = sha256_hex([&](auto&& update) {
    size_t n;
    while ((n = std::fread(block.data(), 1, block.size(), f)) > 0) update(block.data(), n);
  });
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) throw Error(Status::io, "error reading " + path);
  return out;
}

struct Emulator::Impl {
  std::string dir;
  json manifest;
  std::string name;
  double res = 0;
  int64_t coarse_factor = 1;
  std::vector<Variable> variables;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  std::map<std::string, torch::jit::Module> steppers;  // loaded on first use, per direction
  torch::jit::Module* current = nullptr;               // the initialised one
  std::string direction;
  Grid grid;

  void verify();
  torch::jit::Module& stepper(const std::string& direction);
  // A file the manifest names: a plain name in the bundle folder (no folders, no ".."),
  // so a manifest cannot make us hash or load a file elsewhere. A link placed in the
  // folder (e.g. to weights on shared storage) is its owner's choice and is followed.
  fs::path bundle_file(const std::string& name) const {
    if (name.empty() || name == "." || name == ".." ||
        name.find_first_of(std::string("/\\\0", 3)) != std::string::npos)
      throw Error(Status::bundle, "bundle " + dir + ": manifest file name '" + name +
                                      "' is not a plain file name in the bundle folder");
    return fs::path(dir) / name;
  }
  torch::jit::Module& require() const {
    if (!current)
      throw Error(Status::state,
                  "emulator is not initialised: call initialise() or load_restart()");
    return *current;
  }
  void check_grid(const Grid& g) const {
    if (std::abs(g.res - res) > 1e-9 || g.coarse_factor != coarse_factor)
      throw Error(Status::argument, "grid: expected res " + num_str(res) +
                                        " deg and coarse_factor " + std::to_string(coarse_factor) +
                                        " (the bundle's), found res " + num_str(g.res) +
                                        " and coarse_factor " + std::to_string(g.coarse_factor));
  }
  void check_names(const std::string& part, const TensorMap& given, const std::string& role) const {
    std::vector<std::string> expected, missing, unknown;
    for (const auto& v : variables)
      if (v.role == role) {
        expected.push_back(v.name);
        if (!given.count(v.name)) missing.push_back(v.name);
      }
    std::sort(expected.begin(), expected.end());
    std::sort(missing.begin(), missing.end());
    for (const auto& [k, _] : given)
      if (!std::binary_search(expected.begin(), expected.end(), k)) unknown.push_back(k);
    if (!missing.empty())
      throw Error(Status::argument, part + ": missing variable(s) " + names_str(missing) +
                                        "; expected " + names_str(expected));
    if (!unknown.empty())
      throw Error(Status::argument, part + ": unknown variable(s) " + names_str(unknown) +
                                        "; expected " + names_str(expected));
  }
};

void Emulator::Impl::verify() {
  const fs::path folder(dir);
  if (!fs::is_directory(folder)) throw Error(Status::io, "bundle " + dir + " is not a folder");
  const fs::path path = folder / "manifest.json";
  if (!fs::is_regular_file(path))
    throw Error(Status::bundle, "bundle " + dir + " has no manifest.json");
  manifest = read_json(path, Status::bundle);
  const auto bad = [&](const std::string& m) {
    throw Error(Status::bundle, "bundle " + dir + ": " + m);
  };
  try {
    if (manifest.value("format_version", -1) != kFormatVersion)
      bad("manifest format_version expected " + std::to_string(kFormatVersion) + ", found " +
          manifest.value("format_version", json()).dump());
    const json& files = manifest.at("files");
    if (!files.is_object() || files.empty()) bad("manifest lists no files with checksums");
    for (const auto& [fn, digest] : files.items()) {
      const fs::path p = bundle_file(fn);
      if (!fs::is_regular_file(p)) bad("file " + fn + " listed in the manifest is missing");
      const std::string found = sha256_file(p.string());
      if (found != digest.get<std::string>())
        bad("sha256 of " + fn + " is " + found + ", manifest expects " + digest.get<std::string>() +
            " (file corrupt or replaced)");
    }
    for (const auto& [d, entry] : manifest.at("directions").items()) {
      if (d != "forward" && d != "backward") bad("unknown direction '" + d + "'");
      if (!files.contains(entry.at("file").get<std::string>()))
        bad("direction '" + d + "' file " + entry.at("file").get<std::string>() +
            " has no checksum");
    }
    name = manifest.at("name").get<std::string>();
    res = manifest.at("grid").at("res").get<double>();
    coarse_factor = manifest.at("grid").at("coarse_factor").get<int64_t>();
    for (const char* role : kRoles)
      for (const auto& v : manifest.at("variables").at(role))
        variables.push_back(variable_from_json(v, role));
  } catch (const json::exception& e) {
    bad(std::string("manifest is incomplete: ") + e.what());
  }
}

torch::jit::Module& Emulator::Impl::stepper(const std::string& d) {
  if (d != "forward" && d != "backward")
    throw Error(Status::argument, "direction: expected 'forward' or 'backward', found '" + d + "'");
  if (auto it = steppers.find(d); it != steppers.end()) return it->second;
  if (!manifest.at("directions").contains(d))
    throw Error(Status::bundle, "bundle " + dir + " has no " + d + " stepper");
  const std::string fn = manifest["directions"][d]["file"].get<std::string>();
  // The file was checked at open; hash it again and load those very bytes, so a file
  // replaced since (or between the check and the load) is never loaded unchecked.
  const std::string data = read_file(bundle_file(fn).string());
  if (sha256_bytes(data) != manifest["files"][fn].get<std::string>())
    throw Error(Status::bundle,
                "bundle " + dir + ": " + fn + " changed since the bundle was opened");
  torch::jit::Module m;
  try {
    std::istringstream stream(data);
    m = torch::jit::load(stream, device);
  } catch (const std::exception& e) {
    throw Error(Status::bundle, "bundle " + dir + ": cannot load " + fn + ": " + script_error(e));
  }
  const auto mismatch = [&](const std::string& what, const std::string& in_file,
                            const std::string& in_manifest) {
    if (in_file != in_manifest)
      throw Error(Status::bundle, "bundle " + dir + ": " + fn + " has " + what + " " + in_file +
                                      ", manifest says " + in_manifest);
  };
  mismatch("direction", std::to_string(m.attr("direction").toInt()), d == "forward" ? "1" : "-1");
  mismatch("tile", std::to_string(m.attr("tile").toInt()), manifest["tiling"]["tile"].dump());
  mismatch("stride", std::to_string(m.attr("stride").toInt()), manifest["tiling"]["stride"].dump());
  mismatch("coarse_factor", std::to_string(m.attr("coarse_factor").toInt()),
           std::to_string(coarse_factor));
  mismatch("res", num_str(m.attr("res").toDouble()), num_str(res));
  json norm = json::object();
  for (const auto& item : m.attr("norm").toGenericDict()) {
    const auto values = item.value().toDoubleList();
    norm[item.key().toStringRef()] = std::vector<double>(values.begin(), values.end());
  }
  mismatch("normalisation", norm.dump(), manifest["normalisation"].dump());
  prepare_nets(m, dtype);
  // Tiles of one window shape per net call, as bundle.load_stepper sets them: a GPU
  // needs the parallel work, a CPU is already busy with one (and each more tile adds
  // its activations to the workspace).
  m.setattr("tiles_per_batch", static_cast<int64_t>(device.is_cuda() ? 8 : 1));
  m.eval();
  return steppers.emplace(d, std::move(m)).first->second;
}

Emulator::Emulator(const std::string& bundle_dir, const std::string& device,
                   const std::string& dtype)
    : impl_(std::make_unique<Impl>()) {
  impl_->dir = bundle_dir;
  impl_->device = parse_device(device);
  impl_->dtype = parse_dtype(dtype);
  impl_->verify();
}

Emulator::~Emulator() = default;
Emulator::Emulator(Emulator&&) noexcept = default;
Emulator& Emulator::operator=(Emulator&&) noexcept = default;

const std::string& Emulator::bundle_name() const { return impl_->name; }
const std::string& Emulator::bundle_dir() const { return impl_->dir; }
double Emulator::res() const { return impl_->res; }
int64_t Emulator::coarse_factor() const { return impl_->coarse_factor; }
torch::Device Emulator::device() const { return impl_->device; }
torch::ScalarType Emulator::dtype() const { return impl_->dtype; }
const std::vector<Variable>& Emulator::variables() const { return impl_->variables; }

std::vector<std::string> Emulator::directions() const {
  std::vector<std::string> out;
  for (const auto& [d, _] : impl_->manifest.at("directions").items()) out.push_back(d);
  return out;
}

std::vector<const Variable*> Emulator::variables(const std::string& role) const {
  std::vector<const Variable*> out;
  for (const auto& v : impl_->variables)
    if (v.role == role) out.push_back(&v);
  return out;
}

const Variable& Emulator::variable(const std::string& name) const {
  for (const auto& v : impl_->variables)
    if (v.name == name) return v;
  throw Error(Status::argument, name +
                                    ": unknown variable; the bundle's variables are listed by "
                                    "landbc_variable_name / Emulator::variables()");
}

torch::Tensor Emulator::validate(const Variable& var, const torch::Tensor& value,
                                 const Grid& grid) const {
  if (!value.defined()) throw Error(Status::argument, var.name + ": no data given");
  const auto expected = var.shape(grid);
  if (value.sizes() != c10::IntArrayRef(expected))
    throw Error(Status::argument, var.name + ": expected shape " + shape_str(expected) +
                                      ", found " + shape_str(value.sizes()));
  if (value.is_floating_point()) {
    const int64_t bad = (~torch::isfinite(value)).sum().item<int64_t>();
    if (bad)
      throw Error(Status::argument,
                  var.name + ": expected finite values, found " + std::to_string(bad) + " NaN/inf");
  }
  if (value.numel()) {
    const auto [lo_t, hi_t] = torch::aminmax(value);
    const double lo = lo_t.item<double>(), hi = hi_t.item<double>();
    if (lo < var.valid_min || hi > var.valid_max)
      throw Error(Status::argument, var.name + ": expected values in [" + num_str(var.valid_min) +
                                        ", " + num_str(var.valid_max) + "] " + var.units +
                                        ", found [" + num_str(lo) + ", " + num_str(hi) + "]");
  }
  if (var.is_class && value.is_floating_point() && !torch::equal(value, value.round()))
    throw Error(Status::argument,
                var.name + ": expected integer class codes, found fractional values");
  return value.to(impl_->device, var.scalar_type());
}

void Emulator::initialise(const Grid& grid, const TensorMap& statics, const TensorMap& priors,
                          int year, int month, const std::string& direction) {
  impl_->check_grid(grid);
  if (month < 1 || month > 12)
    throw Error(Status::argument,
                "month: expected an integer 1..12, found " + std::to_string(month));
  impl_->check_names("static", statics, "static");
  impl_->check_names("priors", priors, "state");
  c10::Dict<std::string, torch::Tensor> s, p;
  // clone: the state must not alias the caller's arrays (a no-op .to() would)
  for (const auto* v : variables("static"))
    s.insert(v->name, validate(*v, statics.at(v->name), grid).clone());
  for (const auto* v : variables("state"))
    p.insert(v->name, validate(*v, priors.at(v->name), grid).clone());
  torch::jit::Module& m = impl_->stepper(direction);
  try {
    m.get_method("init")({s, p, year, month, grid.origin_row, grid.origin_col});
  } catch (const std::exception& e) {
    throw Error(Status::argument, "initialise: " + script_error(e));
  }
  impl_->current = &m;
  impl_->direction = direction;
  impl_->grid = grid;
}

bool Emulator::initialised() const { return impl_->current != nullptr; }

const Grid& Emulator::grid() const {
  impl_->require();
  return impl_->grid;
}

const std::string& Emulator::direction() const {
  impl_->require();
  return impl_->direction;
}

std::pair<int, int> Emulator::time() const {
  auto& m = impl_->require();
  return {static_cast<int>(m.attr("year").toInt()), static_cast<int>(m.attr("month").toInt())};
}

std::pair<int, int> Emulator::next_time() const {
  auto& m = impl_->require();
  const auto t = m.get_method("next_time")({}).toTuple();
  return {static_cast<int>(t->elements()[0].toInt()), static_cast<int>(t->elements()[1].toInt())};
}

TensorMap Emulator::state() const {
  return from_ivalue(impl_->require().get_method("get_state")({}));
}

TensorMap Emulator::outputs() const {
  return from_ivalue(impl_->require().get_method("outputs")({}));
}

TensorMap Emulator::step(const TensorMap& forcing) {
  torch::jit::Module& m = impl_->require();
  for (const int64_t h : m.attr("halo").toIntList())
    if (h > 0)
      throw Error(Status::state,
                  "step: this state is a block with halos; run its stages with halo exchanges "
                  "between them (run_stage, fill_halo) instead");
  impl_->check_names("forcing", forcing, "forcing");
  TensorMap valid;
  for (const auto* v : variables("forcing"))
    valid[v->name] = validate(*v, forcing.at(v->name), impl_->grid);
  TensorMap out;
  {
    c10::InferenceMode guard;  // as the Python front's torch.inference_mode()
    try {
      out = from_ivalue(m.get_method("step")({to_dict(valid)}));
    } catch (const std::exception& e) {
      throw Error(Status::internal, "step: " + script_error(e));
    }
  }
  release_free_memory();
  return out;
}

// -- blocks of a decomposed domain: the stepper's own checks and messages
// The tile lattice is the same in both directions: a host decomposing its domain
// asks before initialise, and then the bundle's first stepper is loaded for it.
int64_t Emulator::stride() const {
  auto& m = impl_->current ? *impl_->current : impl_->stepper(directions().front());
  return m.attr("stride").toInt();
}

int64_t Emulator::halo_width() const {
  auto& m = impl_->current ? *impl_->current : impl_->stepper(directions().front());
  if (!m.find_method("halo_width"))
    throw Error(Status::bundle, "bundle " + impl_->dir +
                                    ": its steppers predate decomposed domains (no halo_width); "
                                    "re-export it with `landbc export`");
  return m.get_method("halo_width")({}).toInt();
}

void Emulator::set_halo(int64_t top, int64_t bottom, int64_t left, int64_t right) {
  torch::jit::Module& m = impl_->require();
  try {
    m.get_method("set_halo")({c10::List<int64_t>({top, bottom, left, right})});
  } catch (const std::exception& e) {
    throw Error(Status::argument, "halo: " + script_error(e));
  }
}

std::vector<std::string> Emulator::stages() const {
  std::vector<std::string> out;
  for (const auto& s : impl_->require().get_method("stages")({}).toListRef())
    out.push_back(s.toStringRef());
  return out;
}

void Emulator::run_stage(const TensorMap& forcing, const std::string& stage) {
  torch::jit::Module& m = impl_->require();
  impl_->check_names("forcing", forcing, "forcing");
  TensorMap valid;
  for (const auto* v : variables("forcing"))
    valid[v->name] = validate(*v, forcing.at(v->name), impl_->grid);
  const auto order = stages();
  const int done = static_cast<int>(m.attr("stages_done").toInt());
  if (done >= static_cast<int>(order.size()) || order[done] != stage)
    throw Error(Status::argument, "stage: '" + stage + "' is out of order: the next stage is '" +
                                      (done < static_cast<int>(order.size()) ? order[done] : "") +
                                      "'");
  {
    c10::InferenceMode guard;
    try {
      m.get_method("run_stage")({to_dict(valid), stage});
    } catch (const std::exception& e) {
      throw Error(Status::internal, "stage " + stage + ": " + script_error(e));
    }
  }
  if (stage == order.back()) release_free_memory();
}

torch::Tensor Emulator::field(const std::string& name) const {
  if (name != "lu" && name != "lc" && name != "lai")
    throw Error(Status::argument, "field: expected lu, lc or lai, found '" + name + "'");
  return impl_->require().get_method("field")({name}).toTensor();
}

void Emulator::fill_halo(const std::string& name, const torch::Tensor& value) {
  field(name);  // lu, lc or lai
  // checked as a prior is (shape, finite, range, class codes)
  const torch::Tensor valid = validate(variable(name), value, impl_->grid);
  c10::InferenceMode guard;
  impl_->require().get_method("fill_halo")({name, valid});
}

void Emulator::save_restart(const std::string& path) const {
  torch::jit::Module& m = impl_->require();
  const auto [year, month] = time();
  char when[16];
  std::snprintf(when, sizeof when, "%04d-%02d", year, month);
  const std::map<std::string, std::string> meta = {
      {"format", kRestartFormat},
      {"version", kRestartVersion},
      {"bundle", impl_->name},
      {"stepper_sha256",
       impl_->manifest["files"][stepper_file(impl_->direction)].get<std::string>()},
      {"direction", impl_->direction},
      {"grid", impl_->grid.to_json()},
      {"time", when},
      {"nets_dtype", dtype_name(impl_->dtype)},
      {"nets_device", impl_->device.str()},
  };
  save_safetensors(path, from_ivalue(m.get_method("get_state")({})), meta);
}

// Every check of api.py's _read_restart, with the same messages: the metadata, the
// grid against the bundle, each catalog tensor's dtype and then validate() by value
// on the restart's grid, time/direction/origin against the metadata and the grid.
// Only then is the state set (the stepper's set_state checks all before it assigns),
// so a refused restart leaves the emulator as it was. A restart whose nets ran in
// another dtype or on another device (nets_dtype, nets_device) is accepted silently
// here (Python logs a warning): the state is float32 either way.
void Emulator::load_restart(const std::string& path) {
  auto [tensors, meta] = load_safetensors(path);
  const std::string where = "restart " + path;
  const auto bad = [&](const std::string& message) {
    return Error(Status::argument, where + ": " + message);
  };
  if (meta["format"] != kRestartFormat || meta["version"] != kRestartVersion)
    throw bad(std::string("expected format ") + kRestartFormat + " v" + kRestartVersion +
              ", found " + meta["format"] + " v" + meta["version"]);
  for (const char* key : {"direction", "stepper_sha256", "grid", "time"})
    if (!meta.count(key)) throw bad(std::string(key) + ": missing from the metadata");
  const std::string d = meta["direction"];
  if (d != "forward" && d != "backward")
    throw bad("direction: expected 'forward' or 'backward', found '" + d + "'");
  const std::string in_bundle = impl_->manifest["files"].value(stepper_file(d), "");
  if (in_bundle != meta["stepper_sha256"])
    throw bad("written with stepper sha256 " + meta["stepper_sha256"] + ", bundle " + impl_->dir +
              " has " + in_bundle + " (different weights)");
  if (meta.count("nets_dtype") || meta.count("nets_device")) {
    const std::string dt = meta["nets_dtype"], dev = meta["nets_device"];
    if (dt != "float32" && dt != "bfloat16")
      throw bad("nets_dtype: expected 'float32' or 'bfloat16', found '" + dt + "'");
    if (!is_device_name(dev))
      throw bad("nets_device: expected 'cpu' or 'cuda:N', found '" + dev + "'");
  }
  Grid grid;
  try {
    grid = Grid::from_json(meta["grid"]);
    impl_->check_grid(grid);
  } catch (const Error& e) {
    throw bad(e.what());
  }

  std::vector<std::string> expected = {"time", "origin", "direction"}, missing, unknown;
  std::vector<const Variable*> catalog = variables("static");
  for (const auto* v : variables("state")) catalog.push_back(v);
  for (const auto* v : catalog) expected.push_back(v->name);
  std::sort(expected.begin(), expected.end());
  for (const auto& n : expected)
    if (!tensors.count(n)) missing.push_back(n);
  for (const auto& [n, _] : tensors)
    if (!std::binary_search(expected.begin(), expected.end(), n)) unknown.push_back(n);
  if (!missing.empty())
    throw bad("missing variable(s) " + names_str(missing) + "; expected " + names_str(expected));
  if (!unknown.empty())
    throw bad("unknown variable(s) " + names_str(unknown) + "; expected " + names_str(expected));
  TensorMap state;
  for (const auto* v : catalog) {
    const torch::Tensor& t = tensors.at(v->name);
    if (t.scalar_type() != v->scalar_type())
      throw bad(v->name + ": expected dtype " + v->dtype + ", found " +
                dtype_name(t.scalar_type()));
    try {
      state[v->name] = validate(*v, t, grid);
    } catch (const Error& e) {
      throw bad(e.what());
    }
  }
  const auto ints = [&](const std::string& name, int64_t n) {
    const torch::Tensor& t = tensors.at(name);
    if (t.scalar_type() != torch::kInt64 || t.sizes() != c10::IntArrayRef({n}))
      throw bad(name + ": expected int64 of shape " + shape_str({n}) + ", found " +
                dtype_name(t.scalar_type()) + " of shape " + shape_str(t.sizes()));
    state[name] = t;
    const torch::Tensor c = t.contiguous();
    return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + n);
  };
  const auto time = ints("time", 2);
  const int64_t year = time[0], month = time[1];
  if (month < 1 || month > 12)
    throw bad("time: expected month 1..12, found " + std::to_string(month));
  if (year < INT32_MIN || year > INT32_MAX)
    throw bad("time: expected a year of 32 bits, found " + std::to_string(year));
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04lld-%02lld", static_cast<long long>(year),
                static_cast<long long>(month));
  if (meta["time"] != stamp)
    throw bad("time: the metadata says " + meta["time"] + ", the time tensor " + stamp);
  const int64_t sign = ints("direction", 1)[0], want = d == "forward" ? 1 : -1;
  if (sign != want)
    throw bad("direction: the metadata says '" + d + "' (" + std::to_string(want) +
              "), the direction tensor " + std::to_string(sign));
  const auto origin = ints("origin", 2);
  if (origin[0] != grid.origin_row || origin[1] != grid.origin_col)
    throw bad("origin: expected " + shape_str({grid.origin_row, grid.origin_col}) +
              " (the north-west pixel of the grid " + meta["grid"] + "), found " +
              shape_str(origin));

  torch::jit::Module& m = impl_->stepper(d);  // loaded aside: `current` stays until the commit
  try {
    // set_state checks everything before it assigns anything (a transaction)
    m.get_method("set_state")({to_dict(state)});
  } catch (const std::exception& e) {
    throw bad(script_error(e));
  }
  impl_->current = &m;
  impl_->direction = d;
  impl_->grid = grid;
}

}  // namespace landbc
