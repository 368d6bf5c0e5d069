// The thread-local message behind landbc_last_error(), shared by the C ABI's
// translation units. c_api.cpp owns the message and defines set_last_error;
// calendar.cpp (pure C++17, no libtorch) sets it through this function.
#pragma once

#include <string>

namespace landbc {

// Replace the calling thread's landbc_last_error() message.
void set_last_error(const std::string& message);

}  // namespace landbc
