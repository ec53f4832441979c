// SPDX-License-Identifier: MIT
// The derivation checker on the seed note's network: correct formulas pass at every draw,
// the note's mistakes and random mutants fail with the wrong term named, errors are located.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "autodiff/tensor.hpp"
#include "check/checker.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;
using namespace gradpath::check;

namespace {

// 1-based index of the input under filter tap i (1..9) for output k (1..4) of the note's
// stride-2 convolution: output k's window starts at a1, a3, a11, a13.
int input_under_tap(int k, int i) {
  return (2 * ((k - 1) / 2) + (i - 1) / 3) * 5 + 2 * ((k - 1) % 2) + (i - 1) % 3 + 1;
}

// The note's network from scalars: a1..a25, w1..w9, z1..z4 (one sum node of nine products
// each, or with `statement` one dot product node each), y = v·z + b, L = (y - t)^2 / 2.
template <bool statement>
void build_seed_as(Tape& tape) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> image(25), filter(9), dense(4);
  for (auto& x : image) x = uniform(rng);
  for (auto& x : filter) x = uniform(rng);
  for (auto& x : dense) x = uniform(rng);
  TensorVar a = tape.input(image, Shape{5, 5}, "a");
  TensorVar w = tape.param(filter, Shape{3, 3}, "w");
  TensorVar v = tape.param(dense, Shape{4}, "v");
  Var b = tape.param(uniform(rng), "b");
  Var t = tape.input(uniform(rng), "t");
  std::vector<Var> z;
  for (int k = 1; k <= 4; ++k) {
    std::vector<Var> window, products;
    for (int i = 1; i <= 9; ++i) window.push_back(a[input_under_tap(k, i) - 1]);
    if (!statement) {
      for (int i = 1; i <= 9; ++i) products.push_back(w[i - 1] * window[i - 1]);
    }
    z.push_back((statement ? dot(w.elements(), window) : sum(products)).named("z" + std::to_string(k)));
  }
  Var y = sum({v[0] * z[0], v[1] * z[1], v[2] * z[2], v[3] * z[3], b}).named("y");
  (pow(y - t, 2.0) * 0.5).named("L");
}
void build_seed(Tape& tape) { build_seed_as<false>(tape); }
// The builders of the same network, products as nodes and as one dot product per output.
const std::vector<std::pair<const char*, void (*)(Tape&)>> seed_builders{{"products", &build_seed_as<false>},
                                                                         {"dot", &build_seed_as<true>}};

enum class Spelling { Ascii, Latex, Unicode };

std::string name(char base, int index, Spelling s) {
  if (s == Spelling::Latex) return std::string(1, base) + "_{" + std::to_string(index) + "}";
  return std::string(1, base) + std::to_string(index);
}
std::string derivative(const std::string& of, const std::string& wrt, Spelling s) {
  switch (s) {
    case Spelling::Ascii:
      return "d" + of + "/d" + wrt;
    case Spelling::Latex:
      return "\\frac{\\partial " + of + "}{\\partial " + wrt + "}";
    case Spelling::Unicode:
      return "∂" + of + "/∂" + wrt;
  }
  return "";
}

// dL/dw_i = sum over the terms (k, j): a_j dL/dz_k, in the given order.
std::string cut_formula(int i, const std::vector<std::pair<int, int>>& terms, Spelling s) {
  const std::string times = s == Spelling::Ascii ? "*" : s == Spelling::Latex ? " \\cdot " : "·";
  std::string f = derivative("L", name('w', i, s), s) + " = ";
  for (std::size_t n = 0; n < terms.size(); ++n) {
    f += (n ? " + " : "") + name('a', terms[n].second, s) + times + derivative("L", name('z', terms[n].first, s), s);
  }
  return f;
}
std::vector<std::pair<int, int>> true_terms(int i) {
  std::vector<std::pair<int, int>> terms;
  for (int k = 1; k <= 4; ++k) terms.emplace_back(k, input_under_tap(k, i));
  return terms;
}

