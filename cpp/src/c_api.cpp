// The C ABI (landbc.h) over landbc::Emulator.
//
// Every entry point runs its body through `guarded`, which turns any C++
// exception into a status code and a thread-local message: nothing throws or
// aborts across the boundary. Handles are ids, not addresses, looked up in a
// registry of live emulators: a call with a closed handle is an error, not a
// crash, and since ids are never reused a stale handle can never name a later
// emulator (one the allocator may well place at the closed one's address).
#include "landbc.h"

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>

#include "landbc/emulator.hpp"
#include "landbc/remap.hpp"
#include "last_error.hpp"
#include "messages.hpp"

using landbc::Error;
using landbc::Status;

struct landbc_emulator {
  explicit landbc_emulator(landbc::Emulator e) : emu(std::move(e)) {}
  landbc::Emulator emu;
  std::optional<landbc::Grid> grid;      // from landbc_set_grid or a restart
  landbc::TensorMap bound;               // views of caller memory, by variable name
  landbc::TensorMap outputs;             // fields of the current month (after initialise/step)
  landbc::TensorMap statics;             // the state's statics (after initialise/load_restart)
  std::optional<landbc::HostGrid> host;  // from landbc_set_host_grid
  landbc::TensorMap host_bound;          // forcing bound on the host grid (views), by name
};

namespace {

thread_local std::string last_error;

std::mutex registry_mutex;
// id -> emulator; an id is the value of the opaque landbc_emulator* handed out.
std::map<uintptr_t, std::unique_ptr<landbc_emulator>>& registry() {
  static std::map<uintptr_t, std::unique_ptr<landbc_emulator>> live;
  return live;
}
// Ids count up from an odd base in steps of 16: never 0 (NULL), never reused in a
// process (2^60 opens), and unlike any address, so a handle is no pointer to follow.
constexpr uintptr_t kFirstId = 0x1a7dbc01, kIdStep = 16;
uintptr_t next_id = kFirstId;

uintptr_t id_of(const landbc_emulator* h) { return reinterpret_cast<uintptr_t>(h); }

template <class F>
int guarded(F&& body) {
  try {
    body();
    return LANDBC_OK;
  } catch (const Error& e) {
    last_error = e.what();
    return static_cast<int>(e.status());
  } catch (const c10::Error& e) {
    last_error = e.what_without_backtrace();
  } catch (const std::bad_alloc&) {
    last_error = "out of memory";
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown error";
  }
  return LANDBC_ERR_INTERNAL;
}

// A caller's buffer of `count` elements for field `t` (landbc_get_field and the block calls).
void require_count(const std::string& name, const torch::Tensor& t, int64_t count) {
  if (count != t.numel())
    throw Error(Status::argument, name + ": count expected " + std::to_string(t.numel()) +
                                      " elements, found " + std::to_string(count));
}

void require_arg(bool ok, const std::string& what) {
  if (!ok) throw Error(Status::argument, what);
}

landbc_emulator& live(const landbc_emulator* h, const char* fn) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (!h) throw Error(Status::state, std::string(fn) + ": handle is NULL (not opened, or closed)");
  const auto it = registry().find(id_of(h));
  if (it == registry().end())
    throw Error(Status::state, std::string(fn) + ": handle is not a live emulator (closed?)");
  return *it->second;
}

std::string str(const char* s, const char* what) {
  require_arg(s != nullptr, std::string(what) + ": expected a string, found NULL");
  return s;
}

torch::ScalarType scalar_type(int dtype) {
  switch (dtype) {
    case LANDBC_UINT8:
      return torch::kUInt8;
    case LANDBC_INT32:
      return torch::kInt32;
    case LANDBC_FLOAT32:
      return torch::kFloat32;
    case LANDBC_FLOAT64:
      return torch::kFloat64;
  }
  throw Error(Status::argument,
              "dtype: expected LANDBC_UINT8, LANDBC_INT32, LANDBC_FLOAT32 or "
              "LANDBC_FLOAT64, found " +
                  std::to_string(dtype));
}

int dtype_code(torch::ScalarType t) { return t == torch::kUInt8 ? LANDBC_UINT8 : LANDBC_FLOAT32; }

