// What a coupling step costs through the C ABI, against the bare TorchScript
// stepper (the same file, nets cast the same way), measured in one process.
//
//   landbc_bench <bundle> [size=1025] [steps=12] [dtype=float32]
//
// Both run the same months on the same synthetic inputs (documented below),
// interleaved step by step so that drift of the machine hits both alike. The
// C ABI step includes what a host pays: binding the 7 forcing fields,
// validation (shape, NaN, range), the step, and copying all 9 outputs into
// host buffers. Step-to-step noise here (1-3 %) is larger than that price, so
// bind, validation and copy-out are also timed on their own. Printed as JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include <ATen/Parallel.h>

#include "landbc.h"
#include "landbc/emulator.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void check(int status) {
  if (status != LANDBC_OK) {
    std::fprintf(stderr, "%s: %s\n", landbc_status_name(status), landbc_last_error());
    std::exit(1);
  }
}

// Synthetic but valid inputs: land everywhere, smooth terrain, class codes
// cycling through the catalog, mid-latitude forcing. Only their cost matters.
struct Inputs {
  landbc::TensorMap statics, priors, forcing;
};

Inputs make_inputs(const landbc::Grid& g) {
  Inputs in;
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  const auto u8 = torch::TensorOptions().dtype(torch::kUInt8);
  const auto idx = torch::arange(g.ny * g.nx).reshape({g.ny, g.nx});
  in.statics["land_mask"] = torch::ones({g.ny, g.nx}, u8);
  in.statics["elevation"] = (idx % 997).to(torch::kFloat32) * 2.0;
  in.statics["slope"] = (idx % 89).to(torch::kFloat32) * 0.1;
  in.statics["koppen"] = (idx / 4001 % 5).to(torch::kUInt8);
  in.statics["igbp"] = (idx / 3001 % 17).to(torch::kUInt8);
  in.statics["lai_climatology"] = torch::full({12, g.ny, g.nx}, 1.5f, f32);
  in.priors["lu"] = (idx / 2003 % 8).to(torch::kUInt8);
  in.priors["lc"] = (idx / 1009 % 15).to(torch::kUInt8);
  in.priors["lai"] = torch::full({g.ny, g.nx}, 1.5f, f32);
  const int64_t cy = g.coarse_ny(), cx = g.coarse_nx();
  in.forcing["luh2_frac"] = torch::full({12, cy, cx}, 1.0f / 12, f32);
  in.forcing["secma"] = torch::full({cy, cx}, 40.0f, f32);
  in.forcing["secmb"] = torch::full({cy, cx}, 8.0f, f32);
  in.forcing["co2"] = torch::full({}, 410.0f, f32);
  in.forcing["t2m"] = torch::full({cy, cx}, 283.0f, f32);
  in.forcing["tp"] = torch::full({cy, cx}, 2.5f, f32);
  in.forcing["ssrd"] = torch::full({cy, cx}, 160.0f, f32);
  return in;
}

int c_dtype(const torch::Tensor& t) {
  return t.scalar_type() == torch::kUInt8 ? LANDBC_UINT8 : LANDBC_FLOAT32;
}

