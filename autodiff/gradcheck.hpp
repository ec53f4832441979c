// SPDX-License-Identifier: MIT
// Central finite differences against the reverse sweep, like torch.autograd.gradcheck and
// gradgradcheck: gradients, full Jacobians of tensor functions, and Hessians.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "autodiff/tape.hpp"
#include "autodiff/tensor.hpp"

namespace gradpath {

struct GradcheckOptions {
  double step = 1e-6;  // h = step * max(1, |x|)
  double rtol = 1e-5;  // pass when |analytic - numeric| <= atol + rtol * |numeric|
  double atol = 1e-7;
};

struct GradcheckResult {
  std::vector<double> analytic;       // from one reverse sweep
  std::vector<double> numeric;        // (f(x + h) - f(x - h)) / 2h, one pair of runs per input
  std::size_t worst_index = 0;        // the input with the largest relative error
  double worst_relative_error = 0.0;  // |a - n| / max(|a|, |n|), 0 when both are 0
  bool ok = true;
  std::string report() const;  // one line per input, the worst marked
};

// f builds a scalar on `tape` from the leaves it is given (one per entry of `point`).
using ScalarFunction = std::function<Var(Tape& tape, std::span<const Var> leaves)>;

GradcheckResult gradcheck(const ScalarFunction& f, std::span<const double> point, const GradcheckOptions& options = {});

// The same for a function with many outputs: the full Jacobian (outputs x inputs,
// row-major), one reverse sweep per output against one pair of runs per input.
struct JacobianCheckResult {
  std::size_t outputs = 0, inputs = 0;
  std::vector<double> analytic;  // row-major: d output[k] / d input[i] at k * inputs + i
  std::vector<double> numeric;
  std::size_t worst_output = 0, worst_input = 0;  // the element with the largest relative error
  double worst_relative_error = 0.0;
  bool ok = true;
  // "FAILED; worst relative error … at d output[k] / d input[i]" and the worst elements.
  std::string report() const;
};

// f builds a float64 tensor (any shape) on `tape` from the leaves it is given.
using TensorFunction = std::function<TensorVar(Tape& tape, std::span<const Var> leaves)>;

JacobianCheckResult gradcheck(const TensorFunction& f, std::span<const double> point,
                              const GradcheckOptions& options = {});

// Second derivatives: the Hessian of a scalar f by forward-over-reverse (autodiff/
// second_order.hpp) against central differences of its reverse-mode gradient (output k
// of the result is the gradient's element k). The default tolerances suit a step of 1e-5.
JacobianCheckResult gradgradcheck(const ScalarFunction& f, std::span<const double> point,
                                  const GradcheckOptions& options = {1e-5, 1e-4, 1e-6});

}  // namespace gradpath