const landbc::Grid& grid_of(const landbc_emulator& h, const char* fn) {
  if (!h.grid)
    throw Error(Status::state, std::string(fn) + ": no grid yet; call landbc_set_grid first");
  return *h.grid;
}

// After initialise / load_restart: the fields landbc_get_field reads. A step
// replaces only the outputs; the statics stay the state's own until the next start.
void start_fields(landbc_emulator& h) {
  h.outputs = h.emu.outputs();
  h.statics.clear();
  const landbc::TensorMap state = h.emu.state();
  for (const auto* v : h.emu.variables("static")) h.statics[v->name] = state.at(v->name);
}

std::vector<const landbc::Variable*> of_role(const landbc_emulator& h, int role) {
  static const char* names[] = {"", "static", "forcing", "state", "derived"};
  require_arg(
      role >= LANDBC_STATIC && role <= LANDBC_DERIVED,
      "role: expected LANDBC_STATIC, LANDBC_FORCING, LANDBC_STATE or LANDBC_DERIVED, found " +
          std::to_string(role));
  return h.emu.variables(names[role]);
}

void copy_string(const std::string& s, char* buf, size_t buflen, const char* what) {
  require_arg(buf != nullptr, std::string(what) + ": buffer is NULL");
  require_arg(buflen > s.size(), std::string(what) + ": buffer of " + std::to_string(buflen) +
                                     " bytes is too small for '" + s + "' (" +
                                     std::to_string(s.size() + 1) + " needed)");
  std::memcpy(buf, s.c_str(), s.size() + 1);
}

// A restart may bring another domain or land mask: the host grid's weights then
// no longer fit, and the host must declare it again.
void drop_host_grid_if_moved(landbc_emulator& h) {
  if (!h.host) return;
  const auto& w = h.host->to_host();
  const bool fits =
      w.n_source() == h.emu.grid().ny * h.emu.grid().nx &&
      w.metadata().at("mask_sha256") == landbc::mask_sha256(h.statics.at("land_mask"));
  if (!fits) {
    h.host.reset();
    h.host_bound.clear();
  }
}

landbc::TensorMap bound_of_role(const landbc_emulator& h, const std::string& role) {
  landbc::TensorMap out;
  for (const auto* v : h.emu.variables(role))
    if (auto it = h.bound.find(v->name); it != h.bound.end()) out[v->name] = it->second;
  return out;
}

int bind(landbc_emulator* handle, const char* name_c, const void* data, int dtype, int ndim,
         const int64_t* shape, bool on_device) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_set_field");
    const std::string name = str(name_c, "name");
    const landbc::Variable& var = h.emu.variable(name);
    require_arg(var.role != "derived",
                name + ": is an output; only static, prior and forcing fields are set");
    require_arg(data != nullptr, name + ": data is NULL");
    const auto type = scalar_type(dtype);
    require_arg(ndim >= 0 && ndim <= 3,
                name + ": ndim must be 0..3, found " + std::to_string(ndim));
    require_arg(ndim == 0 || shape != nullptr, name + ": shape is NULL");
    const std::vector<int64_t> given(shape, shape + ndim);
    const std::vector<int64_t> expected = var.shape(grid_of(h, "landbc_set_field"));
    if (given != expected)
      throw Error(Status::argument, name + ": expected shape " + landbc::shape_str(expected) +
                                        ", found " + landbc::shape_str(given));
    const torch::Device dev = on_device ? h.emu.device() : torch::Device(torch::kCPU);
    // A view, not a copy: the caller keeps the memory valid while bound (landbc.h).
    h.bound[name] = torch::from_blob(const_cast<void*>(data), given,
                                     torch::TensorOptions().dtype(type).device(dev));
    h.host_bound.erase(name);  // one binding per variable: the latest wins
  });
}

}  // namespace

// The message of landbc_last_error(), for the other files of the C ABI (calendar.cpp).
void landbc::set_last_error(const std::string& message) { last_error = message; }