void bind_fields(landbc_emulator* h, const landbc::TensorMap& fields) {
  for (const auto& [name, t] : fields)
    check(landbc_set_field(h, name.c_str(), t.data_ptr(), c_dtype(t), static_cast<int>(t.dim()),
                           t.sizes().data()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <bundle> [size=1025] [steps=12] [dtype=float32]\n", argv[0]);
    return 2;
  }
  const std::string bundle = argv[1];
  const int64_t size = argc > 2 ? std::stoll(argv[2]) : 1025;
  const int steps = argc > 3 ? std::stoi(argv[3]) : 12;
  const std::string dtype = argc > 4 ? argv[4] : "float32";
  try {
    // The bundle's grid parameters, and the validation timed on its own below.
    landbc::Emulator core(bundle, "cpu", dtype);
    const double res = core.res();
    const double lat_north = 70.0, lon_west = -10.0;
    const landbc::Grid g = landbc::Grid::from_box(lat_north - size * res, lat_north, lon_west,
                                                  lon_west + size * res, res, core.coarse_factor());
    Inputs in = make_inputs(g);
    // The bare stepper: the TorchScript file straight from the bundle.
    torch::jit::Module stepper = torch::jit::load(bundle + "/stepper_forward.pt");
    landbc::prepare_nets(stepper, dtype == "float32" ? torch::kFloat32 : torch::kBFloat16);
    stepper.eval();
    c10::Dict<std::string, torch::Tensor> s, p, f;
    for (const auto& [k, v] : in.statics) s.insert(k, v.clone());
    for (const auto& [k, v] : in.priors) p.insert(k, v.clone());
    for (const auto& [k, v] : in.forcing) f.insert(k, v);
    stepper.get_method("init")({s, p, 2014, 12, g.origin_row, g.origin_col});

    // The C ABI, as a host uses it.
    landbc_emulator* h = nullptr;
    check(landbc_open(bundle.c_str(), "cpu", dtype.c_str(), &h));
    check(landbc_set_grid(h, g.lat_south, g.lat_north, g.lon_west, g.lon_east));
    bind_fields(h, in.statics);
    bind_fields(h, in.priors);
    check(landbc_initialise(h, 2014, 12, "forward"));
    std::vector<std::vector<char>> out_buffers;
    const char* outputs[] = {"lu", "lc", "lai", "cvh", "cvl", "tvh", "tvl", "lai_hv", "lai_lv"};
    for (const char* name : outputs) {
      int dt = 0;
      check(landbc_variable_dtype(h, name, &dt));
      out_buffers.emplace_back(g.ny * g.nx * (dt == LANDBC_UINT8 ? 1 : 4));
    }

    std::vector<double> t_bare, t_capi, t_bind, t_copy, t_validate;
    for (int i = 0; i < steps; ++i) {
      auto t0 = Clock::now();
      {
        c10::InferenceMode guard;
        stepper.get_method("step")({f});
      }
      t_bare.push_back(seconds_since(t0));

      t0 = Clock::now();
      bind_fields(h, in.forcing);
      t_bind.push_back(seconds_since(t0));
      check(landbc_step(h, nullptr, nullptr));
      const auto t1 = Clock::now();
      for (size_t k = 0; k < out_buffers.size(); ++k) {
        int dt = 0;
        check(landbc_variable_dtype(h, outputs[k], &dt));
        check(landbc_get_field(h, outputs[k], out_buffers[k].data(), dt, g.ny * g.nx));
      }
      t_copy.push_back(seconds_since(t1));
      t_capi.push_back(seconds_since(t0));

      // What validation inside landbc_step costs (shape, NaN, range of every forcing
      // field), timed on its own: with bind and copy-out, the whole host-side price.
      const auto t2 = Clock::now();
      for (const auto* v : core.variables("forcing")) core.validate(*v, in.forcing.at(v->name), g);
      t_validate.push_back(seconds_since(t2));
    }
    check(landbc_close(&h));

    const double bare_total = std::accumulate(t_bare.begin(), t_bare.end(), 0.0);
    const double capi_total = std::accumulate(t_capi.begin(), t_capi.end(), 0.0);
    std::printf(
        "{\"size\": %lld, \"steps\": %d, \"dtype\": \"%s\", \"threads\": %d,\n"
        " \"bare_mean_s\": %.4f, \"capi_mean_s\": %.4f, \"bare_median_s\": %.4f, "
        "\"capi_median_s\": %.4f,\n"
        " \"bind_median_ms\": %.3f, \"validate_median_ms\": %.3f, \"copy_out_median_ms\": %.3f,\n"
        " \"host_side_pct_of_bare_median\": %.3f,\n"
        " \"end_to_end_pct_total\": %.2f, \"end_to_end_pct_median\": %.2f}\n",
        static_cast<long long>(size), steps, dtype.c_str(), at::get_num_threads(),
        bare_total / steps, capi_total / steps, median(t_bare), median(t_capi),
        1e3 * median(t_bind), 1e3 * median(t_validate), 1e3 * median(t_copy),
        100.0 * (median(t_bind) + median(t_validate) + median(t_copy)) / median(t_bare),
        100.0 * (capi_total / bare_total - 1.0), 100.0 * (median(t_capi) / median(t_bare) - 1.0));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "landbc_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
