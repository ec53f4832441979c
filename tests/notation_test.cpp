// SPDX-License-Identifier: MIT
// The notation students write, on the seed network and the corpus networks:
// each construct's correct form passes, a mutated form fails (with the mistake named where
// the checker names it), and what is not read is an error at its line and column that
// shows a spelling that is.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "check/checker.hpp"
#include "cli/model.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;
using namespace gradpath::check;

namespace {

// A JSON model of examples/models or tests/corpus, rebuilt for every draw.
const BuildFn& model(const std::string& path) {
  static std::map<std::string, std::pair<cli::Model, BuildFn>> models;
  auto it = models.find(path);
  if (it == models.end()) {
    const std::filesystem::path root(GRADPATH_SOURCE_DIR);
    it = models.emplace(path, std::pair{cli::Model::load((root / path).string()), BuildFn()}).first;
    const cli::Model* m = &it->second.first;
    it->second.second = [m](Tape& tape) { m->build(tape); };
  }
  return it->second.second;
}
const BuildFn& seed() { return model("examples/models/seed.json"); }
const BuildFn& sigmoid_mlp() { return model("tests/corpus/sigmoid_mlp.json"); }
const BuildFn& tanh_mlp() { return model("tests/corpus/tanh_mlp.json"); }
const BuildFn& relu_mlp() { return model("tests/corpus/relu_mlp.json"); }

// x(4) -> dense W(3x4), b -> z; L = |z - t|^2 / 2: W has an element 12 and a row 1, column 2.
const BuildFn& wide_dense() {
  static const cli::Model m = cli::Model::parse(R"({
    "inputs": {"x": {"shape": [4], "values": [0.5, -1.0, 2.0, 0.3]},
               "t": {"shape": [3], "values": [0.1, 0.2, -0.3]}},
    "params": {"W": {"shape": [3, 4], "values": [0.3, -0.2, 0.4, 0.1, -0.5, 0.1, 0.2, 0.7, 0.6, -0.9, 0.8, -0.1]},
               "b": {"shape": [3], "values": [0.1, -0.3, 0.2]}},
    "graph": [{"op": "dense", "in": ["x", "W", "b"], "out": "z"},
              {"op": "half_squared_error", "in": ["z", "t"], "out": "L"}],
    "loss": "L"})",
                                                "wide_dense");
  static const BuildFn build = [](Tape& tape) { m.build(tape); };
  return build;
}

Verdict verdict(const BuildFn& build, std::string_view formula) {
  const Report r = check_formula(build, formula);
  INFO(formula);
  INFO(r.text());
  return r.verdict;
}

std::string first_line(const Report& r) {
  const std::string all = r.verdict == Verdict::Error ? r.error : r.findings.empty() ? "" : r.findings[0].message;
  return all.substr(0, all.find('\n'));
}

std::vector<Verdict> verdicts(const std::vector<Report>& reports) {
  std::vector<Verdict> out;
  for (const Report& r : reports) out.push_back(r.verdict);
  return out;
}

}  // namespace

TEST_CASE("notation: σ, \\sigma', sigmoid', tanh', ReLU and their primes on the MLPs", "[check][notation]") {
  for (const char* right :
       {R"(\frac{\partial h_1}{\partial z_1} = \sigma'(z_1))", "∂h1/∂z1 = σ'(z1)", "dh1/dz1 = sigmoid'(z1)",
        "∂h₁/∂z₁ = σ′(z₁)", R"(\frac{\partial h_1}{\partial z_1} = \sigma(z_1)(1 - \sigma(z_1)))",
        R"(\frac{\partial h_1}{\partial z_1} = \sigma(z_1) \left(1 - \sigma(z_1)\right))"}) {
    CHECK(verdict(sigmoid_mlp(), right) == Verdict::Pass);
  }
  for (const char* wrong : {R"(\frac{\partial h_1}{\partial z_1} = \sigma(z_1))",
                            R"(\frac{\partial h_1}{\partial z_1} = \sigma'(z_2))", "h1 = tanh(z1)"}) {
    CHECK(verdict(sigmoid_mlp(), wrong) == Verdict::Fail);
  }
  CHECK(verdict(sigmoid_mlp(), "h_1 = σ(z_1)") == Verdict::Pass);
  CHECK(verdict(sigmoid_mlp(), R"(\frac{\partial L}{\partial z_1} = 2 (y - t) V_1 \sigma'(z_1))") == Verdict::Pass);
  const Report missing = check_formula(sigmoid_mlp(), R"(\frac{\partial L}{\partial z_1} = 2 (y - t) V_1)");
  CHECK(missing.verdict == Verdict::Fail);
  REQUIRE(!missing.findings.empty());
  CHECK(missing.findings[0].mistake == Mistake::MissingActivation);
  CHECK_THAT(first_line(missing), Catch::Contains("σ′(z1) is missing"));

  for (const char* right :
       {R"(\frac{\partial h_2}{\partial z_2} = \tanh'(z_2))", R"(\frac{\partial h_2}{\partial z_2} = 1 - \tanh(z_2)^2)",
        R"(\frac{\partial h_2}{\partial z_2} = 1 - \tanh^2(z_2))", "dh2/dz2 = 1 - Tanh(z2)^2"}) {
    CHECK(verdict(tanh_mlp(), right) == Verdict::Pass);
  }
  CHECK(verdict(tanh_mlp(), R"(\frac{\partial h_2}{\partial z_2} = \tanh'(z_1))") == Verdict::Fail);
  CHECK(verdict(tanh_mlp(), R"(\frac{\partial h_2}{\partial z_2} = 1 + \tanh^2(z_2))") == Verdict::Fail);

  for (const char* right : {"h2 = relu(z2)", "h_2 = ReLU(z_2)", R"(h_2 = \mathrm{ReLU}(z_2))",
                            R"(h_2 = \operatorname{relu}(z_2))", "dh2/dz2 = relu'(z2)"}) {
    CHECK(verdict(relu_mlp(), right) == Verdict::Pass);
  }
}

