// SPDX-License-Identifier: MIT
// The matrix form of a derivation (∂L/∂W = δ x^⊤, W^⊤ δ, σ'(z) ⊙ …) read element by
// element: the right forms pass on networks of several shapes, and every mutant of them
// (a transpose dropped or added, factors swapped, the activation left out, the wrong
// layer's input, the sign) fails or is an error, never a pass.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "check/checker.hpp"
#include "cli/model.hpp"

using namespace gradpath;
using namespace gradpath::check;

namespace {

BuildFn model(const std::string& json, const std::string& name) {
  auto m = std::make_shared<cli::Model>(cli::Model::parse(json, name));
  return [m](Tape& tape) { m->build(tape); };
}

// x(2) -> dense W1(3x2), b1 -> relu -> dense W2(1x3), b2 -> y; L = (y - t)^2 / 2.
const BuildFn& relu_mlp() {
  static const BuildFn build = model(R"({
    "inputs": {"x": {"shape": [2], "values": [0.5, -1.2]}, "t": {"shape": [1], "values": [0.8]}},
    "params": {"W1": {"shape": [3, 2], "values": [0.3, -0.7, 0.9, 0.2, -0.4, 0.6]},
               "b1": {"shape": [3], "values": [0.1, -0.2, 0.05]},
               "W2": {"shape": [1, 3], "values": [1.1, -0.4, 0.7]}, "b2": {"shape": [1], "values": [0.0]}},
    "graph": [{"op": "dense", "in": ["x", "W1", "b1"], "out": "z"}, {"op": "relu", "in": ["z"], "out": "h"},
              {"op": "dense", "in": ["h", "W2", "b2"], "out": "y"},
              {"op": "half_squared_error", "in": ["y", "t"], "out": "L"}],
    "loss": "L"})",
                                     "relu_mlp");
  return build;
}

// x(3) -> dense W(2x3), b -> sigmoid -> dense V(2), c -> y; L = (y - t)^2 (mse of one).
const BuildFn& sigmoid_mlp() {
  static const BuildFn build = model(R"({
    "inputs": {"x": {"shape": [3], "values": [0.5, -1.0, 2.0]}, "t": {"shape": [], "values": [0.2]}},
    "params": {"W": {"shape": [2, 3], "values": [0.3, -0.2, 0.4, -0.5, 0.1, 0.2]},
               "b": {"shape": [2], "values": [0.1, -0.3]}, "V": {"shape": [2], "values": [0.7, -1.2]},
               "c": {"shape": [], "values": [0.05]}},
    "graph": [{"op": "dense", "in": ["x", "W", "b"], "out": "z"}, {"op": "sigmoid", "in": ["z"], "out": "h"},
              {"op": "dense", "in": ["h", "V", "c"], "out": "y"}, {"op": "mse", "in": ["y", "t"], "out": "L"}],
    "loss": "L"})",
                                     "sigmoid_mlp");
  return build;
}

// x(2) -> dense A(2x2) -> tanh -> s(2); L = sum((s - t)^2) / 2: a square weight, where a
// transposed gradient has the right shape and only the numbers tell it apart.
const BuildFn& square_tanh() {
  static const BuildFn build = model(R"({
    "inputs": {"x": {"shape": [2], "values": [0.4, -0.9]}, "t": {"shape": [2], "values": [0.3, -0.1]}},
    "params": {"A": {"shape": [2, 2], "values": [0.5, -0.3, 0.8, 0.2]}},
    "graph": [{"op": "dense", "in": ["x", "A"], "out": "z"}, {"op": "tanh", "in": ["z"], "out": "s"},
              {"op": "half_squared_error", "in": ["s", "t"], "out": "L"}],
    "loss": "L"})",
                                     "square_tanh");
  return build;
}

}  // namespace

