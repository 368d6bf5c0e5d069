// landbc::RemapWeights and landbc::HostGrid — a host model's own grid in the C++ core.
//
// The weights are computed once, in Python (landbc.coupler.remap, written by
// `landbc remap-weights`), as sparse CSR matrices in safetensors files; this
// core only loads and applies them, so the remap logic exists once. The
// application is the same arithmetic as the numpy path of
// landbc.coupler.remap.apply (products summed per target in the file's entry
// order, in double precision), so both fronts give bit-identical fields.
//
//   landbc::HostGrid host("O96", "build/remap", emu.grid(), land_mask);
//   double cvh_on_o96[host.size()];
//   host.field_to_host(emu.variable("cvh"), fields.at("cvh"), cvh_on_o96);
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "landbc/emulator.hpp"

namespace landbc {

// One file of remap weights (format "landbc.remap"): target rows x source columns.
class RemapWeights {
 public:
  // Reads and checks the file (a consistent CSR matrix of its shapes); throws
  // Error(io) if unreadable, Error(argument) if it is not a landbc.remap file.
  static RemapWeights load(const std::string& path);

  const std::string& path() const { return path_; }
  const std::string& method() const { return method_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::vector<int64_t>& source_shape() const { return source_shape_; }
  const std::vector<int64_t>& target_shape() const { return target_shape_; }
  int64_t n_source() const;
  int64_t n_target() const;
  bool empty_row(int64_t row) const { return indptr_[row + 1] == indptr_[row]; }

  // target[r] = sum over the row's entries of weight * source[column] (the
  // area-weighted mean for normalised conservative weights); NaN for a target
  // no source reaches. Source values are widened to double before the product.
  void average(const float* source, double* target) const;
  void average(const double* source, double* target) const;
  // The class code with the largest summed weight per target (ties: the
  // smallest code), as a double; NaN for a target no source reaches.
  void dominant(const uint8_t* codes, double* target) const;

 private:
  template <class T>
  void average_impl(const T* source, double* target) const;

  std::string path_, method_;
  std::map<std::string, std::string> metadata_;
  std::vector<int64_t> source_shape_, target_shape_, indptr_, indices_;
  std::vector<double> weights_;
};

// sha256 (hex) of a land mask as landbc.coupler.remap.mask_sha256 computes it:
// "<size>:" then the bits (value == 1 is land) packed most significant first.
std::string mask_sha256(const torch::Tensor& land_mask);

// The host model's grid for one emulator domain: the land-masked conservative
// weights from the emulator's grid to the host grid (outputs), and, if present,
// the weights from the host grid to the emulator's coarse grid (forcing).
class HostGrid {
 public:
  // Finds the files `landbc remap-weights` wrote into `weights_dir` for the host
  // grid `name` (its metadata host_grid, compared case-insensitively) that fit
  // `grid` and its land mask; throws Error(argument) naming what does not fit,
  // Error(io) if the folder cannot be read.
  HostGrid(const std::string& name, const std::string& weights_dir, const Grid& grid,
           const torch::Tensor& land_mask);

  const std::string& name() const { return name_; }
  int64_t size() const { return to_host_.n_target(); }
  const std::vector<int64_t>& shape() const { return to_host_.target_shape(); }
  bool has_forcing() const { return has_from_host_; }
  const RemapWeights& to_host() const { return to_host_; }

  // A high-resolution output on the host grid, into `out` (size() doubles):
  // the grid-box mean over each cell's land for continuous fields, the
  // dominant class for class codes; NaN where a cell has no land of the domain.
  void field_to_host(const Variable& var, const torch::Tensor& field, double* out) const;
  // A coarse forcing field given on the host grid, (size()) or (channels,
  // size()) in any float dtype on the CPU, as the variable's coarse field
  // (float32 on the CPU; NaN where no host point reaches a cell, which the
  // emulator's validation then refuses by name).
  torch::Tensor forcing_from_host(const Variable& var, const torch::Tensor& host_field,
                                  const Grid& grid) const;

 private:
  std::string name_;
  RemapWeights to_host_, from_host_;
  bool has_from_host_ = false;
};

}  // namespace landbc