TEST_CASE("notation: indicators, H, step, \\max and \\min on the ReLU MLP (unit 2 inactive)", "[check][notation]") {
  for (const char* indicator :
       {R"(\mathbb{1}[z_2 > 0])", R"(\mathbb{1}_{z_2 > 0})", R"(\mathbf{1}\{z_2 > 0\})", "[z_2 > 0]", "𝟙[z2 > 0]",
        "H(z_2)", R"(\operatorname{step}(z_2))", "step(z2)", R"(\mathrm{ReLU}'(z_2))", R"(\mathbb{1}[z_2 \geq 0])"}) {
    const std::string right = std::string(R"(\frac{\partial L}{\partial z_2} = (y - t) V_2 )") + indicator;
    CHECK(verdict(relu_mlp(), right) == Verdict::Pass);
  }
  // The indicator dropped, or the wrong unit's: the draws switch unit 2 on, so both fail.
  const Report dropped = check_formula(relu_mlp(), R"(\frac{\partial L}{\partial z_2} = (y - t) V_2)");
  CHECK(dropped.verdict == Verdict::Fail);
  REQUIRE(!dropped.findings.empty());
  CHECK(dropped.findings[0].mistake == Mistake::MissingActivation);
  CHECK(verdict(relu_mlp(), R"(\frac{\partial L}{\partial z_2} = (y - t) V_2 \mathbb{1}[z_1 > 0])") == Verdict::Fail);
  CHECK(verdict(relu_mlp(), R"(\frac{\partial L}{\partial z_2} = (y - t) V_2 \mathbb{1}[z_2 < 0])") == Verdict::Fail);
  CHECK(verdict(relu_mlp(), R"(h_2 = \max(0, z_2))") == Verdict::Pass);
  CHECK(verdict(relu_mlp(), R"(h_2 = \max\{z_2, 0\})") == Verdict::Pass);
  CHECK(verdict(relu_mlp(), R"(h_2 = -\min(0, -z_2))") == Verdict::Pass);
  CHECK(verdict(relu_mlp(), R"(h_2 = \min(0, z_2))") == Verdict::Fail);
  CHECK(to_string(parse_formula("x = max(a, b)").rhs) == "a·[a >= b] + b·[a < b]");
}

TEST_CASE("notation: names as written: d-fractions, \\mathcal, \\text, Greek, Unicode subscripts",
          "[check][notation]") {
  for (const char* right :
       {R"(\frac{dL}{dy} = y - t)", R"(\frac{d L}{d y} = y - t)", R"(\frac{\mathrm{d} L}{\mathrm{d} y} = y - t)",
        R"(\frac{\partial \mathcal{L}}{\partial y} = y - t)",
        R"(\frac{\partial \text{L}}{\partial \hat{y}} = \hat{y} - \text{t})", R"(\frac{dz_2}{dw_1} = a_3)",
        "∂z₂/∂w₁ = a₃", R"(\frac{\partial L}{\partial z_1} = v_1\,(y - t))"}) {
    CHECK(verdict(seed(), right) == Verdict::Pass);
  }
  CHECK(verdict(seed(), "∂z₂/∂w₁ = a₁₃") == Verdict::Fail);
  CHECK(verdict(seed(), R"(\frac{dL}{dy} = t - y)") == Verdict::Fail);
  const Formula f = parse_formula(R"(\frac{d z_2}{d w_1} = \alpha + δ_k)");
  CHECK(to_string(f.lhs) == "∂z2/∂w1");
  CHECK(to_string(f.rhs) == "alpha + deltak");
  // Only ReLU, Tanh and Sigmoid are functions in another case: a node called Max is a name.
  CHECK(to_string(parse_formula("x = Max(a) + Tanh(b)").rhs) == "Max·a + tanh(b)");
}

