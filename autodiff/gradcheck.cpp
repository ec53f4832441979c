// SPDX-License-Identifier: MIT
#include "autodiff/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace gradpath {

namespace {
// Records the leaves and f on a fresh epoch of `tape`; returns f's Var.
Var run(Tape& tape, const ScalarFunction& f, std::span<const double> point, std::vector<Var>& leaves) {
  tape.reset();
  leaves.clear();
  for (double x : point) leaves.push_back(tape.input(x));
  Var out = f(tape, leaves);
  if (&out.tape() != &tape) throw Error("gradcheck: the function returned a Var from another tape");
  return out;
}
}  // namespace

GradcheckResult gradcheck(const ScalarFunction& f, std::span<const double> point, const GradcheckOptions& options) {
  GradcheckResult result;
  Tape tape;
  std::vector<Var> leaves;
  Var out = run(tape, f, point, leaves);
  tape.backward(out);
  for (const Var& leaf : leaves) result.analytic.push_back(leaf.grad());

  std::vector<double> shifted(point.begin(), point.end());
  for (std::size_t i = 0; i < point.size(); ++i) {
    const double h = options.step * std::max(1.0, std::abs(point[i]));
    shifted[i] = point[i] + h;
    const double up = run(tape, f, shifted, leaves).value();
    shifted[i] = point[i] - h;
    const double down = run(tape, f, shifted, leaves).value();
    shifted[i] = point[i];
    result.numeric.push_back((up - down) / (2 * h));
  }

  for (std::size_t i = 0; i < point.size(); ++i) {
    const double a = result.analytic[i], n = result.numeric[i];
    const double diff = std::abs(a - n);
    const double scale = std::max(std::abs(a), std::abs(n));
    const double rel = scale == 0.0 ? 0.0 : diff / scale;
    if (!(diff <= options.atol + options.rtol * std::abs(n))) result.ok = false;
    if (rel > result.worst_relative_error || std::isnan(rel)) {
      result.worst_relative_error = std::isnan(rel) ? INFINITY : rel;
      result.worst_index = i;
    }
  }
  return result;
}

std::string GradcheckResult::report() const {
  std::string out = ok ? "gradcheck passed" : "gradcheck FAILED";
  char line[160];
  std::snprintf(line, sizeof line, "; worst relative error %.3g at input %zu\n", worst_relative_error, worst_index);
  out += line;
  for (std::size_t i = 0; i < analytic.size(); ++i) {
    std::snprintf(line, sizeof line, "  input %zu: analytic %.12g  numeric %.12g%s\n", i, analytic[i], numeric[i],
                  i == worst_index ? "  <- worst" : "");
    out += line;
  }
  return out;
}

}  // namespace gradpath
