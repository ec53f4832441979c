// SPDX-License-Identifier: MIT
// The one finite-difference helper every gradient test goes through.
#pragma once

#include <catch2/catch.hpp>

#include <random>
#include <span>
#include <string>
#include <vector>

#include "autodiff/gradcheck.hpp"
#include "autodiff/tensor.hpp"
#include "ops/scalar.hpp"

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

// Every element of `got` equals `want` to 1e-12; a failure names `what` and the index.
inline void check_close(std::span<const double> got, const std::vector<double>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO(what << "[" << i << "]");
    CHECK(got[i] == Approx(want[i]).epsilon(1e-12).margin(1e-12));
  }
}

// n values drawn uniformly from [lo, hi), reproducible from `seed`.
inline std::vector<double> random_values(std::size_t n, std::uint32_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

// A scalar that depends on every element of `out` with its own weight, built from
// scalar ops only, so every output element's grad is exercised.
inline Var weighted_sum(const TensorVar& out, const std::vector<double>& weights) {
  REQUIRE(weights.size() >= out.size());
  std::vector<Var> terms;
  for (std::size_t i = 0; i < out.size(); ++i) terms.push_back(out[i] * weights[i]);
  return gradpath::sum(terms);
}

}  // namespace gradpath::test