extern "C" {

const char* landbc_last_error(void) { return last_error.c_str(); }

const char* landbc_status_name(int status) {
  switch (status) {
    case LANDBC_OK:
      return "LANDBC_OK";
    case LANDBC_ERR_ARGUMENT:
      return "LANDBC_ERR_ARGUMENT";
    case LANDBC_ERR_IO:
      return "LANDBC_ERR_IO";
    case LANDBC_ERR_BUNDLE:
      return "LANDBC_ERR_BUNDLE";
    case LANDBC_ERR_DEVICE:
      return "LANDBC_ERR_DEVICE";
    case LANDBC_ERR_STATE:
      return "LANDBC_ERR_STATE";
    case LANDBC_ERR_INTERNAL:
      return "LANDBC_ERR_INTERNAL";
  }
  return "LANDBC_UNKNOWN_STATUS";
}

const char* landbc_version(void) { return landbc::version(); }

int landbc_open(const char* bundle_dir, const char* device, const char* dtype,
                landbc_emulator** handle) {
  if (handle) *handle = nullptr;
  return guarded([&] {
    require_arg(handle != nullptr, "handle: expected a pointer to a landbc_emulator*, found NULL");
    auto h = std::make_unique<landbc_emulator>(landbc::Emulator(
        str(bundle_dir, "bundle_dir"), device ? device : "cpu", dtype ? dtype : "float32"));
    std::lock_guard<std::mutex> lock(registry_mutex);
    const uintptr_t id = next_id;
    next_id += kIdStep;
    registry().emplace(id, std::move(h));
    *handle = reinterpret_cast<landbc_emulator*>(id);
  });
}

int landbc_close(landbc_emulator** handle) {
  return guarded([&] {
    if (!handle || !*handle) return;
    live(*handle, "landbc_close");  // a stale or unknown handle: LANDBC_ERR_STATE
    std::unique_ptr<landbc_emulator> closing;
    {
      std::lock_guard<std::mutex> lock(registry_mutex);
      auto it = registry().find(id_of(*handle));
      closing = std::move(it->second);
      registry().erase(it);
    }
    *handle = nullptr;  // the emulator is freed outside the lock, when `closing` goes
  });
}

int landbc_set_grid(landbc_emulator* handle, double lat_south, double lat_north, double lon_west,
                    double lon_east) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_set_grid");
    if (h.emu.initialised())
      throw Error(Status::state,
                  "landbc_set_grid: the emulator is initialised; open a new handle "
                  "for another domain");
    h.grid = landbc::Grid::from_box(lat_south, lat_north, lon_west, lon_east, h.emu.res(),
                                    h.emu.coarse_factor());
    h.bound.clear();
  });
}

int landbc_set_field(landbc_emulator* h, const char* name, const void* data, int dtype, int ndim,
                     const int64_t* shape) {
  return bind(h, name, data, dtype, ndim, shape, false);
}

int landbc_set_field_device(landbc_emulator* h, const char* name, const void* data, int dtype,
                            int ndim, const int64_t* shape) {
  return bind(h, name, data, dtype, ndim, shape, true);
}

int landbc_initialise(landbc_emulator* handle, int year, int month, const char* direction) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_initialise");
    h.emu.initialise(grid_of(h, "landbc_initialise"), bound_of_role(h, "static"),
                     bound_of_role(h, "state"), year, month, direction ? direction : "forward");
    start_fields(h);
  });
}

// The forcing bound for the next step, on the emulator's grid.
static landbc::TensorMap bound_forcing(const landbc_emulator& h) {
  landbc::TensorMap forcing = bound_of_role(h, "forcing");
  for (const auto& [name, on_host] : h.host_bound)  // host_bound is empty without a host grid
    forcing[name] = h.host->forcing_from_host(h.emu.variable(name), on_host, h.emu.grid());
  return forcing;
}

int landbc_step(landbc_emulator* handle, int* year, int* month) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_step");
    h.outputs = h.emu.step(bound_forcing(h));
    const auto [y, m] = h.emu.time();
    if (year) *year = y;
    if (month) *month = m;
  });
}

// -- a block of a decomposed domain (MPI)

int landbc_halo_width(const landbc_emulator* handle, int* stride, int* width) {
  return guarded([&] {
    const landbc_emulator& h = live(handle, "landbc_halo_width");
    require_arg(stride && width, "stride, width: expected pointers, found NULL");
    *stride = static_cast<int>(h.emu.stride());
    *width = static_cast<int>(h.emu.halo_width());
  });
}

int landbc_set_halo(landbc_emulator* handle, int top, int bottom, int left, int right) {
  return guarded([&] { live(handle, "landbc_set_halo").emu.set_halo(top, bottom, left, right); });
}

