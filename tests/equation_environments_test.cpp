// SPDX-License-Identifier: MIT
// Every place a formula can be written in a file: which text split_formulas takes (count,
// line, column), and that check_text on the seed network fails a wrong equation written
// there and passes a right one, so no environment is read partly or skipped.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "check/checker.hpp"
#include "cli/model.hpp"

using namespace gradpath;
using namespace gradpath::check;

namespace {

const BuildFn& seed() {
  static const cli::Model model =
      cli::Model::load((std::filesystem::path(GRADPATH_SOURCE_DIR) / "examples" / "models" / "seed.json").string());
  static const BuildFn build = [](Tape& tape) { model.build(tape); };
  return build;
}

// ∂z2/∂w1 is a3 on the seed network; a13 is the note's mistake.
constexpr const char* right_tex = R"(\frac{\partial z_2}{\partial w_1} = a_3)";
constexpr const char* wrong_tex = R"(\frac{\partial z_2}{\partial w_1} = a_{13})";

std::vector<Verdict> verdicts(std::string_view file) {
  std::vector<Verdict> out;
  for (const Report& r : check_text(seed(), file)) out.push_back(r.verdict);
  return out;
}

// The file with `env` wrapped around one formula, the formula right and then wrong: the
// right one passes, the wrong one fails.
void right_passes_wrong_fails(const std::string& open, const std::string& close) {
  INFO(open + "…" + close);
  CHECK(verdicts("Prose.\n" + open + right_tex + close + "\n") == std::vector{Verdict::Pass});
  CHECK(verdicts("Prose.\n" + open + wrong_tex + close + "\n") == std::vector{Verdict::Fail});
}

}  // namespace

TEST_CASE("environments: $$…$$, \\[…\\], equation and equation* hold one formula each, at their line and column",
          "[check][environments]") {
  const std::string tex =
      "Prose with a dollar escaped \\$ here.\n"
      "$$z_2 = w_1 a_3 + \\dots$$\n"
      "Then \\[ x = y \\] and\n"
      "\\begin{equation}\n  p = q \\label{eq:p}\n\\end{equation}\n"
      "\\begin{equation*} r = s \\end{equation*}\n";
  const std::vector<FormulaSource> f = split_formulas(tex);
  REQUIRE(f.size() == 4);
  CHECK(f[0].line == 2);
  CHECK(f[0].column == 3);
  CHECK(f[0].text == "z_2 = w_1 a_3 + \\dots");
  CHECK(f[1].line == 3);
  CHECK(f[1].column == 9);
  CHECK(f[2].line == 5);
  CHECK(f[2].column == 3);
  CHECK(f[3].line == 7);
  CHECK(f[3].column == 19);
  right_passes_wrong_fails("$$", "$$");
  right_passes_wrong_fails("\\[", "\\]");
  right_passes_wrong_fails("\\begin{equation}\n", "\n\\end{equation}");
  right_passes_wrong_fails("\\begin{equation*}", "\\end{equation*}");
}

TEST_CASE("environments: a $$ block does not hide two wrong equations in \\[…\\]", "[check][environments]") {
  const std::string tex =
      std::string("$$") + right_tex + "$$\nand\n\\[" + wrong_tex + "\\]\n\\[ " + wrong_tex + " \\]\n";
  const std::vector<FormulaSource> f = split_formulas(tex);
  REQUIRE(f.size() == 3);
  CHECK(f[1].line == 3);
  CHECK(f[2].line == 4);
  CHECK(f[2].column == 4);
  CHECK(verdicts(tex) == std::vector{Verdict::Pass, Verdict::Fail, Verdict::Fail});
}

TEST_CASE("environments: align rows, a chained &= row and a &+ row that goes on with the sum",
          "[check][environments]") {
  SECTION("each row of align and align* with its own left side is a formula") {
    for (const char* env : {"align", "align*"}) {
      INFO(env);
      const std::string tex =
          std::string("\\begin{") + env + "}\n" + right_tex + " \\\\\n" + wrong_tex + "\n\\end{" + env + "}\n";
      const std::vector<FormulaSource> f = split_formulas(tex);
      REQUIRE(f.size() == 2);
      CHECK(f[0].line == 2);
      CHECK(f[0].column == 1);
      CHECK(f[1].line == 3);
      CHECK(verdicts(tex) == std::vector{Verdict::Pass, Verdict::Fail});
    }
  }
  SECTION("a row &= … claims the first row's left side equals it") {
    const std::string tex =
        "\\begin{align}\n"
        "\\frac{\\partial z_2}{\\partial w_1} &= \\frac{\\partial z_2}{\\partial w_1} \\\\\n"
        "  &= a_3 \\\\\n"
        "  &= a_{13}\n"
        "\\end{align}\n";
    const std::vector<FormulaSource> f = split_formulas(tex);
    REQUIRE(f.size() == 3);
    CHECK(f[1].line == 3);
    CHECK(f[1].column == 4);
    CHECK(f[2].chained_lhs == f[1].chained_lhs);
    CHECK_THAT(f[2].chained_lhs, Catch::StartsWith("\\frac{\\partial z_2}"));
    CHECK(verdicts(tex) == std::vector{Verdict::Pass, Verdict::Pass, Verdict::Fail});
  }
  SECTION("a row &+ … with no '=' goes on with the sum of the row before") {
    const std::string right =
        "\\begin{align*}\n"
        "\\frac{\\partial L}{\\partial w_1} &= a_1 \\frac{\\partial L}{\\partial z_1} + a_3 \\frac{\\partial "
        "L}{\\partial "
        "z_2} \\\\\n"
        "  &+ a_{11} \\frac{\\partial L}{\\partial z_3} + a_{13} \\frac{\\partial L}{\\partial z_4}\n"
        "\\end{align*}\n";
    const std::vector<FormulaSource> f = split_formulas(right);
    REQUIRE(f.size() == 1);
    CHECK(f[0].line == 2);
    CHECK_THAT(f[0].text, Catch::Contains("&+ a_{11}") && Catch::EndsWith("\\partial z_4}\n"));
    CHECK(verdicts(right) == std::vector{Verdict::Pass});
    std::string wrong = right;
    wrong.replace(wrong.find("a_{11}"), 6, "a_{12}");
    CHECK(verdicts(wrong) == std::vector{Verdict::Fail});
  }
  SECTION("a >= in a &+ row is a comparison, not the row's own '='") {
    const std::string tex =
        "\\begin{align*}\n"
        "L &= 0.5 (y - t)^2 \\\\\n"
        "  &+ 0 [y >= t]\n"
        "\\end{align*}\n";
    const std::vector<FormulaSource> f = split_formulas(tex);
    REQUIRE(f.size() == 1);
    CHECK(verdicts(tex) == std::vector{Verdict::Pass});
  }
}