TEST_CASE("notation: what is not read is an error at its column showing a spelling that is", "[check][notation]") {
  auto error = [](std::string_view formula) {
    const Report r = check_formula(seed(), formula);
    INFO(r.text());
    CHECK(r.verdict == Verdict::Error);
    return r.error;
  };
  CHECK_THAT(error(R"(\nabla_w L = 0)"), Catch::StartsWith("line 1, column 1: unknown command '\\nabla'") &&
                                             Catch::Contains("\\frac{\\partial L}{\\partial w_1}"));
  // The matrix form is read (matrix_form_test); a name it uses must still be the network's.
  CHECK_THAT(error(R"(\frac{\partial L}{\partial w} = \delta x^\top)"), Catch::Contains("unknown name 'delta'"));
  CHECK_THAT(error(R"(\frac{\partial L}{\partial w} = \delta \otimes x)"),
             Catch::Contains("column 40: the outer product \\otimes is not read: write \\delta x^\\top"));
  CHECK_THAT(error(R"(y = \mathbb{1}[z_1])"),
             Catch::Contains("column 5: the indicator \\mathbb{1} holds a comparison: \\mathbb{1}[z_1 > 0]"));
  CHECK_THAT(error(R"(y = \max(z_1))"), Catch::Contains("\\max takes two arguments: \\max(a, b)"));
  CHECK_THAT(error(R"(L = \sum z_k)"), Catch::Contains("column 5: write the index the sum runs over: \\sum_k"));
  CHECK_THAT(error(R"(y = w_{2 \cdot i})"), Catch::Contains("column 10: a subscript holds numbers and index letters"));
  CHECK_THAT(error(R"(y = \tanh^{-1}(z_1))"), Catch::Contains("a power of a function is written \\tanh^2(z)"));
  CHECK_THAT(error(R"(y = \text{hidden unit})"), Catch::Contains("a name is one word starting with a letter"));
  CHECK_THAT(error(R"(\frac{\partial^3 L}{\partial w_1^3} = 0)"),
             Catch::Contains("column 15: only first and second derivatives are read"));
  CHECK_THAT(error("L = |y - t|"), Catch::Contains("column 5: write |x| as abs(x)"));
  CHECK_THAT(error(R"(w_i^* = w_i - \alpha \frac{\partial L}{\partial w_i})"),
             Catch::Contains("column 1: the update rule is checked against one gradient-descent step, which needs "
                             "the learning rate"));
  CHECK_THAT(error(R"(w_1 = w_1^* - 0.1)"), Catch::Contains("is the left side of an update rule"));
  CHECK_THAT(error("L = z^{(1)}_1"), Catch::Contains("column 5: unknown name 'z11'"));  // layer 1 of z
}

TEST_CASE("notation: two-index names W_{1,2}, W[1,2], W_{12} read row-major from 1", "[check][notation]") {
  for (const char* right :
       {R"(\frac{\partial z_1}{\partial W_{1,2}} = x_2)", R"(\frac{\partial z_1}{\partial W[1,2]} = x_2)",
        R"(\frac{\partial z_1}{\partial W_{12}} = x_2)", R"(\frac{\partial z_2}{\partial W_{2,3}} = x_3)",
        "dz2/dW_{2, 1} = x1", R"(\frac{\partial z_2}{\partial W_{2,\,1}} = x_1)"}) {
    CHECK(verdict(sigmoid_mlp(), right) == Verdict::Pass);
  }
  CHECK(verdict(sigmoid_mlp(), R"(\frac{\partial z_1}{\partial W_{2,1}} = x_2)") == Verdict::Fail);
  CHECK(verdict(sigmoid_mlp(), R"(\frac{\partial z_1}{\partial W_{1,3}} = x_2)") == Verdict::Fail);
  const Report outside = check_formula(sigmoid_mlp(), R"(\frac{\partial z_1}{\partial W_{3,1}} = x_1)");
  CHECK(outside.verdict == Verdict::Error);
  CHECK_THAT(outside.error, Catch::StartsWith("line 1, column 33: W_{3,1} is (3,1), outside W's 2×3"));
  // x is a vector: two indices are an error, never a guess.
  CHECK_THAT(check_formula(sigmoid_mlp(), R"(\frac{\partial z_1}{\partial x_{1,2}} = W_1)").error,
             Catch::Contains("no op of the network reads x as a matrix: write its element number, x_{k}"));
  // The seed's filter is a 3×3 leaf: w_{mn} is row m, column n, and the claim holds at (1, 1) only.
  CHECK(verdict(seed(), R"(\frac{\partial z_1}{\partial w_{mn}} = a_1, \quad m, n = 1..3)") == Verdict::Fail);
  CHECK(verdict(sigmoid_mlp(), R"(\frac{\partial z_i}{\partial W_{ij}} = x_j)") == Verdict::Pass);
  SECTION("W_{12} when W has an element 12 and a row 1, column 2: the element, and a note saying so") {
    const Report flat = check_formula(wide_dense(), R"(\frac{\partial z_3}{\partial W_{12}} = x_4)");
    CHECK(flat.verdict == Verdict::Pass);
    REQUIRE(flat.notes.size() == 1);
    CHECK(flat.notes[0] ==
          "W_{12} is read as W12, element 12 of W in row-major order; write W_{1,2} for row 1, column 2");
    CHECK_THAT(flat.text(), Catch::Contains("  note: W_{12} is read as W12"));
    CHECK(flat.json()["notes"][0] == flat.notes[0]);
    CHECK(verdict(wide_dense(), R"(\frac{\partial z_1}{\partial W_{1,2}} = x_2)") == Verdict::Pass);
    CHECK(check_formula(wide_dense(), R"(\frac{\partial z_1}{\partial W_{1,2}} = x_2)").notes.empty());
  }
  SECTION("the seed note's a_{13} stays element 13 of the image") {
    CHECK(verdict(seed(), R"(\frac{\partial z_4}{\partial w_1} = a_{13})") == Verdict::Pass);
  }
}

