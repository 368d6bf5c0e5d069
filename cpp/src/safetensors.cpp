// Minimal safetensors reader and writer: the restart format of both fronts.
//
// An 8-byte little-endian header length N, N bytes of JSON ({name: {dtype,
// shape, data_offsets}, "__metadata__": {str: str}}), then the raw buffers.
// The writer produces the same bytes as emulator/safetensors.py (sorted
// tensor names, compact JSON, header padded with spaces to 8 bytes), so a
// restart written by either front is byte-identical.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

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
  throw Error(Status::argument, where + ": unknown safetensors dtype '" +
                                    (code.size() <= 80 ? code : code.substr(0, 77) + "...") + "'");
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

// -- reading ------------------------------------------------------------------------
//
// The reader trusts nothing in the file: the header length is capped
// (kMaxHeaderBytes, the reference implementation's 100 MB), the header must be a JSON
// object with no duplicate keys and at most kMaxHeaderDepth levels of nesting, and
// every tensor entry is checked before anything is allocated for it: a known dtype, a
// shape of non-negative integers whose byte size does not overflow and equals
// data_offsets[1] - data_offsets[0], offsets inside the body, and (as the reference
// implementation requires) the buffers tiling the body [0, file size - 8 - N) in
// order, with neither gap, overlap nor trailing bytes. Only then is each buffer read,
// straight from the file into its tensor: a file that claims a 2^60-byte tensor is
// refused without allocating, and the memory taken is bounded by the file's size.

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr int kMaxHeaderDepth = 8;  // the format needs 3: header, entry, shape

struct Entry {
  std::string name;
  torch::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

struct Header {
  std::vector<Entry> entries;  // in the order of their offsets
  std::map<std::string, std::string> metadata;
};

// A name or a JSON value for a message: at most 80 characters.
std::string shown(const std::string& s) { return s.size() <= 80 ? s : s.substr(0, 77) + "..."; }

std::string shown(const nlohmann::json& v) {
  return shown(v.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace));
}

class File {
 public:
  explicit File(const std::string& path) : f_(std::fopen(path.c_str(), "rb")) {}
  ~File() {
    if (f_) std::fclose(f_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  FILE* get() const { return f_; }

 private:
  FILE* f_;
};

uint64_t element_size(torch::ScalarType t) { return c10::elementSize(t); }

// Validates the header (the JSON text) against a body of body_size bytes.
Header parse_header(const std::string& path, const std::string& text, uint64_t body_size) {
  const std::string what = path + " is not a safetensors file";
  nlohmann::json header;
  try {
    // duplicate keys are refused (json.loads and nlohmann would keep the last one
    // silently), and so is nesting deeper than the format has any use for
    std::vector<std::set<std::string>> keys;
    const nlohmann::json::parser_callback_t check = [&](int depth,
                                                        nlohmann::json::parse_event_t event,
                                                        nlohmann::json& parsed) {
      using E = nlohmann::json::parse_event_t;
      if (depth > kMaxHeaderDepth)
        throw Error(Status::argument, what + " (header nests deeper than " +
                                          std::to_string(kMaxHeaderDepth) + " levels)");
      if (event == E::object_start) keys.emplace_back();
      if (event == E::object_end && !keys.empty()) keys.pop_back();
      if (event == E::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second)
        throw Error(Status::argument, what + " (header has the key '" +
                                          shown(parsed.get<std::string>()) + "' twice)");
      return true;
    };
    // a NUL byte would end nlohmann's input early, accepting what follows it
    if (text.find('\0') != std::string::npos)
      throw nlohmann::json::other_error::create(0, "NUL", nullptr);
    header = nlohmann::json::parse(text, check);
  } catch (const nlohmann::json::exception&) {
    throw Error(Status::argument, what + " (header is not JSON)");
  }
  if (!header.is_object())
    throw Error(Status::argument,
                what + " (header expected a JSON object, found " + header.type_name() + ")");
  Header out;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object())
        throw Error(
            Status::argument,
            what + " (__metadata__ expected an object of strings, found " + info.type_name() + ")");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string())
          throw Error(Status::argument,
                      path + ": metadata '" + shown(k) + "' expected a string, found " + shown(v));
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor '" + shown(name) + "'";
    if (name.empty()) throw Error(Status::argument, path + ": a tensor has an empty name");
    if (!info.is_object())
      throw Error(Status::argument,
                  where + " expected {dtype, shape, data_offsets}, found " + shown(info));
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!info.contains(key)) throw Error(Status::argument, where + " has no " + key);
    const auto& dtype = info.at("dtype");
    if (!dtype.is_string())
      throw Error(Status::argument, where + ": dtype expected a string, found " + shown(dtype));
    Entry e;
    e.name = name;
    e.type = type_of(dtype.get<std::string>(), where);
    // shape: non-negative integers; the byte size, computed with overflow checks
    const auto& shape = info.at("shape");
    if (!shape.is_array())
      throw Error(
          Status::argument,
          where + ": shape expected a list of non-negative integers, found " + shown(shape));
    uint64_t nbytes = element_size(e.type), span = nbytes;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        throw Error(Status::argument,
                    where + ": shape expected non-negative integers, found " + shown(shape));
      const uint64_t n = d.get<uint64_t>();
      // the span with zero dimensions counted as 1 must fit too (torch checks it)
      if (n > static_cast<uint64_t>(INT64_MAX) ||
          (n != 0 && span > static_cast<uint64_t>(INT64_MAX) / n))
        throw Error(Status::argument, where + ": shape " + shown(shape) + " overflows 2^63 bytes");
      nbytes *= n;
      span *= std::max<uint64_t>(n, 1);
      e.shape.push_back(static_cast<int64_t>(n));
    }
    const auto& offsets = info.at("data_offsets");
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      throw Error(Status::argument,
                  where + ": data_offsets expected [begin, end] of non-negative integers, found " +
                      shown(offsets));
    e.begin = offsets[0].get<uint64_t>();
    e.end = offsets[1].get<uint64_t>();
    if (e.end < e.begin)
      throw Error(Status::argument,
                  where + ": data_offsets " + shown(offsets) + " end before they begin");
    if (e.end > body_size)
      throw Error(Status::argument, where + ": data_offsets " + shown(offsets) + " run past the " +
                                        std::to_string(body_size) +
                                        "-byte body, the end of the file (truncated?)");
    if (e.end - e.begin != nbytes)
      throw Error(Status::argument,
                  where + ": shape " + shown(shape) + " of " + dtype.get<std::string>() +
                      " needs " + std::to_string(nbytes) + " bytes, data_offsets " +
                      shown(offsets) + " give " + std::to_string(e.end - e.begin));
    out.entries.push_back(std::move(e));
  }
  // the buffers tile the body in order: no gap, no overlap, nothing after the last
  std::sort(out.entries.begin(), out.entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  for (const auto& e : out.entries) {
    if (e.begin != at)
      throw Error(Status::argument,
                  path + ": tensor '" + shown(e.name) + "' expected to start at byte " +
                      std::to_string(at) + " of the body, found " + std::to_string(e.begin) +
                      (e.begin < at ? " (overlaps the previous tensor)" : " (a gap before it)"));
    at = e.end;
  }
  if (at != body_size)
    throw Error(Status::argument, path + ": the tensors cover " + std::to_string(at) +
                                      " bytes, the body has " + std::to_string(body_size) +
                                      " (trailing bytes)");
  return out;
}