std::filesystem::path note_file() {
  return std::filesystem::path(GRADPATH_SOURCE_DIR) / "examples" / "seed_note_formulas.tex";
}

}  // namespace

TEST_CASE("checker: the window rule itself (a hand check of the helper)", "[check]") {
  CHECK(input_under_tap(1, 1) == 1);
  CHECK(input_under_tap(2, 1) == 3);
  CHECK(input_under_tap(3, 1) == 11);
  CHECK(input_under_tap(4, 1) == 13);
  CHECK(input_under_tap(4, 9) == 25);
  CHECK(input_under_tap(2, 5) == 9);
}

TEST_CASE("checker: the nine correct dL/dw_i pass at every draw, in every spelling", "[check][cut]") {
  for (const auto& [builder_name, builder] : seed_builders) {
    INFO(builder_name);
    for (Spelling s : {Spelling::Ascii, Spelling::Latex, Spelling::Unicode}) {
      for (int i = 1; i <= 9; ++i) {
        const std::string formula = cut_formula(i, true_terms(i), s);
        INFO(formula);
        const Report r = check_formula(builder, formula);
        INFO(r.text());
        CHECK(r.verdict == Verdict::Pass);
        CHECK(r.form == Form::Cut);
        CHECK(r.findings.empty());
        CHECK(r.draws == 6);
      }
    }
  }
}

TEST_CASE("checker: the note's dL/dw1 with a13 for dL/dz2 fails at term 2 with the path reason", "[check][cut]") {
  const auto [builder_name, builder] = GENERATE(from_range(seed_builders));
  INFO(builder_name);
  const Report r = check_formula(
      builder,
      R"($$\frac{\partial L}{\partial w_1} = a_1 \frac{\partial L}{\partial z_1} + a_{13} \frac{\partial L}{\partial z_2} + a_{11} \frac{\partial L}{\partial z_3} + a_{13} \frac{\partial L}{\partial z_4}$$)");
  INFO(r.text());
  CHECK(r.verdict == Verdict::Fail);
  CHECK(r.form == Form::Cut);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].kind == FindingKind::WrongTerm);
  CHECK(r.findings[0].term == 2);
  CHECK(r.findings[0].message ==
        "term 2: wrong index: write a3 for a13: ∂z2/∂w1 is a3 (z2 = w1·a3 + w2·a4 + …), the formula has a13");
  CHECK_THAT(r.text(), Catch::Contains("fail (cut form") && Catch::Contains("1e-12") && Catch::Contains("1e-09"));
  const nlohmann::json j = r.json();
  CHECK(j["verdict"] == "fail");
  CHECK(j["form"] == "cut");
  CHECK(j["findings"][0]["term"] == 2);
  CHECK(j["findings"][0]["kind"] == "wrong term");
}