TEST_CASE("notation: sums over an index, written out", "[check][notation]") {
  for (
      const char* right :
      {R"(\frac{\partial L}{\partial w_1} = \sum_{k=1}^{4} \frac{\partial z_k}{\partial w_1} \frac{\partial L}{\partial z_k})",
       R"(\frac{\partial L}{\partial w_1} = \sum_k \frac{\partial z_k}{\partial w_1} \frac{\partial L}{\partial z_k})",
       "∂L/∂w1 = Σ_k ∂z_k/∂w1 · ∂L/∂z_k", "dL/dw1 = ∑_{k=1}^4 dz_k/dw1 * dL/dz_k",
       R"(\frac{\partial L}{\partial w_1} = \sum\limits_{k=1}^{4} \frac{\partial z_k}{\partial w_1} v_k (y - t))",
       R"(y = \sum_{k} v_k z_k + b)"}) {
    CHECK(verdict(seed(), right) == Verdict::Pass);
  }
  const Report short_sum = check_formula(
      seed(),
      R"(\frac{\partial L}{\partial w_1} = \sum_{k=1}^{3} \frac{\partial z_k}{\partial w_1} \frac{\partial L}{\partial z_k})");
  CHECK(short_sum.verdict == Verdict::Fail);
  CHECK_THAT(first_line(short_sum), Catch::Contains("missing path through z4"));
  CHECK(verdict(seed(), R"(y = \sum_{k} v_k z_k)") == Verdict::Fail);
  SECTION("\\sum_{i,j} over a matrix, i slowest") {
    CHECK(verdict(relu_mlp(), R"(\sum_{i,j} W_{i,j} \frac{\partial z_i}{\partial W_{i,j}} = \sum_i (z_i - b_i))") ==
          Verdict::Pass);
    CHECK(verdict(relu_mlp(), R"(\sum_{i,j} W_{i,j} \frac{\partial z_i}{\partial W_{i,j}} = \sum_i z_i)") ==
          Verdict::Fail);
    CHECK(
        verdict(relu_mlp(), R"(\frac{\partial L}{\partial x_1} = \sum_{k} W_{k,1} \frac{\partial L}{\partial z_k})") ==
        Verdict::Pass);
    CHECK(
        verdict(relu_mlp(), R"(\frac{\partial L}{\partial x_1} = \sum_{k} W_{1,k} \frac{\partial L}{\partial z_k})") ==
        Verdict::Fail);
  }
  SECTION("a range the tensors disagree on, or cannot give, is an error that asks for it") {
    const Report r = check_formula(
        tanh_mlp(), R"(\frac{\partial L}{\partial h_1} = \sum_k V_{1,k} \frac{\partial L}{\partial y_k})");
    CHECK(r.verdict == Verdict::Error);
    CHECK_THAT(r.error, Catch::Contains("the index k runs over 1..3 in V_{1,k} but 1..2 in y_k: write its range"));
    CHECK(verdict(tanh_mlp(), R"(\frac{\partial L}{\partial h_1} = \sum_k V_{k,1} \frac{\partial L}{\partial y_k})") ==
          Verdict::Pass);
    CHECK_THAT(check_formula(seed(), R"(L = \sum_k 0)").error,
               Catch::Contains("the range of the index k cannot be read from the tensors it indexes"));
  }
}

