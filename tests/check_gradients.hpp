// SPDX-License-Identifier: MIT
// The one finite-difference helper every gradient test goes through.
#pragma once

#include <catch2/catch.hpp>

#include "autodiff/gradcheck.hpp"

namespace gradpath::test {

// Fails the current test case with gradcheck's full report when any grad is off.
inline void check_gradients(const ScalarFunction& f, std::span<const double> point,
                            const GradcheckOptions& options = {}) {
  const GradcheckResult result = gradcheck(f, point, options);
  INFO(result.report());
  CHECK(result.ok);
}
inline void check_gradients(const ScalarFunction& f, std::initializer_list<double> point,
                            const GradcheckOptions& options = {}) {
  check_gradients(f, std::span(point.begin(), point.size()), options);
}

}  // namespace gradpath::test