TEST_CASE("matrix form: the backward pass of a ReLU MLP, written with matrices, passes", "[check][matrix]") {
  const std::vector<std::string> right = {
      R"(\frac{\partial L}{\partial W2} = (y - t) h^\top)",
      R"(\frac{\partial L}{\partial b2} = y - t)",
      R"(\frac{\partial L}{\partial h} = W2^\top (y - t))",
      R"(\frac{\partial L}{\partial h} = W2^T (\hat{y} - t))",
      R"(\frac{\partial L}{\partial z} = [z > 0] \odot (W2^\top (y - t)))",
      R"(\frac{\partial L}{\partial z} = (W2^{\top} (y - t)) \circ [z > 0])",
      R"(\frac{\partial L}{\partial W1} = ([z > 0] \odot W2^\top (y - t)) x^\top)",
      R"(\frac{\partial L}{\partial x} = W1^\top ([z > 0] \odot W2^\top (y - t)))",
      R"(\frac{\partial L}{\partial x} = ((((y - t) W2) \odot [z > 0]^\top) W1)^\top)",
  };
  for (const std::string& f : right) {
    const Report r = check_formula(relu_mlp(), f);
    INFO(f << "\n" << r.text());
    CHECK(r.verdict == Verdict::Pass);
  }
}

TEST_CASE("matrix form: a vector named by a definition, δ := ∂L/∂z or δ_k := ∂L/∂z_k", "[check][matrix]") {
  for (const char* definition :
       {R"($$\delta := \frac{\partial L}{\partial z}$$)", R"($$\delta_k := \frac{\partial L}{\partial z_k}$$)"}) {
    const std::string file = std::string(definition) + "\n" +
                             R"($$\frac{\partial L}{\partial W1} = \delta x^\top$$
$$\frac{\partial L}{\partial b1} = \delta$$
$$\frac{\partial L}{\partial x} = W1^\top \delta$$
$$\frac{\partial L}{\partial W1} = \delta xᵀ$$
$$\frac{\partial L}{\partial W1} = x \delta^\top$$
$$\frac{\partial L}{\partial x} = W1 \delta$$
$$\frac{\partial L}{\partial x} = \delta^\top W1$$
)";
    const std::vector<Report> reports = check_text(relu_mlp(), file);
    REQUIRE(reports.size() == 7);
    INFO(text(reports));
    for (std::size_t i = 0; i < 4; ++i) CHECK(reports[i].verdict == Verdict::Pass);
    // The transpose of ∂L/∂W1 (2×3 for 3×2) is read and named: a fail, not an error.
    CHECK(reports[4].verdict == Verdict::Fail);
    CHECK(reports[4].findings.at(0).mistake == Mistake::TransposedIndex);
    CHECK_THAT(reports[4].findings.at(0).message, Catch::Contains("transpose of ∂L/∂W1"));
    // W1 δ cannot be multiplied (3×2 by 3×1); δ^⊤ W1 is a row where ∂L/∂x is a column.
    CHECK(reports[5].verdict == Verdict::Error);
    CHECK_THAT(reports[5].error, Catch::Contains("cannot multiply a 3×2 matrix by a 3×1"));
    CHECK(reports[6].verdict == Verdict::Fail);
  }
}

TEST_CASE("matrix form: σ' applies element by element, a scalar scales", "[check][matrix]") {
  CHECK(check_formula(sigmoid_mlp(), R"(\frac{\partial L}{\partial z} = \sigma'(z) \odot V \cdot 2(y - t))").verdict ==
        Verdict::Pass);
  CHECK(check_formula(sigmoid_mlp(), R"(\frac{\partial L}{\partial W} = 2(y - t) (\sigma'(z) \odot V) x^T)").verdict ==
        Verdict::Pass);
  CHECK(check_formula(sigmoid_mlp(), R"(\frac{\partial L}{\partial V} = 2(y - t) \sigma(z))").verdict == Verdict::Pass);
  CHECK(check_formula(sigmoid_mlp(), R"(\frac{\partial L}{\partial V} = 2(y - t) h)").verdict == Verdict::Pass);
}

