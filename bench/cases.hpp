// SPDX-License-Identifier: MIT
// The benchmark cases' sizes, data and operation counts, shared by gradpath and its peers.
#pragma once

#include <cstddef>
#include <random>
#include <vector>

namespace gradpath::bench {

// S1: a 3x3 "valid" convolution over a 64x64 image as scalar multiply-adds; each output
// is one n-ary sum of nine products, and L = sum_k z_k^2 / 2.
inline constexpr std::size_t s1_side = 64;
inline constexpr std::size_t s1_out_side = s1_side - 2;
inline constexpr std::size_t s1_outputs = s1_out_side * s1_out_side;
// Logical scalar ops per iteration: 9 mul + 8 add per output, one mul for z^2, the
// (outputs - 1) adds of the loss sum and the final * 0.5.
inline constexpr double s1_ops = s1_outputs * (17.0 + 1.0) + (s1_outputs - 1) + 1;

// Offset of filter tap i (row-major 3x3) from the image index of its window's corner:
// output (r, c) reads image index (r * s1_side + c) + s1_taps[i].
inline constexpr std::size_t s1_taps[9] = {
    0, 1, 2, s1_side, s1_side + 1, s1_side + 2, 2 * s1_side, 2 * s1_side + 1, 2 * s1_side + 2};

// S2: the seed network: a 5x5 image, a 3x3 filter at stride 2 (four outputs, each one
// sum of nine products), a dense layer of 4 plus bias to y, L = (y - t)^2 / 2.
inline constexpr std::size_t s2_side = 5;
// Image index under filter tap i for output k: output k's window starts at row
// 2 * (k / 2), column 2 * (k % 2).
inline constexpr std::size_t s2_tap(std::size_t k, std::size_t i) {
  return (2 * (k / 2) + i / 3) * s2_side + 2 * (k % 2) + i % 3;
}

// Reproducible values in [-1, 1].
inline std::vector<double> uniform_values(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> out(n);
  for (double& x : out) x = uniform(rng);
  return out;
}

}  // namespace gradpath::bench
