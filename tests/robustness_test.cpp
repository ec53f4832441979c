// SPDX-License-Identifier: MIT
// Corrupt input: bad models and formulas give a clear gradpath::Error, never a crash,
// a stack overflow or unbounded memory.
#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "autodiff/tensor.hpp"
#include "check/checker.hpp"
#include "check/formula.hpp"
#include "cli/model.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;
using Catch::Contains;

namespace {

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

// A valid model around one input `a` described by `spec`.
std::string model_with_input(const std::string& spec) {
  return R"({"inputs": {"a": )" + spec + R"(}, "graph": [{"op": "sum", "in": ["a"], "out": "L"}], "loss": "L"})";
}

// A build for the checker: L = w * x.
void tiny_build(Tape& tape) {
  Var w = tape.param(0.5, "w");
  Var x = tape.input(2.0, "x");
  (w * x).named("L");
}

}  // namespace

// ---- models --------------------------------------------------------------------------

TEST_CASE("robustness: a model with a huge shape is refused before allocating", "[robustness][model]") {
  CHECK_THROWS_WITH(
      cli::Model::parse(model_with_input(R"({"shape": [100000, 100000, 100000], "values": [1]})"), "m.json"),
      Contains("m.json: inputs.a") && Contains("shape [100000] times 100000 has more than"));
  CHECK_THROWS_WITH(
      cli::Model::parse(model_with_input(R"({"shape": [18446744073709551615], "values": [1]})"), "m.json"),
      Contains("m.json: inputs.a") && Contains("shape"));
  CHECK_THROWS_WITH(cli::Model::parse(model_with_input(R"({"shape": [1, 1, 1, 1, 1, 1, 1], "values": [1]})"), "m.json"),
                    Contains("m.json: inputs.a") && Contains("rank above 6"));
}

TEST_CASE("robustness: negative and non-integer sizes are refused", "[robustness][model]") {
  CHECK_THROWS_WITH(cli::Model::parse(model_with_input(R"({"shape": [2, -3], "values": [1]})"), "m.json"),
                    Contains("m.json: inputs.a") && Contains("non-negative integers, got -3"));
  CHECK_THROWS_WITH(cli::Model::parse(model_with_input(R"({"shape": [2.5], "values": [1, 2]})"), "m.json"),
                    Contains("m.json: inputs.a") && Contains("got 2.5"));
  CHECK_THROWS_WITH(cli::Model::parse(model_with_input(R"({"shape": [0], "values": []})"), "m.json"),
                    Contains("m.json: inputs.a") && Contains("empty tensor of shape [0]"));
}

TEST_CASE("robustness: NaN and non-numeric values are refused", "[robustness][model]") {
  // JSON has no NaN literal: the parser refuses it with a located message
  CHECK_THROWS_WITH(cli::Model::parse(model_with_input(R"({"shape": [2], "values": [1, NaN]})"), "m.json"),
                    Contains("m.json: malformed JSON") && Contains("line 1"));
  CHECK_THROWS_WITH(cli::Model::parse(model_with_input(R"({"shape": [2], "values": [1, "nan"]})"), "m.json"),
                    Contains("m.json: inputs.a") && Contains("values must be numbers"));
  CHECK_THROWS_WITH(cli::Model::parse(model_with_input(R"({"shape": [1], "values": [1e999]})"), "m.json"),
                    Contains("m.json: malformed JSON"));
}

