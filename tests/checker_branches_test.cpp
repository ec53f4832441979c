// SPDX-License-Identifier: MIT
// The checker on piecewise networks: every branch of every relu and max-pool window is
// taken at some draw, so a formula that is right only on the model's own branches fails;
// the mistake is named; a branch never taken is a verdict of its own.
#include <catch2/catch.hpp>

#include "check/checker.hpp"
#include "cli/model.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;
using namespace gradpath::check;

namespace {

// x [1,2] -> z = x W (W [2,3]) -> h = relu(z) -> y = h v (v [3,1]) -> L = (y - t)^2 / 2.
// At the model's point z = (-0.1, -0.8, 0.2): units 1 and 2 are off, unit 3 is on.
constexpr const char* relu_mlp = R"({
  "inputs": {"x": {"shape": [1, 2], "values": [0.5, -1.0]}, "t": {"shape": [], "values": [0.3]}},
  "params": {"W": {"shape": [2, 3], "values": [0.4, -0.6, 0.2, 0.3, 0.5, -0.1]},
             "v": {"shape": [3, 1], "values": [0.7, -0.2, 0.5]}},
  "graph": [{"op": "matmul", "in": ["x", "W"], "out": "z"}, {"op": "relu", "in": ["z"], "out": "h"},
            {"op": "matmul", "in": ["h", "v"], "out": "y"}, {"op": "half_squared_error", "in": ["y", "t"], "out": "L"}],
  "loss": "L"})";

// A 3x3 map O -> relu R -> 2x2 max-pool (stride 1) to Z -> dense y -> L. At the point R5 (the
// centre) wins every window, so R1, R3, R7, R9 win none.
constexpr const char* pool_net = R"({
  "inputs": {"O": {"shape": [3, 3], "values": [0.1, 0.2, 0.1, 0.3, 0.9, 0.2, 0.1, -0.4, 0.1]},
             "t": {"shape": [], "values": [1.0]}},
  "params": {"v": {"shape": [4], "values": [0.5, -0.3, 0.2, 0.1]}, "b": {"shape": [], "values": [0.1]}},
  "graph": [{"op": "relu", "in": ["O"], "out": "R"}, {"op": "max_pool2d", "in": ["R"], "kernel": 2, "stride": 1, "out": "Z"},
            {"op": "flatten", "in": ["Z"], "out": "f"}, {"op": "dense", "in": ["f", "v", "b"], "out": "y"},
            {"op": "half_squared_error", "in": ["y", "t"], "out": "L"}],
  "loss": "L"})";

Report checked(const char* model_json, const std::string& formula) {
  const cli::Model model = cli::Model::parse(model_json, "test.json");
  return check_formula([&](Tape& tape) { model.build(tape); }, formula);
}

std::string first_message(const Report& r) { return r.findings.empty() ? "" : r.findings.front().message; }

}  // namespace

TEST_CASE("a right derivation through relus passes, and every relu branch was taken", "[check][branches]") {
  const Report r = checked(relu_mlp, "dL/dx1 = (W1*[z1 > 0]*v1 + W2*[z2 > 0]*v2 + W3*[z3 > 0]*v3)*(y - t)");
  INFO(r.text());
  CHECK(r.verdict == Verdict::Pass);
  CHECK(r.branches == 6);
  CHECK(r.branches_covered == 6);
  CHECK_THAT(r.text(), Catch::Contains("branches: 6 of 6 taken at some draw (3 relu units)"));
}

TEST_CASE("formulas right only on the model's own relu branches fail at a draw that takes the other",
          "[check][branches]") {
  SECTION("the path through an inactive unit left out") {
    const Report r = checked(relu_mlp, "dL/dx1 = (W1*[z1 > 0]*v1 + W3*[z3 > 0]*v3)*(y - t)");
    INFO(r.text());
    CHECK(r.verdict == Verdict::Fail);
    CHECK_THAT(first_message(r), Catch::Contains("at the draw where z"));
  }
  SECTION("the indicator of an active unit dropped") {
    const Report r = checked(relu_mlp, "dL/dW3 = x1*v3*(y - t)");
    INFO(r.text());
    CHECK(r.verdict == Verdict::Fail);
    REQUIRE_FALSE(r.findings.empty());
    CHECK(r.findings[0].mistake == Mistake::MissingActivation);
    CHECK_THAT(first_message(r), Catch::StartsWith("the activation derivative [z3 > 0] is missing"));
  }
  SECTION("a gradient that is zero at the point written as 0") {
    const Report r = checked(relu_mlp, "dL/dW1 = 0");
    INFO(r.text());
    CHECK(r.verdict == Verdict::Fail);
  }
  SECTION("two indicators swapped") {
    const Report r = checked(relu_mlp, "dL/dx1 = (W1*[z3 > 0]*v1 + W2*[z2 > 0]*v2 + W3*[z1 > 0]*v3)*(y - t)");
    INFO(r.text());
    CHECK(r.verdict == Verdict::Fail);
  }
}

