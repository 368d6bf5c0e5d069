// Remap weights made by landbc.coupler.remap, applied in the C++ core (remap.hpp).
//
// Bit-identity with Python: numpy's path sums `weight * double(value)` per
// target in entry order (np.bincount), starting from 0.0; the loops below do
// the same additions in the same order. This file is compiled without
// floating-point contraction (cpp/CMakeLists.txt), so no fused multiply-add
// changes a rounding.
#include "landbc/remap.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "messages.hpp"

namespace landbc {
namespace {

constexpr const char* kFormat = "landbc.remap";
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kDegTol = 1e-6;  // degrees: grid descriptions are written with full precision

std::vector<int64_t> vec_of(const torch::Tensor& t, const std::string& where) {
  if (t.dim() != 1) throw Error(Status::argument, where + " is not one-dimensional");
  torch::Tensor c = t.to(torch::kInt64).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

std::vector<int64_t> shape_of(const std::map<std::string, std::string>& meta,
                              const std::string& key, const std::string& path) {
  try {
    return nlohmann::json::parse(meta.at(key)).get<std::vector<int64_t>>();
  } catch (const std::exception&) {
    throw Error(Status::argument, path + ": unreadable " + key + " metadata");
  }
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string get(const std::map<std::string, std::string>& meta, const std::string& key) {
  auto it = meta.find(key);
  return it == meta.end() ? "" : it->second;
}

bool near(double a, double b) { return std::fabs(a - b) <= kDegTol; }

bool near_lon(double a, double b) {
  const double d = std::fmod(std::fabs(a - b), 360.0);
  return std::min(d, 360.0 - d) <= kDegTol;
}

// Why a grid description (JSON of landbc.coupler.grids) is not the emulator's
// (high-resolution, or coarse) grid; "" if it is.
std::string regular_mismatch(const std::string& json_text, const Grid& g, bool coarse) {
  const double res = coarse ? g.res * static_cast<double>(g.coarse_factor) : g.res;
  const int64_t ny = coarse ? g.coarse_ny() : g.ny, nx = coarse ? g.coarse_nx() : g.nx;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
    if (j.at("type").get<std::string>() != "regular_ll") return "it is not a regular lat-lon grid";
    if (j.at("nlat").get<int64_t>() != ny || j.at("nlon").get<int64_t>() != nx)
      return "it has " + std::to_string(j.at("nlat").get<int64_t>()) + " x " +
             std::to_string(j.at("nlon").get<int64_t>()) + " points, the domain " +
             std::to_string(ny) + " x " + std::to_string(nx);
    if (!near(j.at("dlat").get<double>(), res) || !near(j.at("dlon").get<double>(), res))
      return "its increments are not " + std::to_string(res) + " degrees";
    if (!near(j.at("lat_first").get<double>(), g.lat_north - res / 2) ||
        !near_lon(j.at("lon_first").get<double>(), g.lon_west + res / 2))
      return "its first point is not the domain's north-west cell centre";
  } catch (const nlohmann::json::exception&) {
    return "its grid description is unreadable";
  }
  return "";
}

}  // namespace

// -- RemapWeights -----------------------------------------------------------------------

RemapWeights RemapWeights::load(const std::string& path) {
  auto [tensors, meta] = load_safetensors(path);
  if (get(meta, "format") != kFormat)
    throw Error(Status::argument,
                path + ": not a " + kFormat + " file (format '" + get(meta, "format") + "')");
  for (const char* name : {"indptr", "indices", "weights"})
    if (!tensors.count(name))
      throw Error(Status::argument, path + ": missing tensor '" + std::string(name) + "'");
  RemapWeights w;
  w.path_ = path;
  w.metadata_ = meta;
  w.method_ = get(meta, "method");
  w.source_shape_ = shape_of(meta, "source_shape", path);
  w.target_shape_ = shape_of(meta, "target_shape", path);
  w.indptr_ = vec_of(tensors.at("indptr"), path + ": indptr");
  w.indices_ = vec_of(tensors.at("indices"), path + ": indices");
  torch::Tensor wt = tensors.at("weights").to(torch::kFloat64).contiguous();
  w.weights_.assign(wt.data_ptr<double>(), wt.data_ptr<double>() + wt.numel());
  // The checks of RemapWeights.check(): a truncated or foreign file is never applied.
  const auto& p = w.indptr_;
  const int64_t nnz = static_cast<int64_t>(w.indices_.size());
  bool ok = static_cast<int64_t>(p.size()) == w.n_target() + 1 && p.front() == 0 &&
            p.back() == nnz && static_cast<int64_t>(w.weights_.size()) == nnz;
  for (size_t i = 1; ok && i < p.size(); ++i) ok = p[i] >= p[i - 1];
  for (int64_t c : w.indices_) ok = ok && c >= 0 && c < w.n_source();
  if (!ok)
    throw Error(Status::argument, path + ": inconsistent " + w.method_ +
                                      " remap weights (not a CSR matrix of target shape " +
                                      shape_str(w.target_shape_) + " and source shape " +
                                      shape_str(w.source_shape_) + ")");
  return w;
}

int64_t RemapWeights::n_source() const {
  int64_t n = 1;
  for (int64_t s : source_shape_) n *= s;
  return n;
}

int64_t RemapWeights::n_target() const {
  int64_t n = 1;
  for (int64_t s : target_shape_) n *= s;
  return n;
}

template <class T>
void RemapWeights::average_impl(const T* source, double* target) const {
  const int64_t n = n_target();
  for (int64_t r = 0; r < n; ++r) {
    if (empty_row(r)) {
      target[r] = kNaN;
      continue;
    }
    double acc = 0.0;
    for (int64_t k = indptr_[r]; k < indptr_[r + 1]; ++k)
      acc += static_cast<double>(source[indices_[k]]) * weights_[k];
    target[r] = acc;
  }
}

void RemapWeights::average(const float* source, double* target) const {
  average_impl(source, target);
}
void RemapWeights::average(const double* source, double* target) const {
  average_impl(source, target);
}

void RemapWeights::dominant(const uint8_t* codes, double* target) const {
  const int64_t n = n_target();
  double sums[256];
  for (int64_t r = 0; r < n; ++r) {
    if (empty_row(r)) {
      target[r] = kNaN;
      continue;
    }
    std::fill(std::begin(sums), std::end(sums), 0.0);
    for (int64_t k = indptr_[r]; k < indptr_[r + 1]; ++k) sums[codes[indices_[k]]] += weights_[k];
    int best = 0;
    for (int c = 1; c < 256; ++c)
      if (sums[c] > sums[best]) best = c;  // strict: ties keep the smallest code
    target[r] = best;
  }
}

std::string mask_sha256(const torch::Tensor& land_mask) {
  torch::Tensor m = land_mask.to(torch::kCPU).eq(1).contiguous().view({-1});
  const int64_t n = m.numel();
  const bool* bits = m.data_ptr<bool>();
  std::vector<unsigned char> packed((n + 7) / 8, 0);
  for (int64_t i = 0; i < n; ++i)
    if (bits[i]) packed[i / 8] |= static_cast<unsigned char>(0x80u >> (i % 8));
  std::string bytes = std::to_string(n) + ":";
  bytes.append(packed.begin(), packed.end());
  return sha256_bytes(bytes);
}

// -- HostGrid ---------------------------------------------------------------------------

HostGrid::HostGrid(const std::string& name, const std::string& weights_dir, const Grid& grid,
                   const torch::Tensor& land_mask)
    : name_(name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(weights_dir, ec))
    throw Error(Status::io, "host grid " + name + ": weights folder " + weights_dir +
                                " does not exist (write it with `landbc remap-weights`)");
  const std::string mask_hash = mask_sha256(land_mask);
  std::vector<std::string> rejected;
  bool found_outputs = false;
  for (const auto& entry : fs::directory_iterator(weights_dir, ec)) {
    const std::string path = entry.path().string();
    if (entry.path().extension() != ".safetensors" || !entry.is_regular_file()) continue;
    std::map<std::string, std::string> meta;
    try {
      meta = load_safetensors_metadata(path);
    } catch (const Error&) {
      continue;  // not a safetensors file: not ours to judge
    }
    if (get(meta, "format") != kFormat || lower(get(meta, "host_grid")) != lower(name)) continue;
    const std::string role = get(meta, "host_role");
    std::string why;
    if (role == "outputs") {
      why = regular_mismatch(get(meta, "source_grid"), grid, false);
      if (why.empty() && get(meta, "method") != "conservative")
        why = "method " + get(meta, "method") + ", outputs need conservative";
      if (why.empty() && get(meta, "mask_sha256") != mask_hash)
        why = "it was made for another land mask";
      if (why.empty()) {
        to_host_ = RemapWeights::load(path);
        name_ = get(meta, "host_grid");  // as written, e.g. "O96" for a host that said "o96"
        found_outputs = true;
      }
    } else if (role == "forcing") {
      why = regular_mismatch(get(meta, "target_grid"), grid, true);
      if (why.empty()) {
        from_host_ = RemapWeights::load(path);
        has_from_host_ = true;
      }
    } else {
      why = "host_role '" + role + "' is neither outputs nor forcing";
    }
    if (!why.empty()) rejected.push_back(entry.path().filename().string() + ": " + why);
  }
  if (ec) throw Error(Status::io, "cannot read " + weights_dir + ": " + ec.message());
  if (!found_outputs) {
    std::string msg = "host grid " + name + ": no weights in " + weights_dir +
                      " from this domain's grid (" + std::to_string(grid.ny) + " x " +
                      std::to_string(grid.nx) + " at " + std::to_string(grid.res) +
                      " deg, its land mask) to " + name +
                      "; write them with `landbc remap-weights --grid " + name + " ...`";
    for (const auto& r : rejected) msg += "; " + r;
    throw Error(Status::argument, msg);
  }
  if (has_from_host_ && from_host_.n_source() != to_host_.n_target())
    throw Error(Status::argument, "host grid " + name + ": " + from_host_.path() + " reads " +
                                      std::to_string(from_host_.n_source()) + " points, " +
                                      to_host_.path() + " writes " +
                                      std::to_string(to_host_.n_target()));
}

void HostGrid::field_to_host(const Variable& var, const torch::Tensor& field, double* out) const {
  torch::Tensor f = field.to(torch::kCPU).contiguous();
  if (f.numel() != to_host_.n_source())
    throw Error(Status::argument, var.name + ": a field of " + std::to_string(f.numel()) +
                                      " values does not fit the host grid's weights (" +
                                      std::to_string(to_host_.n_source()) + " source points)");
  if (var.is_class) {
    to_host_.dominant(f.to(torch::kUInt8).contiguous().data_ptr<uint8_t>(), out);
  } else if (f.scalar_type() == torch::kFloat64) {
    to_host_.average(f.data_ptr<double>(), out);
  } else {
    to_host_.average(f.to(torch::kFloat32).contiguous().data_ptr<float>(), out);
  }
}

torch::Tensor HostGrid::forcing_from_host(const Variable& var, const torch::Tensor& host_field,
                                          const Grid& grid) const {
  if (!has_from_host_)
    throw Error(Status::argument, var.name + ": host grid " + name_ +
                                      " has no forcing weights (host grid to coarse grid); "
                                      "write them with `landbc remap-weights --forcing`");
  const int64_t n = from_host_.n_source();
  torch::Tensor f = host_field.to(torch::kCPU).contiguous();
  if (f.numel() % n != 0)
    throw Error(Status::argument, var.name + ": " + std::to_string(f.numel()) +
                                      " values on host grid " + name_ + " are not a multiple of " +
                                      std::to_string(n) + " points");
  const int64_t channels = f.numel() / n;
  std::vector<int64_t> shape = var.shape(grid);  // (cny, cnx) or (channels, cny, cnx)
  if (f.scalar_type() != torch::kFloat64) f = f.to(torch::kFloat32).contiguous();
  const int64_t m = from_host_.n_target();
  torch::Tensor out64 = torch::empty({channels, m}, torch::kFloat64);
  for (int64_t c = 0; c < channels; ++c) {
    double* target = out64.data_ptr<double>() + c * m;
    if (f.scalar_type() == torch::kFloat64)
      from_host_.average(f.data_ptr<double>() + c * n, target);
    else
      from_host_.average(f.data_ptr<float>() + c * n, target);
  }
  // numpy rounds the double sums to the field's dtype (float32) once: so do we.
  return out64.to(torch::kFloat32).reshape(shape);
}

}  // namespace landbc
