// SPDX-License-Identifier: MIT
// The table's functions outside the ops: the JSON model format loads each one, the
// formula language reads each one and its prime, and the checker tells a right
// derivation through softplus, leaky_relu and gelu from a wrong one.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "autodiff/functions.hpp"
#include "check/checker.hpp"
#include "check/formula.hpp"
#include "cli/model.hpp"
#include "graph/symbolic.hpp"

using namespace gradpath;
using namespace gradpath::check;
using Catch::Matchers::Contains;

namespace {

// x [1,3] -> dense W (3x3), b -> z -> <op> -> h -> dense v (3x1) -> y -> L = (y - t)^2 / 2.
// At the point z = (0.35, -0.45, 0.3): the kinked functions are on both sides of zero.
std::string model_json(const std::string& op_entry) {
  return R"({
  "inputs": {"x": {"shape": [1, 3], "values": [1.0, 0.5, -0.5]}, "t": {"shape": [], "values": [0.4]}},
  "params": {"W": {"shape": [3, 3], "values": [0.4, 0.2, -0.3, -0.6, 0.3, 0.5, 0.2, -0.4, 0.1]},
             "b": {"shape": [3], "values": [0.1, -0.2, 0.3]},
             "v": {"shape": [3, 1], "values": [0.5, -0.8, 1.1]}},
  "graph": [{"op": "dense", "in": ["x", "W", "b"], "out": "z"}, )" +
         op_entry + R"(,
            {"op": "matmul", "in": ["h", "v"], "out": "y"}, {"op": "half_squared_error", "in": ["y", "t"], "out": "L"}],
  "loss": "L"})";
}

std::string entry(const std::string& op, const std::string& options = "") {
  return R"({"op": ")" + op + R"(", "in": ["z"], "out": "h")" + options + "}";
}

// The values of h after building the model with one function entry.
std::vector<double> h_values(const std::string& op_entry) {
  const cli::Model m = cli::Model::parse(model_json(op_entry), "test.json");
  Tape tape;
  for (const auto& [name, t] : m.build(tape)) {
    if (name == "h") return {t.values().begin(), t.values().end()};
  }
  FAIL("no h");
  return {};
}
std::vector<double> z_values() {
  const cli::Model m = cli::Model::parse(model_json(entry("relu")), "test.json");
  Tape tape;
  for (const auto& [name, t] : m.build(tape)) {
    if (name == "z") return {t.values().begin(), t.values().end()};
  }
  return {};
}

Verdict verdict(const std::string& op_entry, const std::string& formula) {
  const cli::Model m = cli::Model::parse(model_json(op_entry), "test.json");
  const Report r = check_formula([&](Tape& tape) { m.build(tape); }, formula);
  INFO(formula << "\n" << r.text());
  return r.verdict;
}

}  // namespace

TEST_CASE("model format: every table function by name, its parameter as an option", "[functions][model]") {
  const std::vector<double> z = z_values();
  REQUIRE(z.size() == 3);
  CHECK((z[0] > 0 && z[1] < 0));
  for (const FunctionInfo& f : functions) {
    INFO(f.name);
    const std::vector<double> h = h_values(entry(std::string(f.name)));
    for (std::size_t i = 0; i < 3; ++i) {
      const double want = f.value(z[i], f.parameter.fallback);  // log and sqrt of z2 < 0: NaN
      CHECK((std::isnan(want) ? std::isnan(h[i]) : h[i] == Approx(want).epsilon(1e-15)));
    }
  }
  // Closed forms, not the table: a slope of 0.2 and an alpha of 2 where z < 0.
  CHECK(h_values(entry("leaky_relu", R"(, "slope": 0.2)"))[1] == Approx(0.2 * z[1]).epsilon(1e-15));
  CHECK(h_values(entry("leaky_relu"))[1] == Approx(0.01 * z[1]).epsilon(1e-15));
  CHECK(h_values(entry("elu", R"(, "alpha": 2)"))[1] == Approx(2 * (std::exp(z[1]) - 1)).epsilon(1e-14));
  CHECK(h_values(entry("softplus"))[0] == Approx(std::log(1 + std::exp(z[0]))).epsilon(1e-14));
  CHECK(h_values(entry("silu"))[1] == Approx(z[1] / (1 + std::exp(-z[1]))).epsilon(1e-14));
  CHECK(h_values(entry("gelu"))[1] == Approx(0.5 * z[1] * std::erfc(-z[1] / std::sqrt(2.0))).epsilon(1e-14));
  CHECK(h_values(entry("sin"))[2] == Approx(std::sin(z[2])).epsilon(1e-15));
  CHECK(h_values(entry("cos"))[2] == Approx(std::cos(z[2])).epsilon(1e-15));
}

TEST_CASE("model format: max and min of two tensors", "[functions][model]") {
  const std::vector<double> z = z_values();
  const std::string two = R"({"op": "neg", "in": ["z"], "out": "n"}, {"op": "OP", "in": ["z", "n"], "out": "h"})";
  auto with = [&](const std::string& op) {
    std::string e = two;
    e.replace(e.find("OP"), 2, op);
    return h_values(e);
  };
  const std::vector<double> hi = with("max"), lo = with("min");
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(hi[i] == std::abs(z[i]));
    CHECK(lo[i] == -std::abs(z[i]));
  }
}

TEST_CASE("model format: a parameter that is no number is an error naming op and option", "[functions][model]") {
  for (const char* bad : {R"(, "slope": "steep")", R"(, "slope": [0.2])", R"(, "slope": null)"}) {
    INFO(bad);
    CHECK_THROWS_WITH(h_values(entry("leaky_relu", bad)),
                      Contains("leaky_relu") && Contains("option 'slope' must be a number"));
  }
  CHECK_THROWS_WITH(h_values(entry("elu", R"(, "alpha": true)")), Contains("elu") && Contains("option 'alpha'"));
}

