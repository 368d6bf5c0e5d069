// Minimal safetensors reader and writer: the restart format of both fronts.
//
// An 8-byte little-endian header length N, N bytes of JSON ({name: {dtype,
// shape, data_offsets}, "__metadata__": {str: str}}), then the raw buffers.
// The writer produces the same bytes as emulator/safetensors.py (sorted
// tensor names, compact JSON, header padded with spaces to 8 bytes), so a
// restart written by either front is byte-identical.
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "landbc/emulator.hpp"

namespace landbc {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors buffers are little-endian");

const std::vector<std::pair<torch::ScalarType, const char*>>& dtype_codes() {
  static const std::vector<std::pair<torch::ScalarType, const char*>> codes = {
      {torch::kUInt8, "U8"},      {torch::kInt8, "I8"},     {torch::kInt16, "I16"},
      {torch::kInt32, "I32"},     {torch::kInt64, "I64"},   {torch::kFloat16, "F16"},
      {torch::kBFloat16, "BF16"}, {torch::kFloat32, "F32"}, {torch::kFloat64, "F64"},
      {torch::kBool, "BOOL"},
  };
  return codes;
}

const char* code_of(torch::ScalarType t, const std::string& name) {
  for (const auto& [type, code] : dtype_codes())
    if (type == t) return code;
  throw Error(Status::argument,
              "tensor '" + name + "' has unsupported dtype " + std::string(c10::toString(t)));
}

torch::ScalarType type_of(const std::string& code, const std::string& where) {
  for (const auto& [type, c] : dtype_codes())
    if (code == c) return type;
  throw Error(Status::argument, where + ": unknown safetensors dtype '" + code + "'");
}

}  // namespace

void save_safetensors(const std::string& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata_in) {
  // ordered_json keeps insertion order: "__metadata__" first, then the tensors
  // in sorted order (std::map), as the Python writer does.
  nlohmann::ordered_json header;
  nlohmann::ordered_json metadata = nlohmann::ordered_json::object();
  for (const auto& [k, v] : metadata_in) metadata[k] = v;
  header["__metadata__"] = metadata;
  std::vector<torch::Tensor> buffers;
  int64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const int64_t nbytes = t.numel() * static_cast<int64_t>(t.element_size());
    header[name] = {{"dtype", code_of(t.scalar_type(), name)},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    buffers.push_back(t);
    offset += nbytes;
  }
  // ensure_ascii mirrors Python's json.dumps default
  std::string blob = header.dump(-1, ' ', /*ensure_ascii=*/true);
  blob.append((8 - blob.size() % 8) % 8, ' ');

  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
  }
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp");
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(Status::io, "cannot write " + tmp.string() + ": " + std::strerror(errno));
  const uint64_t n = blob.size();
  bool ok = std::fwrite(&n, 8, 1, f) == 1 && std::fwrite(blob.data(), 1, n, f) == n;
  for (const auto& t : buffers) {
    const size_t nbytes = t.numel() * t.element_size();
    if (nbytes) ok = ok && std::fwrite(t.data_ptr(), 1, nbytes, f) == nbytes;
  }
  ok = ok && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    throw Error(Status::io, "cannot write " + path + ": " + std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(Status::io, "cannot rename " + tmp.string() + " to " + path + ": " + ec.message());
  }
}

std::pair<TensorMap, std::map<std::string, std::string>> load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!std::filesystem::is_regular_file(path) || !in)
    throw Error(Status::io, "restart file " + path + " does not exist or is unreadable");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string what = path + " is not a safetensors file";
  if (data.size() < 8) throw Error(Status::argument, what + " (shorter than 8 bytes)");
  uint64_t n = 0;
  std::memcpy(&n, data.data(), 8);
  if (n > data.size() - 8)
    throw Error(Status::argument, what + " (header length " + std::to_string(n) + " past the end)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(data.begin() + 8, data.begin() + 8 + static_cast<int64_t>(n));
  } catch (const nlohmann::json::exception&) {
    throw Error(Status::argument, what + " (header is not JSON)");
  }
  if (!header.is_object()) throw Error(Status::argument, what + " (header is not an object)");
  std::map<std::string, std::string> metadata;
  const size_t body = 8 + n;
  const size_t body_size = data.size() - body;
  TensorMap tensors;
  try {
    for (const auto& [name, info] : header.items()) {
      if (name == "__metadata__") {
        for (const auto& [k, v] : info.items()) metadata[k] = v.get<std::string>();
        continue;
      }
      const auto type = type_of(info.at("dtype").get<std::string>(), path + ": '" + name + "'");
      const auto shape = info.at("shape").get<std::vector<int64_t>>();
      const auto offsets = info.at("data_offsets").get<std::vector<uint64_t>>();
      torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(type));
      const uint64_t nbytes = t.numel() * t.element_size();
      if (offsets.size() != 2 || offsets[1] < offsets[0] || offsets[1] - offsets[0] != nbytes)
        throw Error(Status::argument, path + ": tensor '" + name + "' has inconsistent offsets");
      if (offsets[1] > body_size)
        throw Error(Status::argument,
                    path + ": tensor '" + name + "' runs past the end of the file (truncated?)");
      if (nbytes) std::memcpy(t.data_ptr(), data.data() + body + offsets[0], nbytes);
      tensors[name] = t;
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(Status::argument, what + " (" + e.what() + ")");
  }
  return {tensors, metadata};
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!std::filesystem::is_regular_file(path) || !in)
    throw Error(Status::io, path + " does not exist or is unreadable");
  const std::string what = path + " is not a safetensors file";
  uint64_t n = 0;
  if (!in.read(reinterpret_cast<char*>(&n), 8))
    throw Error(Status::argument, what + " (shorter than 8 bytes)");
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || n > size - 8)
    throw Error(Status::argument, what + " (header length " + std::to_string(n) + " past the end)");
  std::string text(n, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  std::map<std::string, std::string> metadata;
  try {
    const nlohmann::json header = nlohmann::json::parse(text);
    if (header.contains("__metadata__"))
      for (const auto& [k, v] : header.at("__metadata__").items())
        metadata[k] = v.get<std::string>();
  } catch (const nlohmann::json::exception&) {
    throw Error(Status::argument, what + " (header is not JSON)");
  }
  return metadata;
}

}  // namespace landbc
