// SPDX-License-Identifier: MIT
// The scalar ops are inline (ops/scalar.hpp): recording one must cost a few ns.
#include "ops/scalar.hpp"