TEST_CASE("formula: every table function, its spellings and its prime are read", "[functions][formula]") {
  for (const FunctionInfo& f : functions) {
    INFO(f.name);
    {
      const std::string_view word = f.name;
      const Formula plain = parse_formula("y = " + std::string(word) + "(z1)");
      REQUIRE(plain.rhs.kind == ExprKind::Call);
      CHECK(plain.rhs.name == f.name);
      CHECK(plain.rhs.args.size() == 1);
      const Formula primed = parse_formula("y = " + std::string(word) + "'(z1)");
      REQUIRE(primed.rhs.kind == ExprKind::Call);
      CHECK(primed.rhs.name == std::string(f.name) + "'");
      const Formula unicode = parse_formula("y = " + std::string(word) + "′(z1)");
      CHECK(unicode.rhs.name == std::string(f.name) + "'");
    }
    for (const std::string_view word : f.spellings) {
      INFO(word);
      const Formula e = parse_formula("y = " + std::string(word) + "(z1)");
      REQUIRE(e.rhs.kind == ExprKind::Call);
      CHECK(e.rhs.name == f.name);
    }
    // The symbol of its partial reads back as a formula.
    CHECK_NOTHROW(parse_formula("y = " + f.symbol_at("z1", 0.2)));
  }
  const Formula p = parse_formula("y = leaky_relu(z1, 0.2)");
  REQUIRE(p.rhs.args.size() == 2);
  CHECK(p.rhs.args[1].number == 0.2);
  CHECK(parse_formula("y = elu'(z_1, 1)").rhs.args.size() == 2);
  CHECK(parse_formula(R"(y = \operatorname{softplus}(z_1))").rhs.name == "softplus");
  CHECK(parse_formula(R"(y = \mathrm{GELU}(z_1))").rhs.name == "gelu");
  CHECK(parse_formula("y = gelu_tanh(z1)").rhs.name == "gelu_tanh");
  // A name that only starts like a function stays a name.
  CHECK(parse_formula("y = leaky_relu2").rhs.kind == ExprKind::Name);
  CHECK_THROWS_WITH(parse_formula("y = leaky_relu(z1, 0.2, 3)"), Contains("leaky_relu takes an argument"));
}

TEST_CASE("checker: softplus, leaky_relu and gelu derivations, right and wrong", "[functions][check]") {
  SECTION("softplus: σ(z), not σ′(z)") {
    const std::string m = entry("softplus");
    CHECK(verdict(m, "dL/dz1 = dL/dh1 * sigmoid(z1)") == Verdict::Pass);
    CHECK(verdict(m, "dL/dz2 = dL/dh2 * softplus'(z2)") == Verdict::Pass);
    CHECK(verdict(m, "dL/dz1 = dL/dh1 * sigmoid'(z1)") == Verdict::Fail);
    CHECK(verdict(m, "dL/dz1 = dL/dh1") == Verdict::Fail);
  }
  SECTION("leaky_relu with slope 0.2: the slope matters") {
    const std::string m = entry("leaky_relu", R"(, "slope": 0.2)");
    CHECK(verdict(m, "dL/dz2 = dL/dh2 * leaky_relu'(z2, 0.2)") == Verdict::Pass);
    CHECK(verdict(m, "dL/dz1 = v1 * (y - t) * leaky_relu′(z1, 0.2)") == Verdict::Pass);
    CHECK(verdict(m, "dL/dz2 = dL/dh2 * ([z2 > 0] + 0.2*[z2 <= 0])") == Verdict::Pass);
    CHECK(verdict(m, "dL/dz2 = dL/dh2 * leaky_relu'(z2)") == Verdict::Fail);  // the default slope 0.01
    CHECK(verdict(m, "dL/dz2 = dL/dh2 * [z2 > 0]") == Verdict::Fail);         // relu's derivative
    CHECK(verdict(m, "dL/dz1 = dL/dh1 * leaky_relu'(z1, 0.3)") == Verdict::Fail);
  }
  SECTION("gelu: Φ(z) + z φ(z)") {
    const std::string m = entry("gelu");
    CHECK(verdict(m, "dL/dz3 = dL/dh3 * gelu'(z3)") == Verdict::Pass);
    CHECK(verdict(m, "dL/dz3 = dL/dh3 * (gelu(z3)/z3 + z3*exp(-z3^2/2)/sqrt(2*3.141592653589793))") == Verdict::Pass);
    CHECK(verdict(m, "dL/dz3 = dL/dh3 * sigmoid(z3)") == Verdict::Fail);
    CHECK(verdict(m, "dL/dz3 = dL/dh3 * gelu(z3)") == Verdict::Fail);
  }
}

TEST_CASE("symbolic: a tensor function's partial is its symbol at the input, parameter included", "[functions]") {
  const cli::Model m = cli::Model::parse(model_json(entry("leaky_relu", R"(, "slope": 0.2)")), "test.json");
  Tape tape;
  Slot z1 = 0, h1 = 0;
  for (const auto& [name, t] : m.build(tape)) {
    if (name == "z") z1 = t.offset();
    if (name == "h") h1 = t.offset();
  }
  const std::optional<graph::SymbolicSum> d = graph::symbolic_derivative(tape, h1, z1);
  REQUIRE(d.has_value());
  CHECK(d->text() == "leaky_relu′(z1, 0.2)");
}
