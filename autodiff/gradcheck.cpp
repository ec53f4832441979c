// SPDX-License-Identifier: MIT
#include "autodiff/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <type_traits>

#include "autodiff/second_order.hpp"

namespace gradpath {

namespace {
// Records the leaves and f on a fresh epoch of `tape`; returns what f returns (a Var, or
// a tensor for a TensorFunction).
template <typename Function>
auto run(Tape& tape, const Function& f, std::span<const double> point, std::vector<Var>& leaves) {
  tape.reset();
  leaves.clear();
  for (double x : point) leaves.push_back(tape.input(x));
  auto out = f(tape, leaves);
  if (&out.tape() != &tape) {
    throw Error(std::string("gradcheck: the function returned a ") +
                (std::is_same_v<decltype(out), Var> ? "Var" : "tensor") + " from another tape");
  }
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

namespace {

// run() for a TensorFunction, whose tensor must be float64.
TensorVar run_tensor(Tape& tape, const TensorFunction& f, std::span<const double> point, std::vector<Var>& leaves) {
  TensorVar out = run(tape, f, point, leaves);
  if (out.dtype() != DType::f64) throw Error("gradcheck: the function returned a float32 tensor; check in float64");
  return out;
}

// The reverse-mode gradient of scalar f at `point`.
std::vector<double> gradient(Tape& tape, const ScalarFunction& f, std::span<const double> point,
                             std::vector<Var>& leaves) {
  tape.backward(run(tape, f, point, leaves));
  std::vector<double> out;
  for (const Var& leaf : leaves) out.push_back(leaf.grad());
  return out;
}

// Fills `column` i of result.numeric (outputs rows) from f moved by ±h along input i.
template <typename Values>
void central_columns(JacobianCheckResult& result, std::span<const double> point, const GradcheckOptions& options,
                     Values values) {
  std::vector<double> shifted(point.begin(), point.end());
  result.numeric.assign(result.outputs * result.inputs, 0.0);
  for (std::size_t i = 0; i < point.size(); ++i) {
    const double h = options.step * std::max(1.0, std::abs(point[i]));
    shifted[i] = point[i] + h;
    const std::vector<double> up = values(shifted);
    shifted[i] = point[i] - h;
    const std::vector<double> down = values(shifted);
    shifted[i] = point[i];
    if (up.size() != result.outputs || down.size() != result.outputs) {
      throw Error("gradcheck: the function's output changed size between runs");
    }
    for (std::size_t k = 0; k < result.outputs; ++k)
      result.numeric[k * result.inputs + i] = (up[k] - down[k]) / (2 * h);
  }
}

// ok, and the worst element: the failing one with the largest relative error, or the
// largest overall when none fails (a tiny entry can be far off relatively and pass by atol).
void compare(JacobianCheckResult& result, const GradcheckOptions& options) {
  const auto fails = [&](std::size_t e) {
    return !(std::abs(result.analytic[e] - result.numeric[e]) <=
             options.atol + options.rtol * std::abs(result.numeric[e]));
  };
  const auto relative = [&](std::size_t e) {
    const double a = result.analytic[e], n = result.numeric[e], scale = std::max(std::abs(a), std::abs(n));
    const double rel = scale == 0.0 ? 0.0 : std::abs(a - n) / scale;
    return std::isnan(rel) ? INFINITY : rel;
  };
  for (std::size_t e = 0; e < result.analytic.size(); ++e) result.ok = result.ok && !fails(e);
  result.worst_relative_error = -1.0;
  for (std::size_t e = 0; e < result.analytic.size(); ++e) {
    if ((!result.ok && !fails(e)) || relative(e) <= result.worst_relative_error) continue;
    result.worst_relative_error = relative(e);
    result.worst_output = e / result.inputs;
    result.worst_input = e % result.inputs;
  }
  result.worst_relative_error = std::max(result.worst_relative_error, 0.0);
}

}  // namespace

JacobianCheckResult gradcheck(const TensorFunction& f, std::span<const double> point, const GradcheckOptions& options) {
  JacobianCheckResult result;
  Tape tape;
  std::vector<Var> leaves;
  const TensorVar out = run_tensor(tape, f, point, leaves);
  result.outputs = out.size();
  result.inputs = point.size();
  for (std::size_t k = 0; k < result.outputs; ++k) {
    tape.backward(out[k]);
    for (const Var& leaf : leaves) result.analytic.push_back(leaf.grad());
  }
  central_columns(result, point, options, [&](std::span<const double> x) {
    const TensorVar y = run_tensor(tape, f, x, leaves);
    return std::vector<double>(y.values().begin(), y.values().end());
  });
  compare(result, options);
  return result;
}

JacobianCheckResult gradgradcheck(const ScalarFunction& f, std::span<const double> point,
                                  const GradcheckOptions& options) {
  JacobianCheckResult result;
  result.outputs = result.inputs = point.size();
  Tape tape;
  std::vector<Var> leaves;
  const Var out = run(tape, f, point, leaves);
  std::vector<TensorVar> params;
  for (const Var& leaf : leaves) params.emplace_back(leaf, Shape{});
  result.analytic = hessian(tape, out, params);
  central_columns(result, point, options, [&](std::span<const double> x) { return gradient(tape, f, x, leaves); });
  compare(result, options);
  return result;
}

std::string JacobianCheckResult::report() const {
  std::string out = ok ? "gradcheck passed" : "gradcheck FAILED";
  char line[200];
  std::snprintf(line, sizeof line, "; worst relative error %.3g at d output[%zu] / d input[%zu]\n",
                worst_relative_error, worst_output, worst_input);
  out += line;
  if (!analytic.empty()) {
    const std::size_t e = worst_output * inputs + worst_input;
    std::snprintf(line, sizeof line, "  analytic %.12g  numeric %.12g\n", analytic[e], numeric[e]);
    out += line;
  }
  return out;
}

}  // namespace gradpath
