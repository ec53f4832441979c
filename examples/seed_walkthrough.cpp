// SPDX-License-Identifier: MIT
// The seed note, run: a 5x5 image a1..a25, a 3x3 filter w1..w9, a stride-2 convolution
// to z1..z4 (each one sum node of nine products w_i * a_j), dense to y, L = (y - t)^2 / 2,
// then dL/dw_i from the reverse sweep beside the note's rule sum_k a_j dL/dz_k, and one
// step w_i* = w_i - alpha dL/dw_i.
#include <cstdio>
#include <string>
#include <vector>

#include "autodiff/tensor.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;

int main() {
  std::vector<double> image(25), filter(9);
  for (int j = 0; j < 25; ++j) image[j] = 0.1 * (j + 1);                   // a_j = j / 10
  for (int i = 0; i < 9; ++i) filter[i] = (i % 2 ? -0.1 : 0.1) * (i + 1);  // w = .1 -.2 .3 ...
  const std::vector<double> dense = {0.5, -0.3, 0.2, 0.1};
  const double alpha = 0.01;

  Tape tape;
  TensorVar a = tape.input(image, Shape{5, 5}, "a");
  TensorVar w = tape.param(filter, Shape{3, 3}, "w");
  TensorVar v = tape.param(dense, Shape{4}, "v");
  Var b = tape.param(0.1, "b");
  Var t = tape.input(1.0, "t");

  // z_k: the window of output k starts at row 2*(k/2), column 2*(k%2).
  std::vector<Var> z;
  std::vector<std::vector<int>> under_tap(4);  // under_tap[k][i]: index of a_j under w_i
  for (int k = 0; k < 4; ++k) {
    std::vector<Var> products;
    for (int i = 0; i < 9; ++i) {
      const int j = (2 * (k / 2) + i / 3) * 5 + 2 * (k % 2) + i % 3;
      under_tap[k].push_back(j);
      products.push_back(w[i] * a[j]);
    }
    z.push_back(sum(products).named("z" + std::to_string(k + 1)));
  }
  Var y = sum({v[0] * z[0], v[1] * z[1], v[2] * z[2], v[3] * z[3], b}).named("y");
  Var L = (pow(y - t, 2.0) * 0.5).named("L");
  tape.backward(L);

  std::printf("gradpath seed walkthrough: 5x5 image, 3x3 filter, stride 2\n\n");
  for (const Var& zk : z)
    std::printf("%s = %9.4f   dL/d%s = %9.4f\n", zk.name().c_str(), zk.value(), zk.name().c_str(), zk.grad());
  std::printf("y  = %9.4f\nL  = %9.4f\n\n", y.value(), L.value());

  std::printf("%-4s %12s   %-46s %12s\n", "", "engine", "note's rule: sum_k a_j * dL/dz_k", "rule value");
  for (int i = 0; i < 9; ++i) {
    std::string rule;
    double rule_value = 0;
    for (int k = 0; k < 4; ++k) {
      const Var aj = a[under_tap[k][i]];
      if (k) rule += " + ";
      rule += aj.name();
      rule += "*dL/d";
      rule += z[k].name();
      rule_value += aj.value() * z[k].grad();
    }
    std::printf("dL/d%-2s %10.5f   %-46s %12.5f\n", w[i].name().c_str(), w[i].grad(), rule.c_str(), rule_value);
  }

  std::printf("\none step w_i* = w_i - %.2f * dL/dw_i:\n", alpha);
  for (int i = 0; i < 9; ++i) {
    const double updated = w[i].value() - alpha * w[i].grad();
    std::printf("  %s: %8.4f -> %8.4f\n", w[i].name().c_str(), w[i].value(), updated);
    tape.set_value(w[i], updated);
  }
  return 0;
}