TEST_CASE("checker: the note's file, formula by formula", "[check][note]") {
  const std::vector<Report> reports = check_file(build_seed, note_file());
  INFO(text(reports));
  REQUIRE(reports.size() == 27);
  auto find = [&](std::string_view start) -> const Report& {
    auto it =
        std::find_if(reports.begin(), reports.end(), [&](const Report& r) { return r.formula.starts_with(start); });
    REQUIRE(it != reports.end());
    return *it;
  };
  auto messages = [](const Report& r) {
    std::string all;
    for (const Finding& f : r.findings) all += f.message + "\n";
    return all;
  };
  for (const Report& r : reports) CHECK(r.verdict != Verdict::Error);
  SECTION("the update rule holds for one step at the file's α") {
    CHECK(find("w_i^* = w_i - \\alpha").verdict == Verdict::Pass);
  }
  SECTION("the conv outputs: Z_2 starts at a1 instead of a3") {
    const Report& z2 = find("Z_2 = w_1 a_1 + w_2 a_3");
    CHECK(z2.verdict == Verdict::Fail);
    CHECK(z2.form == Form::Expansion);
    CHECK_THAT(messages(z2), Catch::Contains("term 1: z2 has w1·a3, the formula has w1·a1") &&
                                 Catch::Contains("term 2: z2 has w2·a4, the formula has w2·a3"));
    for (const char* ok : {"Z_1 = w_1 a_1 + w_2 a_2 + w_3", "Z_3 = w_1 a_{11} + w_2 a_{12} + w_3",
                           "Z_4 = w_1 a_{13} + w_2 a_{14} + w_3"}) {
      CHECK(find(ok).verdict == Verdict::Partial);
      CHECK_THAT(messages(find(ok)), Catch::Contains("not written (the ellipsis): 4 terms"));
    }
  }
  SECTION("the aligned chain-rule block and its w1 instance are right") {
    const Report& aligned = find("\\frac{\\partial L}{\\partial w_1} &=");
    CHECK(aligned.verdict == Verdict::Pass);
    CHECK(aligned.form == Form::Cut);
    CHECK(aligned.line == 20);
    CHECK(find("\\frac{\\partial L}{\\partial w_1} = \\frac{\\partial z_1}").verdict == Verdict::Pass);
  }
  SECTION("the note's general formula holds for every w_i") {
    const Report& general = find("\\frac{\\partial L}{\\partial w_i} = \\frac{\\partial z_1}");
    CHECK(general.verdict == Verdict::Pass);
    CHECK(general.form == Form::Cut);
  }
  SECTION("the w1 expansions and derivatives") {
    CHECK_THAT(messages(find("z_1 = w_1 a_1 + w_2 a_2 + \\dots + w_9 a_9")),
               Catch::Contains("term 3: z1 has w9·a13, the formula has w9·a9"));
    CHECK(find("\\frac{\\partial z_1}{\\partial w_1} = a_1").verdict == Verdict::Pass);
    const Report& dz2 = find("\\frac{\\partial z_2}{\\partial w_1} = a_{13}");
    CHECK(dz2.verdict == Verdict::Fail);
    CHECK(dz2.form == Form::Derivative);
    CHECK_THAT(messages(dz2), Catch::Contains("∂z2/∂w1 is a3 (z2 = w1·a3 + w2·a4 + …), the formula has a13"));
    CHECK(find("\\frac{\\partial z_3}{\\partial w_1} = a_{11}").verdict == Verdict::Pass);
    CHECK(find("\\frac{\\partial z_4}{\\partial w_1} = a_{13}").verdict == Verdict::Pass);
    CHECK_THAT(messages(find("z_2 = w_1 a_{13}")), Catch::Contains("term 1: z2 has w1·a3, the formula has w1·a13"));
    CHECK_THAT(messages(find("z_3 = w_1 a_{11}")), Catch::Contains("term 3: z3 has w9·a23, the formula has w9·a13"));
    CHECK_THAT(messages(find("z_4 = w_1 a_{13}")), Catch::Contains("term 3: z4 has w9·a25, the formula has w9·a15"));
  }
  SECTION("the final formulas for w1, w2, w9") {
    const Report& w1 = find("\\frac{\\partial L}{\\partial w_1} = a_1");
    CHECK(w1.verdict == Verdict::Fail);
    CHECK_THAT(
        messages(w1),
        Catch::Equals(
            "term 2: wrong index: write a3 for a13: ∂z2/∂w1 is a3 (z2 = w1·a3 + w2·a4 + …), the formula has a13\n"));
    CHECK(find("\\frac{\\partial L}{\\partial w_2} = a_2").verdict == Verdict::Pass);
    CHECK(find("\\frac{\\partial L}{\\partial w_9} = a_{13}").verdict == Verdict::Pass);
  }
  SECTION("the w2 expansions: Z_3 starts at a1 instead of a11") {
    CHECK_THAT(messages(find("Z_3 = w_1 a_1 + w_2 a_{12}")),
               Catch::Contains("term 1: z3 has w1·a11, the formula has w1·a1"));
    CHECK(find("Z_2 = w_1 \\times a_3").verdict == Verdict::Partial);
    for (const char* d :
         {"\\frac{\\partial Z_1}{\\partial w_2} = a_2", "\\frac{\\partial Z_2}{\\partial w_2} = a_4",
          "\\frac{\\partial Z_3}{\\partial w_2} = a_{12}", "\\frac{\\partial Z_4}{\\partial w_2} = a_{14}"}) {
      CHECK(find(d).verdict == Verdict::Pass);
    }
  }
  SECTION("the summary counts every verdict") {
    CHECK_THAT(text(reports),
               Catch::EndsWith("27 formulas found, 27 checked: 13 pass, 8 fail, 6 partial, 0 uncovered, 0 error\n"));
    CHECK(json(reports).size() == 27);
  }
}