// Opens path and reads and validates its header; leaves the stream at the body.
Header read_header(const std::string& path, File& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec) || !file.get())
    throw Error(Status::io, path + " does not exist or is unreadable");
  struct stat st{};
  if (fstat(fileno(file.get()), &st) != 0)
    throw Error(Status::io, "cannot stat " + path + ": " + std::strerror(errno));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const std::string what = path + " is not a safetensors file";
  if (size < 8) throw Error(Status::argument, what + " (shorter than 8 bytes)");
  uint64_t n = 0;
  if (std::fread(&n, 8, 1, file.get()) != 1)
    throw Error(Status::io, "cannot read " + path + ": " + std::strerror(errno));
  if (n > kMaxHeaderBytes)
    throw Error(Status::argument, what + " (header length " + std::to_string(n) +
                                      " exceeds the cap of " + std::to_string(kMaxHeaderBytes) +
                                      " bytes)");
  if (n > size - 8)
    throw Error(Status::argument, what + " (header length " + std::to_string(n) +
                                      " past the end of the " + std::to_string(size) +
                                      "-byte file)");
  std::string text(n, '\0');
  if (n && std::fread(text.data(), 1, n, file.get()) != n)
    throw Error(Status::io, "cannot read " + path + ": " + std::strerror(errno));
  return parse_header(path, text, size - 8 - n);
}

}  // namespace

std::pair<TensorMap, std::map<std::string, std::string>> load_safetensors(const std::string& path) {
  File file(path);
  Header header = read_header(path, file);
  TensorMap tensors;
  for (const auto& e : header.entries) {
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.type));
    const uint64_t nbytes = e.end - e.begin;  // validated: the tensor's size, inside the file
    // validated: the buffers tile the body in order, so the file is read front to back
    if (nbytes && std::fread(t.data_ptr(), 1, nbytes, file.get()) != nbytes)
      throw Error(Status::io, "cannot read " + path + " (tensor '" + shown(e.name) +
                                  "'; changed while being read?)");
    if (e.type == torch::kBool) {
      const auto* b = static_cast<const unsigned char*>(t.data_ptr());
      for (uint64_t i = 0; i < nbytes; ++i)
        if (b[i] > 1)
          throw Error(Status::argument, path + ": tensor '" + shown(e.name) +
                                            "' of BOOL expected bytes 0 or 1, found " +
                                            std::to_string(b[i]));
    }
    tensors[e.name] = t;
  }
  return {tensors, header.metadata};
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  File file(path);
  return read_header(path, file).metadata;
}

}  // namespace landbc