TEST_CASE("max-pool: each cell of each window wins at some draw", "[check][branches]") {
  SECTION("the right routing passes") {
    const Report r = checked(pool_net, "dL/dR5 = dZ1/dR5*dL/dZ1 + dZ2/dR5*dL/dZ2 + dZ3/dR5*dL/dZ3 + dZ4/dR5*dL/dZ4");
    INFO(r.text());
    CHECK(r.verdict == Verdict::Pass);
    CHECK(r.branches == 2 * 9 + 4 * 4);  // every relu both ways, every cell of every window
    CHECK(r.branches_covered == r.branches);
  }
  SECTION("a cell that wins no window left out") {
    const Report r = checked(pool_net, "dL/dO1 = 0");
    INFO(r.text());
    CHECK(r.verdict == Verdict::Fail);
    CHECK_THAT(first_message(r), Catch::Contains("R1 wins Z1's window") || Catch::Contains("O1 > 0"));
  }
  SECTION("the gradient of the point's winner routed as if it always won") {
    const Report r = checked(pool_net, "dL/dR5 = v1*(y - t) + v2*(y - t) + v3*(y - t) + v4*(y - t)");
    INFO(r.text());
    CHECK(r.verdict == Verdict::Fail);
  }
}

TEST_CASE("a comparison of the formula's own that never comes out both ways is not a pass", "[check][branches]") {
  const Report r = checked(relu_mlp, "dL/dW3 = x1*[z3 > 0]*[x1 > -100]*v3*(y - t)");
  INFO(r.text());
  CHECK(r.verdict == Verdict::Uncovered);
  CHECK(r.uncovered == std::vector<std::string>{"[x1 > -100] false (in the formula)"});
  CHECK_THAT(r.text(), Catch::Contains("so the formula is not checked there"));
}

TEST_CASE("the mistake is named", "[check][mistakes]") {
  const std::string right = "x1*[z3 > 0]*v3*(y - t)";
  auto mistake = [&](const std::string& rhs) {
    const Report r = checked(relu_mlp, "dL/dW3 = " + rhs);
    INFO(r.text());
    REQUIRE(r.verdict == Verdict::Fail);
    REQUIRE(r.findings.size() == 1);
    return std::pair{r.findings[0].mistake, r.findings[0].message};
  };
  CHECK(mistake("-" + right).first == Mistake::Sign);
  const auto [factor, factor_text] = mistake("2*" + right);
  CHECK(factor == Mistake::ConstantFactor);
  CHECK_THAT(factor_text, Catch::StartsWith("off by a constant factor: it is 2 times the right value"));
  CHECK_THAT(mistake("0.5*" + right).second, Catch::StartsWith("off by a constant factor: it is 1/2 times"));
  const auto [index, index_text] = mistake("x2*[z3 > 0]*v3*(y - t)");
  CHECK(index == Mistake::WrongIndex);
  CHECK_THAT(index_text, Catch::StartsWith("wrong index: write x1 for x2"));
  const auto [extra, extra_text] = mistake(right + " + x2*[z3 > 0]*v3*(y - t)");
  CHECK(extra == Mistake::ExtraTerm);
  CHECK_THAT(extra_text, Catch::StartsWith("term 2: extra term"));
}

TEST_CASE("a transposed weight index is named as such", "[check][mistakes]") {
  // z = x W with W [2,3]: dz/dx has W_{i,j}; a square W makes the transpose another element.
  constexpr const char* square = R"({
    "inputs": {"x": {"shape": [1, 2], "values": [0.5, -1.0]}},
    "params": {"W": {"shape": [2, 2], "values": [0.4, -0.6, 0.3, 0.5]}},
    "graph": [{"op": "matmul", "in": ["x", "W"], "out": "z"}, {"op": "sum", "in": ["z"], "out": "L"}],
    "loss": "L"})";
  const Report r = checked(square, "dz2/dx1 = W3");  // z2 = x1 W_{1,2} + x2 W_{2,2}: the right element is W2
  INFO(r.text());
  REQUIRE(r.verdict == Verdict::Fail);
  CHECK(r.findings[0].mistake == Mistake::TransposedIndex);
  CHECK_THAT(r.findings[0].message,
             Catch::StartsWith("transposed index: W3 is _{2,1} of its matrix; the right element is W2 = _{1,2}"));
}

TEST_CASE("a missing path is named by the node it goes through", "[check][mistakes]") {
  const Report r = checked(relu_mlp, "dL/dx1 = W1*[z1 > 0]*v1*(y - t) + W3*[z3 > 0]*v3*(y - t)");
  INFO(r.text());
  REQUIRE(r.verdict == Verdict::Fail);
  CHECK(r.findings[0].mistake == Mistake::MissingPath);
  CHECK_THAT(r.findings[0].message, Catch::StartsWith("missing path through "));
}