TEST_CASE("checker: hundreds of one-index mutants are all caught at the changed term", "[check][cut][mutation]") {
  std::mt19937 rng(2024);
  for (int trial = 0; trial < 300; ++trial) {
    const int i = std::uniform_int_distribution<int>(1, 9)(rng);
    std::vector<std::pair<int, int>> terms = true_terms(i);
    std::shuffle(terms.begin(), terms.end(), rng);
    const std::size_t changed = std::uniform_int_distribution<std::size_t>(0, 3)(rng);
    const int right = terms[changed].second;
    int wrong = right;
    while (wrong == right) wrong = std::uniform_int_distribution<int>(1, 25)(rng);
    terms[changed].second = wrong;
    const auto spelling = static_cast<Spelling>(trial % 3);
    const std::string formula = cut_formula(i, terms, spelling);
    const auto& [builder_name, builder] = seed_builders[trial % 2];
    INFO(builder_name);
    const Report r = check_formula(builder, formula);
    INFO(formula);
    INFO(r.text());
    REQUIRE(r.verdict == Verdict::Fail);
    REQUIRE(r.findings.size() == 1);
    CHECK(r.findings[0].kind == FindingKind::WrongTerm);
    CHECK(r.findings[0].mistake == Mistake::WrongIndex);
    CHECK(r.findings[0].term == changed + 1);
    const std::string z = "z" + std::to_string(terms[changed].first);
    CHECK_THAT(r.findings[0].message,
               Catch::StartsWith("term " + std::to_string(changed + 1) + ": wrong index: write a" +
                                 std::to_string(right) + " for a" + std::to_string(wrong) + ": ∂" + z + "/∂w" +
                                 std::to_string(i) + " is a" + std::to_string(right) + " (" + z + " = ") &&
                   Catch::EndsWith("the formula has a" + std::to_string(wrong)));
  }
}

TEST_CASE("checker: ASCII, LaTeX and Unicode forms of one formula give the same report", "[check]") {
  const std::vector<std::pair<int, int>> wrong = {{1, 1}, {2, 13}, {3, 11}, {4, 13}};
  for (const auto& terms : {true_terms(1), wrong, true_terms(5)}) {
    const int i = terms == true_terms(5) ? 5 : 1;
    const Report ascii = check_formula(build_seed, cut_formula(i, terms, Spelling::Ascii));
    for (Spelling s : {Spelling::Latex, Spelling::Unicode}) {
      const Report other = check_formula(build_seed, cut_formula(i, terms, s));
      CHECK(other.verdict == ascii.verdict);
      REQUIRE(other.findings.size() == ascii.findings.size());
      for (std::size_t n = 0; n < ascii.findings.size(); ++n)
        CHECK(other.findings[n].message == ascii.findings[n].message);
    }
  }
}