TEST_CASE("matrix form: every mutant of a right form fails or is an error, never passes", "[check][matrix]") {
  struct Case {
    const BuildFn* build;
    std::string formula;
  };
  const std::vector<Case> wrong = {
      // the activation derivative left out
      {&relu_mlp(), R"(\frac{\partial L}{\partial z} = W2^\top (y - t))"},
      {&relu_mlp(), R"(\frac{\partial L}{\partial W1} = (W2^\top (y - t)) x^\top)"},
      {&sigmoid_mlp(), R"(\frac{\partial L}{\partial z} = V \cdot 2(y - t))"},
      // the activation instead of its derivative
      {&sigmoid_mlp(), R"(\frac{\partial L}{\partial z} = \sigma(z) \odot V \cdot 2(y - t))"},
      // the wrong layer's input: z for h, the pre-activation for the activation
      {&relu_mlp(), R"(\frac{\partial L}{\partial W2} = (y - t) z^\top)"},
      // a constant factor and the sign
      {&sigmoid_mlp(), R"(\frac{\partial L}{\partial W} = (y - t) (\sigma'(z) \odot V) x^T)"},
      {&relu_mlp(), R"(\frac{\partial L}{\partial W2} = (t - y) h^\top)"},
      // a transpose dropped or added
      {&relu_mlp(), R"(\frac{\partial L}{\partial h} = W2 (y - t))"},
      {&relu_mlp(), R"(\frac{\partial L}{\partial W2} = (y - t) h)"},
      {&relu_mlp(), R"(\frac{\partial L}{\partial x} = W1 ([z > 0] \odot W2^\top (y - t)))"},
      {&relu_mlp(), R"(\frac{\partial L}{\partial W1} = x ([z > 0] \odot W2^\top (y - t))^\top)"},
      // ⊙ where the product is meant
      {&relu_mlp(), R"(\frac{\partial L}{\partial z} = [z > 0] \odot W2 \odot (y - t))"},
      // a square weight: the transposed gradient has the right shape, the wrong numbers
      {&square_tanh(), R"(\frac{\partial L}{\partial A} = x ((1 - s \odot s) \odot (s - t))^\top)"},
      {&square_tanh(), R"(\frac{\partial L}{\partial x} = A ((1 - s \odot s) \odot (s - t)))"},
  };
  for (const Case& c : wrong) {
    const Report r = check_formula(*c.build, c.formula);
    INFO(c.formula << "\n" << r.text());
    CHECK((r.verdict == Verdict::Fail || r.verdict == Verdict::Error));
  }
  // The right forms of the square case pass, so the two above fail for their transposes.
  CHECK(check_formula(square_tanh(), R"(\frac{\partial L}{\partial A} = ((1 - s \odot s) \odot (s - t)) x^\top)")
            .verdict == Verdict::Pass);
  CHECK(check_formula(square_tanh(), R"(\frac{\partial L}{\partial x} = A^\top ((1 - s \odot s) \odot (s - t)))")
            .verdict == Verdict::Pass);
}

TEST_CASE("matrix form: what it cannot read is an error that says so", "[check][matrix]") {
  auto error = [](const std::string& f) {
    const Report r = check_formula(relu_mlp(), f);
    INFO(f << "\n" << r.text());
    CHECK(r.verdict == Verdict::Error);
    return r.error;
  };
  CHECK_THAT(error(R"(\frac{\partial z}{\partial x} = W1)"), Catch::Contains("Jacobian"));
  CHECK_THAT(error(R"(\frac{\partial L}{\partial W1} = \delta \otimes x)"), Catch::Contains("\\otimes is not read"));
  CHECK_THAT(error(R"(\frac{\partial L}{\partial h} = W2^\top + x)"), Catch::Contains("shapes must be the same"));
  CHECK_THAT(error(R"(\frac{\partial L}{\partial b1} = (y - t) W1)"), Catch::Contains("the left side is 3×1"));
  CHECK_THAT(error(R"(\frac{\partial L}{\partial b1} = z^{x})"), Catch::Contains("exponent"));
}
