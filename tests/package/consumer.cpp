// SPDX-License-Identifier: MIT
// Built against the installed package: d(x*y + sin x)/dx at (2, 3) must be 3 + cos 2.
#include <cmath>
#include <cstdio>

#include "autodiff/tape.hpp"
#include "ops/scalar.hpp"

int main() {
  gradpath::Tape tape;
  gradpath::Var x = tape.input(2.0, "x"), y = tape.input(3.0, "y");
  gradpath::Var f = x * y + sin(x);
  tape.backward(f);
  const bool ok = std::abs(x.grad() - (3.0 + std::cos(2.0))) < 1e-12;
  std::printf("consumer: df/dx = %.6f %s\n", x.grad(), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