int landbc_stage_count(const landbc_emulator* handle, int* count) {
  return guarded([&] {
    const landbc_emulator& h = live(handle, "landbc_stage_count");
    require_arg(count != nullptr, "count: expected a pointer, found NULL");
    *count = static_cast<int>(h.emu.stages().size());
  });
}

int landbc_run_stage(landbc_emulator* handle, int index, char* field, size_t field_len) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_run_stage");
    const auto stages = h.emu.stages();
    require_arg(index >= 0 && index < static_cast<int>(stages.size()),
                "index: expected 0.." + std::to_string(stages.size() - 1) + ", found " +
                    std::to_string(index));
    copy_string(stages[index], field, field_len, "landbc_run_stage");
    h.emu.run_stage(bound_forcing(h), stages[index]);
    if (index + 1 == static_cast<int>(stages.size())) h.outputs = h.emu.outputs();
  });
}

int landbc_get_prior(landbc_emulator* handle, const char* name_c, void* buffer, int dtype,
                     int64_t count) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_get_prior");
    const std::string name = str(name_c, "name");
    const torch::Tensor t = h.emu.field(name);
    require_arg(buffer != nullptr, name + ": buffer is NULL");
    require_count(name, t, count);
    torch::from_blob(buffer, t.sizes(), torch::TensorOptions().dtype(scalar_type(dtype))).copy_(t);
  });
}

int landbc_fill_halo(landbc_emulator* handle, const char* name_c, const void* data, int dtype,
                     int64_t count) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_fill_halo");
    const std::string name = str(name_c, "name");
    const torch::Tensor t = h.emu.field(name);
    require_arg(data != nullptr, name + ": data is NULL");
    require_count(name, t, count);
    h.emu.fill_halo(name, torch::from_blob(const_cast<void*>(data), t.sizes(),
                                           torch::TensorOptions().dtype(scalar_type(dtype))));
  });
}

static const torch::Tensor& field_of(const landbc_emulator& h, const std::string& name) {
  const landbc::Variable& var = h.emu.variable(name);
  require_arg(var.role != "forcing",
              name + ": forcing is input only; outputs and statics can be read");
  if (!h.emu.initialised())
    throw Error(Status::state,
                name + ": no fields yet; call landbc_initialise or landbc_load_restart");
  for (const landbc::TensorMap* fields : {&h.outputs, &h.statics})
    if (auto it = fields->find(name); it != fields->end()) return it->second;
  throw Error(Status::argument, name + ": not a field of the emulator");
}

int landbc_get_field(landbc_emulator* handle, const char* name_c, void* buffer, int dtype,
                     int64_t count) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_get_field");
    const std::string name = str(name_c, "name");
    const torch::Tensor& t = field_of(h, name);
    const auto type = scalar_type(dtype);
    require_arg(buffer != nullptr, name + ": buffer is NULL");
    require_count(name, t, count);
    torch::from_blob(buffer, t.sizes(), torch::TensorOptions().dtype(type)).copy_(t);
  });
}

int landbc_get_field_device(landbc_emulator* handle, const char* name_c, const void** data,
                            int* dtype) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_get_field_device");
    const std::string name = str(name_c, "name");
    require_arg(data != nullptr && dtype != nullptr, name + ": data and dtype must not be NULL");
    const torch::Tensor& t = field_of(h, name);
    *data = t.data_ptr();
    *dtype = dtype_code(t.scalar_type());
  });
}

int landbc_time(const landbc_emulator* handle, int* year, int* month) {
  return guarded([&] {
    const auto [y, m] = live(handle, "landbc_time").emu.time();
    require_arg(year && month, "year, month: expected pointers, found NULL");
    *year = y;
    *month = m;
  });
}

int landbc_next_time(const landbc_emulator* handle, int* year, int* month) {
  return guarded([&] {
    const auto [y, m] = live(handle, "landbc_next_time").emu.next_time();
    require_arg(year && month, "year, month: expected pointers, found NULL");
    *year = y;
    *month = m;
  });
}

int landbc_direction(const landbc_emulator* handle, int* direction) {
  return guarded([&] {
    const std::string d = live(handle, "landbc_direction").emu.direction();
    require_arg(direction != nullptr, "direction: expected a pointer, found NULL");
    *direction = d == "forward" ? 1 : -1;
  });
}

