// SPDX-License-Identifier: MIT
// gradcheck on tensor functions (the full Jacobian) and gradgradcheck (the Hessian by
// forward-over-reverse against differences of the gradient): pass on correct rules, and
// fail naming the worst element on a rule made wrong on purpose.
#include <catch2/catch.hpp>
#include <cmath>

#include "autodiff/gradcheck.hpp"
#include "ops/nn.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;

namespace {
// The leaves as one (2, 3) tensor; they are consecutive scalar leaves.
TensorVar as_matrix(std::span<const Var> leaves) { return TensorVar(leaves[0], Shape{2, 3}); }

// sin recorded with the partial of cos in place of its own: a wrong first-order rule.
Var wrong_sin(const Var& a) {
  Tape& t = a.tape();
  return t.record(Op::Add, std::sin(a.value()), a.slot(), -std::sin(a.value()));
}
}  // namespace

TEST_CASE("gradcheck of tensor functions compares the full Jacobian", "[gradcheck]") {
  const std::vector<double> point{0.3, -0.7, 1.2, 0.5, -1.1, 0.8};
  const auto softmax = [](Tape&, std::span<const Var> l) { return ops::softmax(as_matrix(l)); };
  const JacobianCheckResult ok = gradcheck(softmax, point);
  CHECK(ok.ok);
  CHECK(ok.outputs == 6);
  CHECK(ok.inputs == 6);
  CHECK(ok.analytic.size() == 36);

  const auto matmul = [](Tape& tape, std::span<const Var> l) {
    const std::vector<double> b{1.0, -2.0, 0.5, 0.25, 3.0, -1.0};
    return ops::matmul(ops::tanh(as_matrix(l)), tape.input(b, Shape{3, 2}));
  };
  CHECK(gradcheck(matmul, point).ok);

  // Only output element 4 (row 1, column 1) reads input 4 through the wrong rule.
  const auto broken = [](Tape&, std::span<const Var> l) {
    std::vector<Var> out(l.begin(), l.end());
    out[4] = wrong_sin(l[4]);
    return stack(out, Shape{2, 3});
  };
  const JacobianCheckResult bad = gradcheck(broken, point);
  CHECK_FALSE(bad.ok);
  CHECK(bad.worst_output == 4);
  CHECK(bad.worst_input == 4);
  CHECK_THAT(bad.report(), Catch::Contains("FAILED") && Catch::Contains("d output[4] / d input[4]"));
}

TEST_CASE("gradgradcheck compares the Hessian with differences of the gradient", "[gradcheck][second_order]") {
  const std::vector<double> point{0.3, -0.7, 1.2};
  const auto f = [](Tape&, std::span<const Var> l) {
    return tanh(l[0] * l[1]) + exp(l[2]) / (l[0] + 2.0) + pow(l[1], 2.0) * sigmoid(l[2]);
  };
  const JacobianCheckResult ok = gradgradcheck(f, point);
  INFO(ok.report());
  CHECK(ok.ok);
  CHECK(ok.analytic.size() == 9);

  // x·sin(y) with sin's partial wrong: the gradient is wrong, so the Hessian disagrees with
  // its differences where the wrong rule bends, at d²/dy².
  const auto broken = [](Tape&, std::span<const Var> l) { return l[0] * wrong_sin(l[1]) + l[2] * l[2]; };
  const JacobianCheckResult bad = gradgradcheck(broken, point);
  CHECK_FALSE(bad.ok);
  CHECK(bad.worst_output == 1);
  CHECK(bad.worst_input == 1);
  CHECK_THAT(bad.report(), Catch::Contains("FAILED"));
}