TEST_CASE("notation: a free index is a claim for every value; failing values are named", "[check][notation]") {
  const std::string general =
      R"(\frac{\partial L}{\partial w_i} = \frac{\partial z_1}{\partial w_i} \cdot \frac{\partial L}{\partial z_1} + \frac{\partial z_2}{\partial w_i} \cdot \frac{\partial L}{\partial z_2} + \frac{\partial z_3}{\partial w_i} \cdot \frac{\partial L}{\partial z_3} + \frac{\partial z_4}{\partial w_i} \cdot \frac{\partial L}{\partial z_4})";
  CHECK(verdict(seed(), general) == Verdict::Pass);
  std::string dropped = general.substr(0, general.rfind(" + "));
  const Report missing = check_formula(seed(), dropped);
  CHECK(missing.verdict == Verdict::Fail);
  CHECK_THAT(first_line(missing),
             Catch::StartsWith("for i = 1, 2, 3, 4, 5, 6, 7, 8, 9 (shown at i = 1): missing path through z4"));

  // w has 9 elements and a 25: the range is written, or the formula is an error.
  CHECK_THAT(check_formula(seed(), R"(\frac{\partial z_1}{\partial w_i} = a_i \quad \forall i)").error,
             Catch::Contains("column 32: the index i runs over 1..9 in w_i but 1..25 in a_i: write its range"));
  const Report some = check_formula(seed(), R"(\frac{\partial z_1}{\partial w_i} = a_i, \quad i = 1,\dots,9)");
  CHECK(some.verdict == Verdict::Fail);
  CHECK_THAT(first_line(some), Catch::StartsWith("for i = 4, 5, 6, 7, 8, 9 (shown at i = 4): "));
  CHECK(verdict(seed(), R"(\frac{\partial z_1}{\partial w_i} = a_i, \quad i = 1,\dots,3)") == Verdict::Pass);
  CHECK(verdict(seed(), R"(\frac{\partial z_1}{\partial w_i} = a_i \quad (i = 1, \ldots, 3))") == Verdict::Pass);
  CHECK(verdict(seed(), R"(\frac{\partial z_1}{\partial w_i} = a_i, \; i \in \{1..3\})") == Verdict::Pass);
  const Report four = check_formula(seed(), R"(\frac{\partial z_1}{\partial w_i} = a_i, i = 1..4)");
  CHECK(four.verdict == Verdict::Fail);
  CHECK_THAT(first_line(four), Catch::StartsWith("for i = 4: "));
  CHECK(verdict(seed(), R"(\frac{\partial z_1}{\partial w_i} = a_i \quad \forall i \in \{1,\dots,3\})") ==
        Verdict::Pass);
  CHECK(verdict(relu_mlp(), R"(\frac{\partial L}{\partial x_j} = \sum_k W_{k,j} \frac{\partial L}{\partial z_k})") ==
        Verdict::Pass);
  const Report transposed =
      check_formula(relu_mlp(), R"(\frac{\partial L}{\partial x_j} = \sum_k W_{j,k} \frac{\partial L}{\partial z_k})");
  CHECK(transposed.verdict == Verdict::Fail);
  CHECK_THAT(first_line(transposed), Catch::StartsWith("for j = 1, 2, 3 (shown at j = 1): term 2: transposed index"));
  CHECK(verdict(tanh_mlp(), R"(\frac{\partial L}{\partial y_k} = y_k - t_k)") == Verdict::Pass);
  const Report sign = check_formula(tanh_mlp(), R"(\frac{\partial L}{\partial y_k} = t_k - y_k)");
  CHECK_THAT(first_line(sign), Catch::StartsWith("for k = 1, 2 (shown at k = 1): the sign is flipped"));
  CHECK_THAT(check_formula(seed(), R"(\frac{\partial z_1}{\partial w_i} = a_i, j = 1..3)").error,
             Catch::Contains("the formula has no free index j"));
  CHECK_THAT(check_formula(seed(), R"(\frac{\partial z_1}{\partial w_i} = a_i, i = 1..10)").error,
             Catch::Contains("column 32: w_{i} at i = 10 is element 10 of w, which has elements 1..9"));
}

