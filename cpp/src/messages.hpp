// Formatting shared by the core and the C ABI, so that their messages read as
// the Python front's do ("t2m: expected shape (16, 16), found (16, 15)").
#pragma once

#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>

namespace landbc {

// Python's tuple repr: "(16, 16)", "(12,)", "()".
inline std::string shape_str(c10::ArrayRef<int64_t> s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

}  // namespace landbc
