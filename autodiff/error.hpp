// SPDX-License-Identifier: MIT
// The errors every layer raises: Error for misuse, CapacityError when the tape cannot grow.
#pragma once

#include <stdexcept>

namespace gradpath {

// Every misuse of the library raises this, with a message naming what went wrong.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The tape cannot grow: its memory limit, the 2^32 entries its 32-bit indices reach, or
// the machine's memory. The tape stays usable (reset() it, record something smaller).
class CapacityError : public Error {
 public:
  using Error::Error;
};

}  // namespace gradpath