TEST_CASE("notation: definitions name a quantity for the rest of the file, and a fact they state is checked",
          "[check][notation]") {
  const std::string file = R"(
Let $\delta_k := \frac{\partial L}{\partial z_k}$ be the error at $z_k$ (prose, then a definition).
$$\delta_k := \frac{\partial L}{\partial z_k}$$
$$\frac{\partial L}{\partial w_1} = a_1 \delta_1 + a_3 \delta_2 + a_{11} \delta_3 + a_{13} \delta_4$$
$$\frac{\partial L}{\partial w_1} = a_1 \delta_1 + a_{13} \delta_2 + a_{11} \delta_3 + a_{13} \delta_4$$
$$\frac{\partial L}{\partial w_i} = \sum_k \frac{\partial z_k}{\partial w_i} \delta_k$$
$$g \coloneqq y - t$$
$$\frac{\partial L}{\partial y} = g$$
$$e \equiv 2 g$$
$$\frac{\partial L}{\partial y} = e$$
\[ \text{let } r = v_2 g \]
\[ \frac{\partial L}{\partial z_2} = r \]
$$\epsilon_1 := \frac{\partial L}{\partial z_1} = v_1 (y - t)$$
$$\epsilon_2 := \frac{\partial L}{\partial z_2} = v_1 (y - t)$$
$$\frac{\partial L}{\partial z_1} = \epsilon_1$$
$$y := v_1 z_1 + v_2 z_2 + v_3 z_3 + v_4 z_4 + b$$
$$y := v_1 z_1 + b$$
)";
  const std::vector<Report> reports = check_text(seed(), file);
  INFO(text(reports));
  // The inline definition in the prose and the four on lines 3, 7, 9 and 11 state nothing else.
  REQUIRE(reports.size() == 11);
  CHECK(verdicts(reports) == std::vector{Verdict::Pass, Verdict::Fail, Verdict::Pass, Verdict::Pass, Verdict::Fail,
                                         Verdict::Pass, Verdict::Pass, Verdict::Fail, Verdict::Pass, Verdict::Pass,
                                         Verdict::Fail});
  CHECK(reports[0].line == 4);
  CHECK_THAT(reports[1].findings[0].message, Catch::StartsWith("term 2: wrong index: write a3 for a13"));
  CHECK_THAT(reports[4].findings[0].message, Catch::Contains("off by a constant factor: it is 2 times"));
  CHECK(reports[7].line == 14);
  CHECK_THAT(reports[10].findings[0].message, Catch::Contains("the left side y is"));
  SECTION("a definition's unknown name is an error at the definition, and a file of definitions holds no formula") {
    const std::vector<Report> bad =
        check_text(seed(), "$$\\delta_k := \\frac{\\partial L}{\\partial q_k}$$\n$$L = L$$\n");
    REQUIRE(bad.size() == 2);
    CHECK(bad[0].verdict == Verdict::Error);
    CHECK_THAT(bad[0].error, Catch::StartsWith("line 1, column 44: unknown name 'q' in q_k"));
    CHECK_THROWS_WITH(check_text(seed(), "let g = y - t\ng := 2\n"), Catch::Contains("only definitions"));
    const std::vector<Report> by_definition = check_text(seed(), "let g = y - t\ndL/dg = 1\n");
    REQUIRE(by_definition.size() == 1);
    CHECK_THAT(by_definition[0].error, Catch::StartsWith("line 2, column 5: g is a definition, not a node"));
  }
  SECTION("a plain-text file: let and :=") {
    const std::vector<Report> plain = check_text(seed(), "let g = y - t\ndL/dy = g\nd := y\ndL/dy = d - t\n");
    CHECK(verdicts(plain) == std::vector{Verdict::Pass, Verdict::Pass});
  }
}

TEST_CASE("notation: index arithmetic: the conv's general formula, and a stride or a transpose written wrong",
          "[check][notation]") {
  SECTION("the seed's stride-2 conv in element numbers, for every filter tap (m, n)") {
    const std::string right =
        R"(\frac{\partial L}{\partial w_{3(m-1)+n}} = \sum_{i=1}^{2} \sum_{j=1}^{2} \frac{\partial L}{\partial z_{2(i-1)+j}} a_{5(2(i-1)+m-1) + 2(j-1)+n}, \quad m, n = 1,\dots,3)";
    const Report pass = check_formula(seed(), right);
    INFO(pass.text());
    CHECK(pass.verdict == Verdict::Pass);
    CHECK(pass.form == Form::Cut);
    const std::string stride_one =
        R"(\frac{\partial L}{\partial w_{3(m-1)+n}} = \sum_{i=1}^{2} \sum_{j=1}^{2} \frac{\partial L}{\partial z_{2(i-1)+j}} a_{5((i-1)+m-1) + (j-1)+n}, \quad m, n = 1,\dots,3)";
    const Report fail = check_formula(seed(), stride_one);
    CHECK(fail.verdict == Verdict::Fail);
    CHECK_THAT(first_line(fail), Catch::StartsWith("for (m, n) = (1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (3, "
                                                   "1), (3, 2), (3, 3) (shown at m = 1, n = 1): term 2: wrong index: "
                                                   "write a3 for a2"));
    CHECK(
        verdict(seed(), R"(\frac{\partial z_2}{\partial w_{3(m-1)+n}} = a_{5(m-1)+n+2} \quad (m, n = 1, \dots, 3))") ==
        Verdict::Pass);
  }
  SECTION("the 3×3 conv output O and the 2×2 pool output Z of the conv-pool network, by row and column") {
    const BuildFn& conv_pool = model("tests/corpus/conv_pool.json");
    CHECK(verdict(conv_pool, R"(\frac{\partial R_{i,j}}{\partial O_{i,j}} = \mathbb{1}[O_{i,j} > 0])") ==
          Verdict::Pass);
    const Report transposed =
        check_formula(conv_pool, R"(\frac{\partial R_{i,j}}{\partial O_{i,j}} = \mathbb{1}[O_{j,i} > 0])");
    CHECK(transposed.verdict == Verdict::Fail);
    CHECK_THAT(first_line(transposed), Catch::StartsWith("for (i, j) = (1, 2), (1, 3), (2, 1), (2, 3), (3, 1), (3, 2) "
                                                         "(shown at i = 1, j = 2): transposed index"));
    CHECK(verdict(conv_pool, R"(\frac{\partial y}{\partial Z_{i,j}} = v_{2(i-1)+j})") == Verdict::Pass);
    CHECK(verdict(conv_pool, R"(\frac{\partial y}{\partial Z_{i,j}} = v_{2(j-1)+i})") == Verdict::Fail);
  }
}

