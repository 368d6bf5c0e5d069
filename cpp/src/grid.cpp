// landbc::Grid: the C++ twin of emulator/grid.py (same checks, same JSON).
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "landbc/emulator.hpp"

namespace landbc {
namespace {

// Whole number of cells, within the tolerance emulator/grid.py uses.
int64_t as_int(double x, const char* what) {
  const double n = std::round(x);
  if (std::abs(x - n) > 1e-4) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "grid: %s must be a whole number of cells, found %.6f", what, x);
    throw Error(Status::argument, buf);
  }
  return static_cast<int64_t>(n);
}

// Python's repr of a float (shortest round-trip, always with a '.' or an
// exponent), so that the grid JSON of a restart is byte-identical to Python's.
std::string py_float(double x) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
  std::string s(buf, end);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

Grid Grid::from_box(double lat_south, double lat_north, double lon_west, double lon_east,
                    double res, int64_t coarse_factor) {
  auto fail = [](const std::string& m) { throw Error(Status::argument, "grid: " + m); };
  if (!(res > 0)) fail("res must be > 0 degrees, found " + py_float(res));
  if (!(-90 <= lat_south && lat_south < lat_north && lat_north <= 90))
    fail("latitudes must satisfy -90 <= lat_south < lat_north <= 90, found lat_south=" +
         py_float(lat_south) + ", lat_north=" + py_float(lat_north));
  if (!(-180 <= lon_west && lon_west < lon_east && lon_east <= 180))
    fail("longitudes must satisfy -180 <= lon_west < lon_east <= 180, found lon_west=" +
         py_float(lon_west) + ", lon_east=" + py_float(lon_east));
  if (coarse_factor < 1)
    fail("coarse_factor must be an integer >= 1, found " + std::to_string(coarse_factor));
  Grid g;
  g.lat_south = lat_south;
  g.lat_north = lat_north;
  g.lon_west = lon_west;
  g.lon_east = lon_east;
  g.res = res;
  g.coarse_factor = coarse_factor;
  g.ny = as_int((lat_north - lat_south) / res, "latitude extent / res");
  g.nx = as_int((lon_east - lon_west) / res, "longitude extent / res");
  g.origin_row = as_int((90.0 - lat_north) / res, "(90 - lat_north) / res");
  g.origin_col = as_int((lon_west + 180.0) / res, "(lon_west + 180) / res");
  const std::pair<const char*, int64_t> sides[] = {{"rows", g.ny},
                                                   {"columns", g.nx},
                                                   {"origin row", g.origin_row},
                                                   {"origin col", g.origin_col}};
  for (const auto& [name, n] : sides)
    if (n % coarse_factor)
      fail(std::string(name) + " (" + std::to_string(n) + ") must be a multiple of coarse_factor " +
           std::to_string(coarse_factor) +
           " so that coarse cells align with the global coarse lattice");
  return g;
}

std::string Grid::to_json() const {
  // json.dumps(Grid.to_dict()): default separators, dataclass field order
  return "{\"lat_south\": " + py_float(lat_south) + ", \"lat_north\": " + py_float(lat_north) +
         ", \"lon_west\": " + py_float(lon_west) + ", \"lon_east\": " + py_float(lon_east) +
         ", \"res\": " + py_float(res) + ", \"coarse_factor\": " + std::to_string(coarse_factor) +
         "}";
}

Grid Grid::from_json(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    return from_box(j.at("lat_south").get<double>(), j.at("lat_north").get<double>(),
                    j.at("lon_west").get<double>(), j.at("lon_east").get<double>(),
                    j.at("res").get<double>(), j.at("coarse_factor").get<int64_t>());
  } catch (const nlohmann::json::exception& e) {
    throw Error(Status::argument, std::string("grid: not a valid grid description (") + e.what() +
                                      "): " + text.substr(0, 200));
  }
}

std::vector<int64_t> Variable::shape(const Grid& g) const {
  std::vector<int64_t> s;
  if (!channels.empty()) s.push_back(static_cast<int64_t>(channels.size()));
  if (grid == "high") {
    s.push_back(g.ny);
    s.push_back(g.nx);
  } else if (grid == "coarse") {
    s.push_back(g.coarse_ny());
    s.push_back(g.coarse_nx());
  }
  return s;
}

torch::ScalarType Variable::scalar_type() const {
  return is_class ? torch::kUInt8 : torch::kFloat32;
}

}  // namespace landbc
