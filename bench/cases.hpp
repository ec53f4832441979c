// SPDX-License-Identifier: MIT
// The benchmark cases' sizes, data and operation counts, shared by gradpath and its peers,
// and the plain double hand adjoints every side checks its gradient against once before it
// is timed.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <string_view>
#include <vector>

namespace gradpath::bench {

// Reproducible values in [-1, 1].
inline std::vector<double> uniform_values(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> out(n);
  for (double& x : out) x = uniform(rng);
  return out;
}

// Offset of filter tap i (row-major 3x3) from the image index of its window's corner, in
// an image `side` wide.
inline constexpr std::array<std::size_t, 9> taps_of(std::size_t side) {
  return {0, 1, 2, side, side + 1, side + 2, 2 * side, 2 * side + 1, 2 * side + 2};
}

// One output of a 3x3 filter, the sum of nine products written as one expression, as a
// user of an expression-template library (Adept, CoDiPack) writes it: recorded as one
// statement. Returns a Real, never an expression, whose operands would dangle.
template <typename Real>
Real nine_products(const Real* w, const Real* corner, const std::array<std::size_t, 9>& taps) {
  Real z = w[0] * corner[taps[0]] + w[1] * corner[taps[1]] + w[2] * corner[taps[2]] + w[3] * corner[taps[3]] +
           w[4] * corner[taps[4]] + w[5] * corner[taps[5]] + w[6] * corner[taps[6]] + w[7] * corner[taps[7]] +
           w[8] * corner[taps[8]];
  return z;
}

// The image sides S1 runs at: one Google Benchmark Arg each ("S1/gradpath/side:64").
inline const std::vector<std::int64_t> s1_sides = {32, 64, 128, 256, 512};

// S1: a 3x3 "valid" convolution over a side x side image as scalar multiply-adds; each
// output is one sum of nine products, and L = sum_k z_k^2 / 2. Gradients are read as the
// filter's 9 then the image's side^2, in one vector.
struct S1 {
  explicit S1(std::size_t side_)
      : side(side_),
        out_side(side_ - 2),
        outputs(out_side * out_side),
        taps(taps_of(side_)),
        image(uniform_values(side * side, 1)),
        filter(uniform_values(9, 2)) {}

  std::size_t side, out_side, outputs;
  // Output k reads image index corner(k) + taps[i] for filter tap i.
  std::array<std::size_t, 9> taps;
  std::vector<double> image, filter;

  // Logical scalar ops per iteration: 9 mul + 8 add per output, one mul for z^2, the
  // (outputs - 1) adds of the loss sum and the final * 0.5.
  double ops() const { return static_cast<double>(outputs) * 19.0; }
  std::size_t gradients() const { return 9 + image.size(); }
  // Image index of output k's window corner.
  std::size_t corner(std::size_t k) const { return (k / out_side) * side + k % out_side; }
};

// dL/dz_k = z_k; every product w_i a_j sends z_k a_j to w_i and z_k w_i to a_j.
inline std::vector<double> s1_hand_gradient(const S1& s1) {
  std::vector<double> grad(s1.gradients(), 0.0);
  for (std::size_t k = 0; k < s1.outputs; ++k) {
    const double* window = &s1.image[s1.corner(k)];
    const double z = nine_products(s1.filter.data(), window, s1.taps);
    for (std::size_t i = 0; i < 9; ++i) {
      grad[i] += z * window[s1.taps[i]];
      grad[9 + s1.corner(k) + s1.taps[i]] += z * s1.filter[i];
    }
  }
  return grad;
}

// S2: the seed network: a 5x5 image, a 3x3 filter at stride 2 (four outputs, each one
// sum of nine products), a dense layer of 4 plus bias to y, L = (y - t)^2 / 2. Gradients
// are read as w's 9, v's 4, then b.
inline constexpr std::size_t s2_side = 5;
inline constexpr std::array<std::size_t, 9> s2_taps = taps_of(s2_side);
// Image index of output k's window corner: row 2 * (k / 2), column 2 * (k % 2).
inline constexpr std::size_t s2_corner(std::size_t k) { return 2 * (k / 2) * s2_side + 2 * (k % 2); }
// Image index under filter tap i for output k.
inline constexpr std::size_t s2_tap(std::size_t k, std::size_t i) { return s2_corner(k) + s2_taps[i]; }
struct S2 {
  std::vector<double> image = uniform_values(s2_side * s2_side, 3);
  std::vector<double> filter = uniform_values(9, 4);
  std::vector<double> dense = uniform_values(4, 5);
  double bias = 0.1;
  double target = 0.25;
  static constexpr std::size_t gradients = 9 + 4 + 1;
};

// dL/dy = y - t; dv_k = (y - t) z_k, db = y - t, dw_i = sum_k (y - t) v_k a_tap(k, i).
inline std::vector<double> s2_hand_gradient(const S2& s2) {
  std::array<double, 4> z{};
  for (std::size_t k = 0; k < 4; ++k) z[k] = nine_products(s2.filter.data(), &s2.image[s2_corner(k)], s2_taps);
  double y = s2.bias;
  for (std::size_t k = 0; k < 4; ++k) y += s2.dense[k] * z[k];
  const double dy = y - s2.target;
  std::vector<double> grad(S2::gradients, 0.0);
  for (std::size_t k = 0; k < 4; ++k) {
    for (std::size_t i = 0; i < 9; ++i) grad[i] += dy * s2.dense[k] * s2.image[s2_tap(k, i)];
    grad[9 + k] = dy * z[k];
  }
  grad[13] = dy;
  return grad;
}

// Aborts the benchmark run, loudly, when a side's gradient differs from the hand adjoint
// (relative to the largest hand gradient, so a sum's rounding order does not count): a
// fast wrong gradient must never reach the table.
inline void check_gradient(std::string_view side, std::span<const double> got, std::span<const double> hand) {
  double scale = 0.0;
  for (double g : hand) scale = std::max(scale, std::abs(g));
  const double tolerance = 1e-12 * std::max(scale, 1.0) * 64.0;
  if (got.size() != hand.size()) {
    std::fprintf(stderr, "GRADIENT CHECK FAILED: %.*s returned %zu gradients, the hand adjoint has %zu\n",
                 static_cast<int>(side.size()), side.data(), got.size(), hand.size());
    std::abort();
  }
  for (std::size_t i = 0; i < hand.size(); ++i) {
    if (!(std::abs(got[i] - hand[i]) <= tolerance)) {
      std::fprintf(stderr, "GRADIENT CHECK FAILED: %.*s gradient %zu is %.17g, the hand adjoint says %.17g\n",
                   static_cast<int>(side.size()), side.data(), i, got[i], hand[i]);
      std::abort();
    }
  }
}

}  // namespace gradpath::bench