TEST_CASE("notation: a function word or an index letter that is also a node of the network is refused, not guessed",
          "[check][notation]") {
  auto build = [](Tape& tape) {
    Var H = tape.input(0.7, "H"), z = tape.input(-0.4, "z"), t = tape.input(2.0, "t");
    Var m = tape.input(0.2, "max");
    (H * z + m * max(t, z)).named("f");  // the function max of t and z times the node max
  };
  const Report h = check_formula(build, "f = H(z) + max*t");  // refused before it is evaluated
  CHECK(h.verdict == Verdict::Error);
  CHECK_THAT(h.error, Catch::StartsWith("line 1, column 5: H is a node of the network, so H(…) could be a product: "
                                        "write H·(…) for the product, [z > 0] for the step function"));
  CHECK(verdict(build, R"(f = H (z) + max*\max(t, z))") == Verdict::Pass);  // with a space H is the name
  CHECK_THAT(check_formula(build, "f = max(H, z)").error,
             Catch::Contains("max is a node of the network, so max(…) could be a product"));
  CHECK(verdict(build, R"(f = H z + \max(t, z) \cdot max)") == Verdict::Pass);  // \max is the function
  CHECK_THAT(check_formula(seed(), R"(L = \sum_t a_t)").error,
             Catch::Contains("t is a node of the network and cannot be an index too"));
}

TEST_CASE("notation: ranges written in words, and definitions in align rows", "[check][notation]") {
  CHECK(verdict(seed(), R"(\frac{\partial z_1}{\partial w_i} = a_i \quad \text{for } i = 1,\dots,3)") == Verdict::Pass);
  CHECK(verdict(seed(), R"(\frac{\partial z_1}{\partial w_i} = a_i \quad \text{for all } i \in \{1, \ldots, 3\})") ==
        Verdict::Pass);
  const std::vector<Report> reports = check_text(seed(), R"(\begin{align}
\delta_k &:= \frac{\partial L}{\partial z_k} \\
\frac{\partial L}{\partial w_1} &= \sum_k \frac{\partial z_k}{\partial w_1} \delta_k \\
 &= a_1 \delta_1 + a_3 \delta_2 + a_{11} \delta_3 + a_{13} \delta_4 \\
 &= a_1 \delta_1 + a_3 \delta_2 + a_{11} \delta_3 + a_{12} \delta_4
\end{align})");
  CHECK(verdicts(reports) == std::vector{Verdict::Pass, Verdict::Pass, Verdict::Fail});
}

TEST_CASE("notation: hostile subscripts, sums and definitions are errors, never a crash or a blow-up",
          "[check][notation][robustness]") {
  const std::string deep = "L = a_{" + std::string(100, '(') + "1" + std::string(100, ')') + "}";
  CHECK_THAT(check_formula(seed(), deep).error, Catch::Contains("cannot read the index"));
  CHECK_THAT(check_formula(seed(), "L = a_{99999999999999999999999}").error, Catch::Contains("cannot read the index"));
  CHECK_THAT(check_formula(seed(), R"(L = \sum_{k=1}^{20000} k_1)").error, Catch::Contains("more than 10000 terms"));
  CHECK_THAT(check_formula(seed(), R"(\frac{\partial z_1}{\partial w_i} = a_i, \quad i = 1..1000000)").error,
             Catch::Contains("more than 10000 values"));
  std::string chain = "g0 := y\n";
  for (int k = 1; k <= 12; ++k)
    chain += "g" + std::to_string(k) + " := g" + std::to_string(k - 1) + " + g" + std::to_string(k - 1) + "\n";
  chain += "L = g12\n";
  const std::vector<Report> grown = check_text(seed(), chain);
  REQUIRE(!grown.empty());
  CHECK_THAT(grown[0].error, Catch::Contains("is too large"));
}

TEST_CASE(
    "notation: a layer as a superscript, W^{(2)} or W^{[2]}, names the tensor W2; a 1 x n weight takes two indices",
    "[check][notation]") {
  // x (2) -> dense W1 (3x2), b1 -> relu -> dense W2 (1x3), b2 -> y, L = (y - t)^2 / 2.
  const BuildFn& mlp = model("tests/corpus/two_layer_mlp.json");
  CHECK(verdict(mlp, R"(\frac{\partial L}{\partial W^{(2)}_{1,2}} = (\hat{y} - t) h_2)") == Verdict::Pass);
  CHECK(verdict(mlp, R"(\frac{\partial L}{\partial W^{[2]}_{1,3}} = (\hat{y} - t) h_3)") == Verdict::Pass);
  CHECK(verdict(mlp, R"(\frac{\partial L}{\partial W_{1,3}^{(2)}} = (\hat{y} - t) h_3)") == Verdict::Pass);
  CHECK(verdict(mlp, R"(\frac{\partial L}{\partial W2_{1,1}} = (y - t) h_1)") == Verdict::Pass);
  CHECK(verdict(mlp, R"(\frac{\partial L}{\partial W^{(2)}_{1,2}} = (\hat{y} - t) h_1)") == Verdict::Fail);
  CHECK(verdict(mlp, R"(\frac{\partial L}{\partial W1_{i,j}} = (y - t) W2_{1,i} [z_i > 0] x_j)") == Verdict::Pass);
  CHECK(verdict(mlp, R"(\frac{\partial L}{\partial W1_{i,j}} = (y - t) W2_{1,i} x_j)") == Verdict::Fail);
  // A power keeps its plain exponent: \hat{y}^2 is y squared, not a layer.
  CHECK(verdict(mlp, R"(\frac{\partial L}{\partial \hat{y}} = \hat{y}^2 / \hat{y} - t)") == Verdict::Pass);
}