TEST_CASE("checker: missing, extra and duplicated terms and sets that are no cut", "[check][cut]") {
  auto findings = [](std::string_view formula) {
    const Report r = check_formula(build_seed, formula);
    std::string all;
    for (const Finding& f : r.findings) all += f.message + "\n";
    return std::pair{r.verdict, all};
  };
  SECTION("a missing term is named with its coefficient from the graph") {
    const auto [verdict, text] = findings("dL/dw1 = a1*dL/dz1 + a3*dL/dz2 + a11*dL/dz3");
    CHECK(verdict == Verdict::Fail);
    CHECK(text == "missing path through z4: add a13·∂L/∂z4\n");
  }
  SECTION("with an ellipsis the same terms are only not written") {
    const auto [verdict, text] = findings("dL/dw1 = a1*dL/dz1 + …");
    CHECK(verdict == Verdict::Partial);
    CHECK(text == "not written (the ellipsis): 3 terms: a3·∂L/∂z2 + a11·∂L/∂z3 + a13·∂L/∂z4\n");
  }
  SECTION("an ellipsis does not excuse a wrong written term") {
    const auto [verdict, text] = findings("dL/dw1 = a1*dL/dz1 + a4*dL/dz2 + ...");
    CHECK(verdict == Verdict::Fail);
    CHECK_THAT(text, Catch::Contains("term 2: wrong index: write a3 for a4: ∂z2/∂w1 is a3"));
  }
  SECTION("a duplicated cut node") {
    const auto [verdict, text] = findings("dL/dw1 = a1*dL/dz1 + a3*dL/dz2 + a11*dL/dz3 + a13*dL/dz4 + 0*dL/dz1");
    CHECK(verdict == Verdict::Fail);
    CHECK(text == "term 5: extra term: ∂L/∂z1 already appears in term 1 (a cut crosses each path once)\n");
  }
  SECTION("a node no path from w reaches") {
    const auto [verdict, text] = findings("dL/dw1 = a1*dL/dz1 + a3*dL/dz2 + a11*dL/dz3 + a13*dL/dz4 + a5*dL/dt");
    CHECK(verdict == Verdict::Fail);
    CHECK(text == "term 5: extra term: no path leads from w1 to t, so ∂t/∂w1 = 0\n");
  }
  SECTION("two cut nodes on one path") {
    const auto [verdict, text] = findings("dL/dw1 = a1*dL/dz1 + a3*dL/dz2 + a11*dL/dz3 + a13*dL/dz4 + a1*v1*dL/dy");
    CHECK(verdict == Verdict::Fail);
    CHECK_THAT(text, Catch::Contains("not a cut: z1 and y lie on one path from w1 to L (z1 → … → y)"));
    CHECK_THAT(text, Catch::Contains("term 5: ∂y/∂w1 is a1·v1 + a3·v2 + a11·v3 + a13·v4"));
  }
  SECTION("an unnamed path around the named nodes") {
    auto build = [](Tape& tape) {
      Var w = tape.input(0.3, "w"), c = tape.input(1.7, "c");
      Var z = (w * c).named("z");
      (z * z + sin(w)).named("L");
    };
    const Report r = check_formula(build, "dL/dw = c*dL/dz");
    INFO(r.text());
    CHECK(r.verdict == Verdict::Fail);
    REQUIRE(r.findings.size() == 1);
    CHECK(r.findings[0].kind == FindingKind::NotACut);
    CHECK(r.findings[0].message == "not a cut: w → sin → L avoids every node the formula names");
  }
  SECTION("a chain through y: the coefficient is checked against the cut node the chain reaches") {
    const auto [verdict, text] = findings(
        "dL/dw1 = dz1/dw1*[dy/dz2*dL/dy] + dz2/dw1*[dy/dz2*dL/dy] + dz3/dw1*dy/dz3*dL/dy + dz4/dw1*dy/dz4*dL/dy");
    CHECK(verdict == Verdict::Fail);
    // Two terms reach z2 through y: a sum over paths, compared as a whole, and term 1's dy/dz2 named.
    CHECK_THAT(text, Catch::StartsWith("term 1: wrong index: write z1 for z2. the left side ∂L/∂w1 is "));
  }
  SECTION("a wrong => claim") {
    const auto [verdict, text] =
        findings("dL/dw1 = dz1/dw1*[dy/dz1*dL/dy] => dL/dz2 + dz2/dw1*dL/dz2 + dz3/dw1*dL/dz3 + dz4/dw1*dL/dz4");
    CHECK(verdict == Verdict::Fail);
    CHECK_THAT(text, Catch::StartsWith("∂y/∂z1·∂L/∂y ⇒ ∂L/∂z2 does not hold:"));
  }
}

