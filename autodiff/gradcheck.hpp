// SPDX-License-Identifier: MIT
// Central finite differences against the reverse sweep, like torch.autograd.gradcheck.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "autodiff/tape.hpp"

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

}  // namespace gradpath
