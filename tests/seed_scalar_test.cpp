// SPDX-License-Identifier: MIT
// The seed note's network built from scalars by hand: 5x5 image a1..a25, 3x3 filter
// w1..w9, stride-2 convolution z1..z4 (each one sum of nine products), dense to y,
// L = (y - t)^2 / 2. The engine's dL/dw_i must equal the note's rule
// sum_k a_{j(k,i)} * dL/dz_k, with everything on the right computed here by hand.
#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "autodiff/tensor.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;

namespace {
// Index (0-based, row-major in the 5x5 image) of the input under filter tap i for
// output k of a stride-2 convolution: output k's window starts at row 2*(k/2), col 2*(k%2).
int input_under_tap(int k, int i) { return (2 * (k / 2) + i / 3) * 5 + 2 * (k % 2) + i % 3; }
}  // namespace

TEST_CASE("seed network: dL/dw_i = sum_k a_j(k,i) dL/dz_k at random points", "[seed]") {
  std::mt19937 rng(GENERATE(1u, 2u, 3u, 4u, 5u));
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> image(25), filter(9), dense(4);
  for (auto& x : image) x = uniform(rng);
  for (auto& x : filter) x = uniform(rng);
  for (auto& x : dense) x = uniform(rng);
  const double bias = uniform(rng), target = uniform(rng);

  Tape tape;
  TensorVar a = tape.input(image, Shape{5, 5}, "a");
  TensorVar w = tape.param(filter, Shape{3, 3}, "w");
  TensorVar v = tape.param(dense, Shape{4}, "v");
  Var b = tape.param(bias, "b");
  Var t = tape.input(target, "t");
  std::vector<Var> z;
  for (int k = 0; k < 4; ++k) {
    std::vector<Var> products;
    for (int i = 0; i < 9; ++i) products.push_back(w[i] * a[input_under_tap(k, i)]);
    z.push_back(sum(products).named("z" + std::to_string(k + 1)));
  }
  Var y = sum({v[0] * z[0], v[1] * z[1], v[2] * z[2], v[3] * z[3], b}).named("y");
  Var L = (pow(y - t, 2.0) * 0.5).named("L");
  tape.backward(L);

  // By hand: z_k, y, dL/dy = y - t, dL/dz_k = (y - t) v_k.
  double z_hand[4], y_hand = bias;
  for (int k = 0; k < 4; ++k) {
    z_hand[k] = 0;
    for (int i = 0; i < 9; ++i) z_hand[k] += filter[i] * image[input_under_tap(k, i)];
    y_hand += dense[k] * z_hand[k];
    CHECK(z[k].value() == Approx(z_hand[k]).epsilon(1e-12));
  }
  const double dL_dy = y_hand - target;
  CHECK(L.value() == Approx(0.5 * dL_dy * dL_dy).epsilon(1e-12));
  for (int k = 0; k < 4; ++k) CHECK(z[k].grad() == Approx(dL_dy * dense[k]).epsilon(1e-12));
  for (int i = 0; i < 9; ++i) {
    double rule = 0;
    for (int k = 0; k < 4; ++k) rule += image[input_under_tap(k, i)] * dL_dy * dense[k];
    INFO("w" << i + 1);
    CHECK(w[i].grad() == Approx(rule).epsilon(1e-12).margin(1e-15));
  }
  CHECK(b.grad() == Approx(dL_dy).epsilon(1e-12));
  CHECK(z[1].name() == "z2");
  CHECK(a[12].name() == "a13");
}