TEST_CASE("checker: expansions of a sum node and plain equations", "[check][expansion]") {
  SECTION("swapped products are named with the right ones") {
    const Report r = check_formula(build_seed, "y = v1*z1 + v2*z2 + v3*z4 + v4*z3 + b");
    REQUIRE(r.findings.size() == 2);
    CHECK(r.form == Form::Expansion);
    CHECK(r.findings[0].message == "term 3: y has v3·z3, the formula has v3·z4");
    CHECK(r.findings[1].message == "term 4: y has v4·z4, the formula has v4·z3");
  }
  SECTION("missing and extra products") {
    const Report r = check_formula(build_seed, "y = z1*v1 + v2*z2 + v3*z3 + t");
    CHECK(r.verdict == Verdict::Fail);
    REQUIRE(r.findings.size() == 3);
    CHECK(r.findings[0].message == "term 4: extra term: y has no operand t");
    CHECK(r.findings[1].message == "missing term: v4·z4");
    CHECK(r.findings[2].message == "missing term: b");
  }
  SECTION("a sum of products and a dot product expand alike, term by term") {
    for (const auto& [builder_name, builder] : seed_builders) {
      INFO(builder_name);
      CHECK(check_formula(builder, "z2 = w1 a3 + w2 a4 + w3 a5 + w4 a8 + w5 a9 + w6 a10 + w7 a13 + w8 a14 + w9 a15")
                .verdict == Verdict::Pass);
      CHECK(check_formula(builder, "z2 = w9 a15 + a14 w8 + w1 a3 + …").verdict == Verdict::Partial);
      const Report r =
          check_formula(builder, "z2 = w1 a3 + w2 a4 + w3 a5 + w4 a8 + w5 a9 + w6 a11 + w7 a13 + w8 a14 + w9 a15");
      CHECK(r.form == Form::Expansion);
      CHECK(r.verdict == Verdict::Fail);
      REQUIRE(r.findings.size() == 1);
      CHECK(r.findings[0].message == "term 6: z2 has w6·a10, the formula has w6·a11");
      const Report missing = check_formula(builder, "z2 = w1 a3 + w2 a4");
      CHECK(missing.verdict == Verdict::Fail);
      CHECK(missing.findings.size() == 7);
    }
  }
  SECTION("a right expansion in any order passes") {
    CHECK(check_formula(build_seed, "y = b + v4 z4 + z3 v3 + v2 z2 + v1 z1").verdict == Verdict::Pass);
  }
  SECTION("an equation passes or shows both sides at the first draw that differs") {
    CHECK(check_formula(build_seed, "L = 0.5*(y - t)^2").verdict == Verdict::Pass);
    const Report r = check_formula(build_seed, "L = (y - t)^2");
    CHECK(r.verdict == Verdict::Fail);
    CHECK(r.form == Form::Equation);
    REQUIRE(r.findings.size() == 1);
    CHECK_THAT(r.findings[0].message,
               Catch::StartsWith("off by a constant factor: it is 2 times the right value. the left side L is ") &&
                   Catch::EndsWith("at the current point"));
  }
  SECTION("an ellipsis outside a cut or an expansion is an error, never plain equality") {
    const Report r = check_formula(build_seed, "L = 0.5*y^2 + …");
    CHECK(r.verdict == Verdict::Error);
    CHECK_THAT(r.error, Catch::Contains("cannot be checked"));
  }
}

TEST_CASE("checker: a formula true only at the current point fails on a redraw", "[check][coincidence]") {
  // s is 1 and u is 0 at the current point, so f = s*x + u looks like x there.
  auto build = [](Tape& tape) {
    Var s = tape.input(1.0, "s"), x = tape.input(0.7, "x"), u = tape.input(0.0, "u");
    (s * x + u).named("f");
  };
  CheckOptions one_point;
  one_point.redraws = 0;
  CHECK(check_formula(build, "f = x", one_point).verdict == Verdict::Pass);
  CHECK(check_formula(build, "df/dx = 1", one_point).verdict == Verdict::Pass);
  const Report value = check_formula(build, "f = x");
  CHECK(value.verdict == Verdict::Fail);
  REQUIRE(value.findings.size() == 1);
  CHECK_THAT(value.findings[0].message, Catch::EndsWith("at redraw 1 (there f = 1.37686, x = 0.983738)"));
  const Report slope = check_formula(build, "df/dx = 1");
  CHECK(slope.verdict == Verdict::Fail);
  REQUIRE(slope.findings.size() == 1);
  CHECK_THAT(slope.findings[0].message, Catch::StartsWith("∂f/∂x is s (f = s·x + u), the formula has 1 (there "));
}