TEST_CASE("robustness: deeply nested JSON is refused without overflowing the stack", "[robustness][model]") {
  constexpr std::size_t depth = 100000;
  SECTION("nested arrays as a whole document") {
    const std::string doc = repeat("[", depth) + repeat("]", depth);
    CHECK_THROWS_AS(cli::Model::parse(doc, "deep.json"), cli::ModelError);
  }
  SECTION("nested arrays where a shape is expected") {
    const std::string spec = R"({"shape": )" + repeat("[", depth) + repeat("]", depth) + R"(, "values": [1]})";
    CHECK_THROWS_WITH(cli::Model::parse(model_with_input(spec), "deep.json"),
                      "deep.json: malformed JSON: arrays and objects nest deeper than 64 levels at line 1, column 89");
  }
  SECTION("nested arrays where a value is expected") {
    const std::string spec = R"({"shape": [1], "values": [)" + repeat("[", depth) + repeat("]", depth) + "]}";
    CHECK_THROWS_WITH(cli::Model::parse(model_with_input(spec), "deep.json"),
                      Contains("deep.json: malformed JSON: arrays and objects nest deeper than 64 levels"));
  }
  SECTION("brackets inside strings do not count") {
    const std::string spec = R"({"shape": [1], "values": [")" + repeat("[", depth) + R"("]})";
    CHECK_THROWS_WITH(cli::Model::parse(model_with_input(spec), "deep.json"),
                      Contains("deep.json: inputs.a") && Contains("values must be numbers"));
  }
  SECTION("unclosed nesting") {
    CHECK_THROWS_WITH(cli::Model::parse(repeat("{\"a\":", depth), "deep.json"), Contains("deep.json: malformed JSON"));
  }
}

TEST_CASE("robustness: a model's error message stays short", "[robustness][model]") {
  // a huge bad value is not echoed whole into the message
  const std::string spec = R"({"shape": [1], "values": [")" + std::string(1 << 20, 'x') + R"("]})";
  try {
    cli::Model::parse(model_with_input(spec), "big.json");
    FAIL("no error");
  } catch (const cli::ModelError& e) {
    CHECK_THAT(e.what(), Contains("big.json: inputs.a") && Contains("values must be numbers"));
    CHECK(std::string(e.what()).size() < 1000);
  }
}

TEST_CASE("robustness: Unicode names in a model are refused, not mangled", "[robustness][model]") {
  const std::string doc = R"({"inputs": {"α": {"shape": [1], "values": [1]}}, "graph": [], "loss": "α"})";
  CHECK_THROWS_WITH(cli::Model::parse(doc, "u.json"), Contains("u.json: inputs.α") && Contains("a name must be"));
}

// ---- formulas ------------------------------------------------------------------------

TEST_CASE("robustness: a formula nested 100,000 deep is refused with a located message", "[robustness][formula]") {
  constexpr std::size_t depth = 100000;
  const auto refuses = [](const std::string& text) {
    CHECK_THROWS_WITH(check::parse_formula(text), Contains("line 1, column ") && Contains("nested too deeply"));
  };
  refuses("L = " + repeat("(", depth) + "x" + repeat(")", depth));
  refuses("L = " + repeat("\\left[", depth) + "x" + repeat("\\right]", depth));
  refuses("L = " + repeat("\\frac{", depth) + "x" + repeat("}{2}", depth));
  refuses("L = " + repeat("{", depth) + "x" + repeat("}", depth));
  refuses("L = " + repeat("-", depth) + "x");
  refuses("L = x" + repeat("^x", depth));
  refuses("L = " + repeat("exp ", depth) + "x");
  refuses(repeat("(", depth));  // unclosed, on the left side
}

TEST_CASE("robustness: moderately nested formulas still parse", "[robustness][formula]") {
  constexpr std::size_t depth = 50;
  const check::Formula f = check::parse_formula("L = " + repeat("(", depth) + "x" + repeat(")", depth));
  CHECK(f.rhs.kind == check::ExprKind::Name);
  CHECK(f.rhs.name == "x");
  const check::Formula g = check::parse_formula("L = " + repeat("\\frac{", 20) + "x" + repeat("}{2}", 20));
  CHECK(g.rhs.kind == check::ExprKind::Quotient);
}

TEST_CASE("robustness: a deep formula through the checker is an error report", "[robustness][formula]") {
  const std::string text = "L = " + repeat("(", 100000) + "w x" + repeat(")", 100000);
  const check::Report r = check::check_formula(tiny_build, text);
  CHECK(r.verdict == check::Verdict::Error);
  CHECK_THAT(r.error, Contains("nested too deeply"));
  CHECK(r.error.size() < 1000);  // the 200,000-character line is not echoed whole
}

TEST_CASE("robustness: a megabyte of garbage is a list of error reports", "[robustness][formula]") {
  std::mt19937_64 rng(42);
  std::string garbage(1 << 20, ' ');
  for (char& c : garbage) c = static_cast<char>(rng() % 256);
  const std::vector<check::Report> reports = check::check_text(tiny_build, garbage);
  REQUIRE_FALSE(reports.empty());
  std::size_t longest = 0;
  for (const check::Report& r : reports) {
    CHECK(r.verdict == check::Verdict::Error);
    longest = std::max(longest, r.error.size());
  }
  CHECK(longest < 1000);
}

TEST_CASE("robustness: empty formulas and formulas with one side missing", "[robustness][formula]") {
  CHECK_THROWS_WITH(check::parse_formula(""), Contains("line 1, column 1") && Contains("expected"));
  CHECK_THROWS_WITH(check::parse_formula("   "), Contains("line 1, column") && Contains("expected an expression"));
  CHECK_THROWS_WITH(check::parse_formula("= x"), Contains("the left side is empty"));
  CHECK_THROWS_WITH(check::parse_formula("L ="), Contains("the right side is empty"));
  CHECK(check::split_formulas("").empty());
  CHECK(check::split_formulas("% only a comment\n\n").empty());
  CHECK_THROWS_WITH(check::check_text(tiny_build, ""), Contains("holds no formula"));
  CHECK_THROWS_WITH(check::check_text(tiny_build, "% only a comment\n"), Contains("holds no formula"));
}

TEST_CASE("robustness: Unicode names and stray bytes in formulas", "[robustness][formula]") {
  // a character the language does not have is named with its column (Greek letters are
  // names: δ_k)
  CHECK_THROWS_WITH(check::parse_formula("L = ж x"),
                    Contains("line 1, column 5") && Contains("unexpected character 'ж'"));
  CHECK(check::parse_formula("L = α x").rhs.args[0].name == "alpha");
  // columns count code points: the error after two ∂-derivatives is at column 15
  CHECK_THROWS_WITH(check::parse_formula("∂L/∂w = x ∂L/∂"), Contains("line 1, column 15"));
  // invalid UTF-8 is reported, not decoded past the end
  CHECK_THROWS_WITH(check::parse_formula("L = x \xC3"), Contains("line 1, column 7"));
  CHECK_THROWS_WITH(check::parse_formula("L = \xF0\x9F"), Contains("line 1, column 5"));
  const check::Report r = check::check_formula(tiny_build, "∂L/∂w = x");
  CHECK(r.verdict == check::Verdict::Pass);
}