TEST_CASE("environments: a stray $ in prose does not swallow the display blocks after it", "[check][environments]") {
  const std::string tex =
      std::string("It costs 5 $ a page.\n$$") + wrong_tex + "$$\n\nA $ again. \\[" + wrong_tex + "\\]\n";
  const std::vector<FormulaSource> f = split_formulas(tex);
  REQUIRE(f.size() == 2);
  CHECK(f[0].line == 2);
  CHECK(f[1].line == 4);
  CHECK(verdicts(tex) == std::vector{Verdict::Fail, Verdict::Fail});
  SECTION("an unclosed $ that states a derivative is still read") {
    const std::vector<FormulaSource> g = split_formulas(std::string("So $") + wrong_tex + "\n\nmore prose\n");
    REQUIRE(g.size() == 1);
    CHECK(g[0].column == 5);
    CHECK(verdicts(std::string("So $") + wrong_tex + "\n\nmore prose\n") == std::vector{Verdict::Fail});
  }
}

TEST_CASE("environments: aligned inside $$ and gather rows", "[check][environments]") {
  SECTION("aligned inside $$: one formula per row") {
    const std::string tex =
        std::string("$$\\begin{aligned}\n") + right_tex + " \\\\\n" + wrong_tex + "\n\\end{aligned}$$\n";
    const std::vector<FormulaSource> f = split_formulas(tex);
    REQUIRE(f.size() == 2);
    CHECK(f[0].line == 2);
    CHECK(f[1].line == 3);
    CHECK(verdicts(tex) == std::vector{Verdict::Pass, Verdict::Fail});
  }
  SECTION("gather: every row its own equation") {
    const std::string tex = std::string("\\begin{gather}\n") + wrong_tex + " \\\\\n" + right_tex + "\n\\end{gather}\n";
    const std::vector<FormulaSource> f = split_formulas(tex);
    REQUIRE(f.size() == 2);
    CHECK(f[0].line == 2);
    CHECK(f[1].line == 3);
    CHECK(verdicts(tex) == std::vector{Verdict::Fail, Verdict::Pass});
  }
}

TEST_CASE("environments: inline $…$ and \\(…\\) with '=' and a derivative are read; $w_i$ prose is not",
          "[check][environments]") {
  const std::string tex = "The weight $w_i$ moves and $z_2$ grows: so $" + std::string(wrong_tex) + "$ and \\(" +
                          right_tex + "\\) and $dz2/dw1 = a3$.\n";
  const std::vector<FormulaSource> f = split_formulas(tex);
  REQUIRE(f.size() == 3);
  CHECK(f[0].line == 1);
  CHECK(f[0].column == 45);
  CHECK(f[0].text == wrong_tex);
  CHECK(f[1].text == right_tex);
  CHECK(f[2].text == "dz2/dw1 = a3");
  CHECK(verdicts(tex) == std::vector{Verdict::Fail, Verdict::Pass, Verdict::Pass});
  right_passes_wrong_fails("So $", "$ holds.");
  right_passes_wrong_fails("So \\(", "\\) holds.");
}

TEST_CASE("environments: a plain-text file is read line by line", "[check][environments]") {
  const std::string text = "# ASCII\ndz2/dw1 = a3\n\n  dz2/dw1 = a13\n% a comment\n∂z2/∂w1 = a3\n";
  const std::vector<FormulaSource> f = split_formulas(text);
  REQUIRE(f.size() == 3);
  CHECK(f[0].line == 2);
  CHECK(f[1].line == 4);
  CHECK(f[1].column == 1);
  CHECK(f[2].line == 6);
  CHECK(verdicts(text) == std::vector{Verdict::Pass, Verdict::Fail, Verdict::Pass});
}

TEST_CASE("environments: a file with no formula is an Error, never zero formulas that pass", "[check][environments]") {
  for (const std::string& file : {std::string(), std::string("% only\n% comments\n"), std::string("# notes\n\n"),
                                  std::string("Prose % and $$x = y$$ in a comment\n"),
                                  std::string("% $$\\frac{\\partial z_2}{\\partial w_1} = a_{13}$$\n")}) {
    INFO(file);
    CHECK(split_formulas(file).empty());
    CHECK_THROWS_AS(check_text(seed(), file), Error);
    CHECK_THROWS_WITH(check_text(seed(), file), Catch::Contains("holds no formula"));
  }
}
