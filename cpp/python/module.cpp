// landbc._cpp: landbc::Emulator seen from Python (pybind11, as bundled with torch).
//
// It exists for the parity tests (the C++ core against the Python front, bit
// for bit) and for Python users who want the C++ path. Tensors cross without
// copies through torch's own pybind11 casters.
#include <pybind11/stl.h>
#include <torch/extension.h>

#include "landbc/emulator.hpp"
#include "landbc/remap.hpp"

namespace py = pybind11;

namespace {

// Grids cross as the dict of Python's Grid.to_dict(), through the JSON the
// restart files use, so the key list lives once (landbc::Grid::to_json/from_json).
landbc::Grid grid_from_dict(const py::dict& d) {
  const auto json = py::module_::import("json");
  return landbc::Grid::from_json(json.attr("dumps")(d).cast<std::string>());
}

py::dict grid_to_dict(const landbc::Grid& g) {
  return py::module_::import("json").attr("loads")(g.to_json());
}

}  // namespace

PYBIND11_MODULE(_cpp, m) {
  // torch's Python module registers the tensor type the casters convert to; import it
  // here, so that `import landbc` need not (the CLI starts without torch).
  py::module_::import("torch");
  m.doc() = "landbc C++ core (landbc::Emulator) for Python; see cpp/README.md";
  m.def("version", &landbc::version);
  m.def("sha256_file", &landbc::sha256_file);
  m.def("mask_sha256", &landbc::mask_sha256, py::arg("land_mask"));
  // The C++ application of a weight file, for the parity tests against landbc.coupler.remap:
  // a float32/float64 field -> the float64 average; uint8 codes -> the dominant code.
  m.def(
      "remap_apply",
      [](const std::string& path, const torch::Tensor& field) {
        const auto w = landbc::RemapWeights::load(path);
        torch::Tensor f = field.contiguous();
        TORCH_CHECK(f.numel() == w.n_source(), "field has ", f.numel(), " values, weights ",
                    w.n_source());
        torch::Tensor out = torch::empty({w.n_target()}, torch::kFloat64);
        if (f.scalar_type() == torch::kUInt8)
          w.dominant(f.data_ptr<uint8_t>(), out.data_ptr<double>());
        else if (f.scalar_type() == torch::kFloat64)
          w.average(f.data_ptr<double>(), out.data_ptr<double>());
        else
          w.average(f.to(torch::kFloat32).contiguous().data_ptr<float>(), out.data_ptr<double>());
        return out;
      },
      py::arg("path"), py::arg("field"));

  // Status codes of the C ABI become Python exceptions whose message starts
  // with the status name, e.g. "[LANDBC_ERR_ARGUMENT] t2m: expected shape ...".
  static const char* status_names[] = {
      "LANDBC_OK",         "LANDBC_ERR_ARGUMENT", "LANDBC_ERR_IO",      "LANDBC_ERR_BUNDLE",
      "LANDBC_ERR_DEVICE", "LANDBC_ERR_STATE",    "LANDBC_ERR_INTERNAL"};
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const landbc::Error& e) {
      const int s = static_cast<int>(e.status());
      const std::string msg = std::string("[") + status_names[s] + "] " + e.what();
      PyObject* type = PyExc_RuntimeError;
      if (e.status() == landbc::Status::argument || e.status() == landbc::Status::bundle)
        type = PyExc_ValueError;
      else if (e.status() == landbc::Status::io)
        type = PyExc_OSError;
      PyErr_SetString(type, msg.c_str());
    }
  });

  py::class_<landbc::Emulator>(m, "Emulator")
      .def(py::init<const std::string&, const std::string&, const std::string&>(),
           py::arg("bundle"), py::arg("device") = "cpu", py::arg("dtype") = "float32")
      .def_property_readonly("bundle_name", &landbc::Emulator::bundle_name)
      .def_property_readonly("res", &landbc::Emulator::res)
      .def_property_readonly("coarse_factor", &landbc::Emulator::coarse_factor)
      .def_property_readonly("directions", &landbc::Emulator::directions)
      .def_property_readonly("initialised", &landbc::Emulator::initialised)
      .def_property_readonly("direction", &landbc::Emulator::direction)
      .def_property_readonly("time", &landbc::Emulator::time)
      .def_property_readonly("next_time", &landbc::Emulator::next_time)
      .def_property_readonly("grid",
                             [](const landbc::Emulator& e) { return grid_to_dict(e.grid()); })
      .def(
          "variables",
          [](const landbc::Emulator& e, const std::string& role) {
            std::vector<std::string> names;
            for (const auto* v : e.variables(role)) names.push_back(v->name);
            return names;
          },
          py::arg("role"))
      .def(
          "initialise",
          [](landbc::Emulator& e, const py::dict& grid, const landbc::TensorMap& statics,
             const landbc::TensorMap& priors, int year, int month, const std::string& direction) {
            const landbc::Grid g = grid_from_dict(grid);
            py::gil_scoped_release release;
            e.initialise(g, statics, priors, year, month, direction);
          },
          py::arg("grid"), py::arg("static"), py::arg("priors"), py::arg("year"), py::arg("month"),
          py::arg("direction") = "forward")
      .def("step", &landbc::Emulator::step, py::arg("forcing"),
           py::call_guard<py::gil_scoped_release>())
      .def("state", &landbc::Emulator::state)
      .def("outputs", &landbc::Emulator::outputs)
      .def("save_restart", &landbc::Emulator::save_restart, py::arg("path"))
      .def("load_restart", &landbc::Emulator::load_restart, py::arg("path"));
}