TEST_CASE("a one-element tensor's name means its element; a tensor's name alone never does", "[check][names]") {
  // t has shape [1], so its element is named t1; W has four elements.
  constexpr const char* sigmoid_mlp = R"({
    "inputs": {"x": {"shape": [2], "values": [0.5, -1.2]}, "t": {"shape": [1], "values": [0.8]}},
    "params": {"W": {"shape": [2, 2], "values": [0.3, -0.7, 0.9, 0.2]}, "v": {"shape": [1, 2], "values": [1.1, -0.4]}},
    "graph": [{"op": "dense", "in": ["x", "W"], "out": "z"}, {"op": "sigmoid", "in": ["z"], "out": "h"},
              {"op": "dense", "in": ["h", "v"], "out": "y"}, {"op": "mse", "in": ["y", "t"], "out": "L"}],
    "loss": "L"})";
  CHECK(checked(sigmoid_mlp, "dL/dv1 = 2*(y - t)*h1").verdict == Verdict::Pass);
  CHECK(checked(sigmoid_mlp, "dL/dv1 = 2*(y - t1)*h1").verdict == Verdict::Pass);
  const Report r = checked(sigmoid_mlp, "dL/dW2 = 2*(y - t)*v1*sigmoid'(z1)*x1");
  REQUIRE(r.verdict == Verdict::Fail);
  CHECK(r.findings[0].mistake == Mistake::WrongIndex);
  CHECK_THAT(r.findings[0].message,
             Catch::StartsWith("wrong index: write x2 for x1. ∂L/∂W2 is 2·(y - t1)·v1·x2·σ′(z1)"));
  const Report whole = checked(sigmoid_mlp, "dL/dW = 0");
  CHECK(whole.verdict == Verdict::Error);
  CHECK_THAT(whole.error, Catch::Contains("unknown name 'W'"));
}

TEST_CASE("e is Euler's number unless the network has a node named e", "[check][names]") {
  // s = x W + b, L = softmax cross-entropy with label 1 (the second class).
  constexpr const char* softmax = R"({
    "inputs": {"x": {"shape": [1, 3], "values": [1.0, -0.5, 0.25]}},
    "params": {"W": {"shape": [3, 3], "values": [0.2, -0.1, 0.4, 0.5, 0.3, -0.2, -0.3, 0.1, 0.6]},
               "b": {"shape": [3], "values": [0.0, 0.1, -0.1]}},
    "graph": [{"op": "dense", "in": ["x", "W", "b"], "out": "s"},
              {"op": "softmax_cross_entropy", "in": ["s"], "labels": [1], "out": "L"}],
    "loss": "L"})";
  CHECK(checked(softmax, "dL/ds2 = e^s2/(e^s1 + e^s2 + e^s3) - 1").verdict == Verdict::Pass);
  const Report wrong = checked(softmax, "dL/ds1 = e^s1/(e^s1 + e^s2 + e^s3) - 1");
  REQUIRE(wrong.verdict == Verdict::Fail);
  CHECK(wrong.findings[0].mistake == Mistake::ExtraTerm);
  CHECK_THAT(wrong.findings[0].message, Catch::Contains("the formula has e^s1/(e^s1 + e^s2 + e^s3) - 1"));
  auto named_e = [](Tape& tape) {
    const Var e = tape.input(2.0, "e");
    (e * e).named("f");
  };
  CHECK(check_formula(named_e, "df/de = 2*e").verdict == Verdict::Pass);  // e is the node here
}

TEST_CASE("a branch no draw can reach makes the verdict uncovered, never pass", "[check][branches]") {
  // relu(-exp(x)) is off at every point: its "on" branch cannot be taken.
  auto build = [](Tape& tape) {
    const Var x = tape.input(0.3, "x");
    const Var z = (-exp(x)).named("z");
    (relu(z) + x).named("f");
  };
  const Report r = check_formula(build, "df/dx = 1");
  INFO(r.text());
  CHECK(r.verdict == Verdict::Uncovered);
  CHECK(r.uncovered == std::vector<std::string>{"z > 0"});
  CHECK_THAT(r.text(), Catch::Contains("never taken: z > 0"));
}

TEST_CASE("a model with float32 leaves is refused by the checker", "[check][errors]") {
  auto build = [](Tape& tape) {
    const float values[] = {1.0f, 2.0f};
    tape.input(std::span<const float>(values), Shape{2}, "x");
  };
  CHECK_THROWS_WITH(check_formula(build, "x1 = 1"), Catch::Contains("float32 leaves"));
}