int landbc_save_restart(const landbc_emulator* handle, const char* path) {
  return guarded([&] { live(handle, "landbc_save_restart").emu.save_restart(str(path, "path")); });
}

int landbc_load_restart(landbc_emulator* handle, const char* path) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_load_restart");
    h.emu.load_restart(str(path, "path"));
    const landbc::Grid& g = h.emu.grid();
    if (!h.grid || h.grid->to_json() != g.to_json()) h.bound.clear();  // bound to another domain
    h.grid = g;
    start_fields(h);
    drop_host_grid_if_moved(h);
  });
}

int landbc_grid_shape(const landbc_emulator* handle, int64_t* ny, int64_t* nx, int64_t* coarse_ny,
                      int64_t* coarse_nx) {
  return guarded([&] {
    const landbc::Grid& g = grid_of(live(handle, "landbc_grid_shape"), "landbc_grid_shape");
    if (ny) *ny = g.ny;
    if (nx) *nx = g.nx;
    if (coarse_ny) *coarse_ny = g.coarse_ny();
    if (coarse_nx) *coarse_nx = g.coarse_nx();
  });
}

int landbc_resolution(const landbc_emulator* handle, double* res, int* coarse_factor) {
  return guarded([&] {
    const landbc_emulator& h = live(handle, "landbc_resolution");
    if (res) *res = h.emu.res();
    if (coarse_factor) *coarse_factor = static_cast<int>(h.emu.coarse_factor());
  });
}

int landbc_variable_count(const landbc_emulator* handle, int role, int* count) {
  return guarded([&] {
    const auto vars = of_role(live(handle, "landbc_variable_count"), role);
    require_arg(count != nullptr, "count: expected a pointer, found NULL");
    *count = static_cast<int>(vars.size());
  });
}

int landbc_variable_name(const landbc_emulator* handle, int role, int index, char* buf,
                         size_t buflen) {
  return guarded([&] {
    const auto vars = of_role(live(handle, "landbc_variable_name"), role);
    require_arg(index >= 0 && index < static_cast<int>(vars.size()),
                "index: expected 0.." + std::to_string(vars.size() - 1) + ", found " +
                    std::to_string(index));
    copy_string(vars[index]->name, buf, buflen, "landbc_variable_name");
  });
}

int landbc_variable_units(const landbc_emulator* handle, const char* name, char* buf,
                          size_t buflen) {
  return guarded([&] {
    const auto& var = live(handle, "landbc_variable_units").emu.variable(str(name, "name"));
    copy_string(var.units, buf, buflen, "landbc_variable_units");
  });
}

int landbc_variable_dtype(const landbc_emulator* handle, const char* name, int* dtype) {
  return guarded([&] {
    const auto& var = live(handle, "landbc_variable_dtype").emu.variable(str(name, "name"));
    require_arg(dtype != nullptr, "dtype: expected a pointer, found NULL");
    *dtype = dtype_code(var.scalar_type());
  });
}

int landbc_variable_shape(const landbc_emulator* handle, const char* name, int* ndim,
                          int64_t* shape, int capacity) {
  return guarded([&] {
    const landbc_emulator& h = live(handle, "landbc_variable_shape");
    const auto& var = h.emu.variable(str(name, "name"));
    require_arg(ndim && shape, "ndim, shape: expected pointers, found NULL");
    const auto s = var.shape(grid_of(h, "landbc_variable_shape"));
    require_arg(capacity >= static_cast<int>(s.size()),
                var.name + ": shape holds " + std::to_string(capacity) + " entries, the rank is " +
                    std::to_string(s.size()));
    *ndim = static_cast<int>(s.size());
    for (size_t i = 0; i < s.size(); ++i) shape[i] = s[i];
  });
}

// -- the host model's grid --------------------------------------------------------------

int landbc_set_host_grid(landbc_emulator* handle, const char* name, const char* weights_dir) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_set_host_grid");
    if (!h.emu.initialised())
      throw Error(Status::state,
                  "landbc_set_host_grid: the host grid's weights are checked against the "
                  "domain's land mask; call landbc_initialise or landbc_load_restart first");
    const auto it = h.statics.find("land_mask");
    if (it == h.statics.end())
      throw Error(Status::bundle, "landbc_set_host_grid: the bundle has no static land_mask");
    landbc::HostGrid host(str(name, "name"), str(weights_dir, "weights_dir"), h.emu.grid(),
                          it->second);
    h.host = std::move(host);  // only now: a failed declaration keeps the previous host grid
    h.host_bound.clear();
  });
}