TEST_CASE("checker: names resolve case-insensitively only when unambiguous", "[check][names]") {
  CHECK(check_formula(build_seed, "dL/dW_1 = A_1 dL/dZ_1 + a_3 dL/dz_2 + a_{11} dL/dz_3 + a_{13} dL/dz_4").verdict ==
        Verdict::Pass);
  const Report unknown = check_formula(build_seed, "dL/dw1 = a33*dL/dz1 + …");
  CHECK(unknown.verdict == Verdict::Error);
  CHECK(unknown.error ==
        "line 1, column 10: unknown name 'a33'; the nearest node names are a3, a13, a23\n"
        "  dL/dw1 = a33*dL/dz1 + …\n"
        "           ^");
  auto build = [](Tape& tape) {
    tape.input(1.0, "Ab");
    tape.input(2.0, "aB");
  };
  const Report ambiguous = check_formula(build, "ab = 1");
  CHECK(ambiguous.verdict == Verdict::Error);
  CHECK_THAT(ambiguous.error, Catch::Contains("the name 'ab' is ambiguous: it could be Ab (node 0), aB (node 1)"));
  CHECK(check_formula(build, "Ab + aB = aB + Ab").verdict == Verdict::Pass);
}

TEST_CASE("checker: parse errors become error reports; a bad build is an Error", "[check][errors]") {
  const Report parse = check_formula(build_seed, "dL/dw1 = a1 + ");
  CHECK(parse.verdict == Verdict::Error);
  CHECK(parse.form == Form::Unknown);
  CHECK_THAT(parse.text(), Catch::Contains("error: line 1, column 14: expected an expression after '+'"));
  CHECK(parse.json()["error"].get<std::string>() == parse.error);

  int calls = 0;
  auto growing = [&calls](Tape& tape) {
    Var x = tape.input(1.0, "x");
    for (int n = 0; n <= calls; ++n) x = x * 2.0;
    x.named("f");
    ++calls;
  };
  CHECK_THROWS_WITH(check_formula(growing, "f = 2*x"),
                    Catch::Contains("the build recorded 2 nodes at the current point but 3 at redraw 1"));
  const BuildFn broken = [](Tape& tape) { tape.input(std::vector<double>{1.0}, Shape{2}, "x"); };
  CHECK_THROWS_WITH(check_text(broken, "x1 = 1"), Catch::Contains("1 values for shape [2]"));

  CheckOptions bad;
  bad.redraws = -1;
  CHECK_THROWS_WITH(check_formula(build_seed, "L = L", bad), Catch::Contains("redraws must be >= 0, got -1"));
  CHECK_THROWS_WITH(check_file(build_seed, "/nonexistent/formulas.tex"),
                    Catch::Contains("check: cannot read '/nonexistent/formulas.tex'"));
  CHECK_THROWS_WITH(check_file(build_seed, std::filesystem::temp_directory_path()),
                    Catch::Contains("is a directory, not a formula file"));
}

TEST_CASE("checker: a plain text file holds one formula per line", "[check]") {
  const std::vector<Report> reports =
      check_text(build_seed, "# the seed, in ASCII\ndz2/dw1 = a3\n\ndz2/dw1 = a13\nz2 = w1*a3 + …\n");
  REQUIRE(reports.size() == 3);
  CHECK(reports[0].line == 2);
  CHECK(reports[0].verdict == Verdict::Pass);
  CHECK(reports[1].line == 4);
  CHECK(reports[1].verdict == Verdict::Fail);
  CHECK(reports[2].verdict == Verdict::Partial);
}