TEST_CASE("notation: the update rule is checked against one gradient-descent step", "[check][notation]") {
  // The seed: one step of w_i at rate 0.1 by hand, against the formula's value.
  const std::vector<Report> reports = check_text(seed(), R"($$\alpha := 0.1$$
$$w_i^* = w_i - \alpha \times \frac{\partial L}{\partial w_i}$$
$$w_1^{*} = w_1 - 0.1 \frac{\partial L}{\partial w_1}$$
$$w_2^\ast = w_2 + \alpha \frac{\partial L}{\partial w_2}$$
$$w_3^* = w_3 - \alpha \frac{\partial L}{\partial z_1}$$
$$w_4^* = w_4 - 0.01 \frac{\partial L}{\partial w_4}$$
$$w_5^* = w_6 - \alpha \frac{\partial L}{\partial w_5}$$
)");
  REQUIRE(reports.size() == 6);
  INFO(text(reports));
  CHECK(verdicts(reports) ==
        std::vector{Verdict::Pass, Verdict::Pass, Verdict::Fail, Verdict::Fail, Verdict::Fail, Verdict::Fail});
  CHECK(reports[2].findings.at(0).mistake == Mistake::Sign);
  CHECK(reports[4].findings.at(0).mistake == Mistake::ConstantFactor);
  // The rate given to the checker wins over the file's: the step at 0.05 is another one.
  CheckOptions at_005;
  at_005.learning_rate = 0.05;
  const std::string rule = R"(w_i^* = w_i - 0.05 \frac{\partial L}{\partial w_i})";
  CHECK(check_formula(seed(), rule, at_005).verdict == Verdict::Pass);
  CheckOptions at_01;
  at_01.learning_rate = 0.1;
  CHECK(check_formula(seed(), rule, at_01).verdict == Verdict::Fail);
  // On an MLP, a wrong step through the sigmoid.
  const std::vector<Report> mlp = check_text(sigmoid_mlp(), R"($$\eta := 0.5$$
$$W_{1,2}^* = W_{1,2} - \eta \frac{\partial L}{\partial W_{1,2}}$$
$$W_{1,2}^* = W_{1,2} - \eta \frac{\partial L}{\partial z_1} x_2 \sigma'(z_1)$$
)");
  REQUIRE(mlp.size() == 2);
  INFO(text(mlp));
  CHECK(verdicts(mlp) == std::vector{Verdict::Pass, Verdict::Fail});
}

TEST_CASE("notation: the note's conv formula with row and column indices on the seed's conv2d_mac",
          "[check][notation]") {
  // a (5×5) and w (3×3) are leaves, z (2×2) conv2d_mac's sums: their names carry the
  // shapes, so two indices read row-major: a_{1,3} is a3, a_{3,1} is a11.
  CHECK(verdict(seed(), R"(\frac{\partial z_{1,2}}{\partial w_{1,1}} = a_{1,3})") == Verdict::Pass);
  CHECK(verdict(seed(), R"(\frac{\partial z_{2,1}}{\partial w_{1,1}} = a_{3,1})") == Verdict::Pass);
  CHECK(verdict(seed(), R"(\frac{\partial z_{2,1}}{\partial w_{1,1}} = a_{1,3})") == Verdict::Fail);
  // The general formula of a stride-2 convolution holds for every filter tap; with the
  // stride written as 1 it fails, each wrong window named.
  const std::string stride2 =
      R"(\frac{\partial L}{\partial w_{m,n}} = \sum_{i,j} \frac{\partial L}{\partial z_{i,j}} a_{2(i-1)+m,\,2(j-1)+n})";
  const std::string stride1 =
      R"(\frac{\partial L}{\partial w_{m,n}} = \sum_{i,j} \frac{\partial L}{\partial z_{i,j}} a_{i-1+m,\,j-1+n})";
  CHECK(verdict(seed(), stride2) == Verdict::Pass);
  const Report r = check_formula(seed(), stride1);
  INFO(r.text());
  REQUIRE(r.verdict == Verdict::Fail);
  CHECK_THAT(first_line(r), Catch::Contains("wrong index: write a3 for a2"));
}