int landbc_host_grid_size(const landbc_emulator* handle, int64_t* npoints) {
  return guarded([&] {
    const landbc_emulator& h = live(handle, "landbc_host_grid_size");
    require_arg(npoints != nullptr, "npoints: expected a pointer, found NULL");
    if (!h.host)
      throw Error(Status::state, "landbc_host_grid_size: no host grid; call landbc_set_host_grid");
    *npoints = h.host->size();
  });
}

int landbc_set_host_field(landbc_emulator* handle, const char* name_c, const void* data, int dtype,
                          int ndim, const int64_t* shape) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_set_host_field");
    const std::string name = str(name_c, "name");
    const landbc::Variable& var = h.emu.variable(name);
    if (!h.host)
      throw Error(Status::state, name + ": no host grid; call landbc_set_host_grid first");
    require_arg(var.role == "forcing" && var.grid == "coarse",
                name + ": only coarse forcing fields can be given on the host grid");
    require_arg(data != nullptr, name + ": data is NULL");
    const auto type = scalar_type(dtype);
    require_arg(type == torch::kFloat32 || type == torch::kFloat64,
                name + ": expected LANDBC_FLOAT32 or LANDBC_FLOAT64 on the host grid");
    require_arg(ndim >= 1 && ndim <= 3 && shape != nullptr,
                name + ": expected ndim 1..3 and a shape, found ndim " + std::to_string(ndim));
    const std::vector<int64_t> given(shape, shape + ndim);
    // (points) or (channels, points), points flat or in the host grid's own shape.
    const std::vector<int64_t> coarse = var.shape(grid_of(h, "landbc_set_host_field"));
    std::vector<int64_t> lead(coarse.begin(), coarse.end() - 2);  // channels, if any
    std::vector<int64_t> flat = lead, own = lead;
    flat.push_back(h.host->size());
    own.insert(own.end(), h.host->shape().begin(), h.host->shape().end());
    if (given != flat && given != own)
      throw Error(Status::argument, name + ": on host grid " + h.host->name() + " expected shape " +
                                        landbc::shape_str(flat) +
                                        (own != flat ? " or " + landbc::shape_str(own) : "") +
                                        ", found " + landbc::shape_str(given));
    h.host_bound[name] =
        torch::from_blob(const_cast<void*>(data), given, torch::TensorOptions().dtype(type));
    h.bound.erase(name);  // one binding per variable: the latest wins
  });
}

int landbc_get_host_field(landbc_emulator* handle, const char* name_c, void* buffer, int dtype,
                          int64_t count) {
  return guarded([&] {
    landbc_emulator& h = live(handle, "landbc_get_host_field");
    const std::string name = str(name_c, "name");
    if (!h.host)
      throw Error(Status::state, name + ": no host grid; call landbc_set_host_grid first");
    const torch::Tensor& t = field_of(h, name);
    const landbc::Variable& var = h.emu.variable(name);
    require_arg(var.grid != "coarse" && t.dim() == 2,
                name + ": only high-resolution fields are aggregated to the host grid");
    const auto type = scalar_type(dtype);
    require_arg(type == torch::kFloat32 || type == torch::kFloat64,
                name +
                    ": expected LANDBC_FLOAT32 or LANDBC_FLOAT64 (NaN marks cells "
                    "without land)");
    require_arg(buffer != nullptr, name + ": buffer is NULL");
    require_arg(count == h.host->size(), name + ": count expected " +
                                             std::to_string(h.host->size()) + " points of " +
                                             h.host->name() + ", found " + std::to_string(count));
    if (type == torch::kFloat64) {
      h.host->field_to_host(var, t, static_cast<double*>(buffer));
    } else {
      std::vector<double> tmp(static_cast<size_t>(count));
      h.host->field_to_host(var, t, tmp.data());
      float* out = static_cast<float*>(buffer);
      for (int64_t i = 0; i < count; ++i) out[i] = static_cast<float>(tmp[i]);
    }
  });
}

}  // extern "C"
