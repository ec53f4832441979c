// SPDX-License-Identifier: MIT
// The formula language: ASCII, LaTeX and Unicode spellings, the AST, every parse error, and
// how a file is split into formulas.
#include <catch2/catch.hpp>
#include <string>

#include "check/formula.hpp"

using namespace gradpath;
using namespace gradpath::check;

namespace {
std::string rhs_text(std::string_view formula) { return to_string(parse_formula(formula).rhs); }

// The message of the ParseError `formula` raises ("" when it parses).
std::string parse_error(std::string_view formula, int first_line = 1) {
  try {
    parse_formula(formula, first_line);
  } catch (const ParseError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("formula: the ASCII form gives a derivative = sum of products", "[check][formula]") {
  const Formula f = parse_formula("dL/dw1 = a1*dL/dz1 + a3*dL/dz2 - 2*dL/dz3");
  REQUIRE(f.lhs.kind == ExprKind::Derivative);
  CHECK(f.lhs.name == "L");
  CHECK(f.lhs.wrt == "w1");
  CHECK(f.lhs.wrt_pos.column == 5);
  REQUIRE(f.rhs.kind == ExprKind::Sum);
  REQUIRE(f.rhs.args.size() == 3);
  CHECK(f.rhs.args[0].kind == ExprKind::Product);
  CHECK(f.rhs.args[2].kind == ExprKind::Negate);
  CHECK(to_string(f.rhs) == "a1·∂L/∂z1 + a3·∂L/∂z2 - 2·∂L/∂z3");
  CHECK_FALSE(f.has_ellipsis);
  CHECK(f.annotations.empty());
}

TEST_CASE("formula: LaTeX, Unicode and ASCII spellings give the same tree", "[check][formula]") {
  const std::string expected = "a1·∂L/∂z1 + a13·∂L/∂z2";
  CHECK(rhs_text("dL/dw1 = a1*dL/dz1 + a13*dL/dz2") == expected);
  CHECK(rhs_text("dL/dw1 = a1 dL/dz1 + a_13 dL / dz_2") == expected);
  CHECK(
      rhs_text(
          R"(\frac{\partial L}{\partial w_1} = a_1 \frac{\partial L}{\partial z_1} + a_{13} \frac{\partial L}{\partial z_2})") ==
      expected);
  CHECK(
      rhs_text(
          R"(\frac{\partial L}{\partial w_1} = a_1 \cdot \frac{\partial L}{\partial z_1} + a_{13} \times \frac{\partial L}{\partial z_2})") ==
      expected);
  CHECK(rhs_text("∂L/∂w1 = a1·∂L/∂z1 + a13 × ∂L/∂z2") == expected);
}

TEST_CASE("formula: names a13, a_13, a_{13}, hats and a derivative of a hatted name", "[check][formula]") {
  CHECK(rhs_text("x = a13 + a_13 + a_{13} + a_{ 13 }") == "a13 + a13 + a13 + a13");
  CHECK(rhs_text(R"(x = \hat{y} + \hat y + ŷ + ŷ)") == "y + y + y + y");
  CHECK(rhs_text(R"(x = \frac{\partial L}{\partial \hat{y}})") == "∂L/∂y");
  CHECK(rhs_text("x = Z_1 + loss") == "Z1 + loss");
  CHECK(to_string(parse_formula("dz_2/dw_1 = a_3").lhs) == "∂z2/∂w1");
}

TEST_CASE("formula: precedence, unary minus, powers, quotients and calls", "[check][formula]") {
  CHECK(rhs_text("x = a - b*c^2") == "a - b·c^2");
  CHECK(rhs_text("x = -a^2") == "-a^2");
  CHECK(rhs_text("x = (a + b)(c - d)") == "(a + b)·(c - d)");
  CHECK(rhs_text("x = a/b/c") == "a/b/c");
  CHECK(rhs_text("x = 2^-1 + 1.5e-3") == "2^(-1) + 0.0015");
  CHECK(rhs_text(R"(x = \frac{a + b}{c})") == "(a + b)/c");
  CHECK(rhs_text(R"(x = exp(a) + \sqrt{b} + \tanh(c) + sigmoid(d) + relu(e) + abs(f) + \sin(g) + cos(h) + \log{i})") ==
        "exp(a) + sqrt(b) + tanh(c) + sigmoid(d) + relu(e) + abs(f) + sin(g) + cos(h) + log(i)");
  const Formula f = parse_formula("x = 3 − a");  // U+2212 minus sign
  CHECK(to_string(f.rhs) == "3 - a");
  CHECK(f.rhs.args[0].number == 3.0);
}

TEST_CASE("formula: every ellipsis spelling is one unwritten-terms marker", "[check][formula]") {
  for (const char* dots : {"\\dots", "\\ldots", "\\cdots", "...", "…", "⋯"}) {
    INFO(dots);
    const Formula f = parse_formula(std::string("z = w1 a1 + ") + dots + " + w9 a13");
    CHECK(f.has_ellipsis);
    REQUIRE(f.rhs.args.size() == 3);
    CHECK(f.rhs.args[1].kind == ExprKind::Ellipsis);
    CHECK(to_string(f.rhs) == "w1·a1 + … + w9·a13");
  }
}

TEST_CASE("formula: an aligned block with & and \\\\ is one formula; => annotates the factor before it",
          "[check][formula]") {
  const std::string block =
      R"(\begin{aligned} \frac{\partial L}{\partial w_1} &= \frac{\partial z_1}{\partial w_1} \cdot \left[\frac{\partial \hat{y}}{\partial z_1} \cdot \frac{\partial L}{\partial \hat{y}} \right] \Rightarrow \frac{\partial L}{\partial z_1} \\
 &+ \frac{\partial z_2}{\partial w_1} \cdot \left( \frac{\partial \hat{y}}{\partial z_2} \cdot \frac{\partial L}{\partial \hat{y}} \right) \Rightarrow \frac{\partial L}{\partial z_2} \end{aligned})";
  const Formula f = parse_formula(block);
  CHECK(to_string(f.lhs) == "∂L/∂w1");
  CHECK(to_string(f.rhs) == "∂z1/∂w1·∂y/∂z1·∂L/∂y + ∂z2/∂w1·∂y/∂z2·∂L/∂y");
  REQUIRE(f.annotations.size() == 2);
  CHECK(to_string(f.annotations[0].value) == "∂y/∂z1·∂L/∂y");
  CHECK(to_string(f.annotations[0].claim) == "∂L/∂z1");
  CHECK(to_string(f.annotations[1].claim) == "∂L/∂z2");
  SECTION("ASCII and Unicode arrows") {
    const Formula g = parse_formula("x = a*(b*c) => d + e ⇒ f");
    CHECK(to_string(g.rhs) == "a·b·c + e");
    REQUIRE(g.annotations.size() == 2);
    CHECK(to_string(g.annotations[0].value) == "b·c");
    CHECK(to_string(g.annotations[1].value) == "e");
    CHECK(to_string(g.annotations[1].claim) == "f");
  }
}

TEST_CASE("formula: an error at the end points one column past the last token", "[check][formula][errors]") {
  CHECK(parse_error("dL/dw1 = a1 + ") ==
        "line 1, column 14: expected an expression after '+'\n  dL/dw1 = a1 + \n               ^");
}

TEST_CASE("formula: unexpected tokens", "[check][formula][errors]") {
  CHECK_THAT(parse_error("dL/dw1 = a1 * * a3"),
             Catch::Contains("line 1, column 15: expected an expression after '*', found '*'"));
  CHECK_THAT(parse_error("x = a = b"), Catch::Contains("column 7: a second '='"));
  CHECK_THAT(parse_error("x = a # b"), Catch::Contains("column 7: unexpected character '#'"));
  CHECK_THAT(parse_error("x = a * \\dots"), Catch::Contains("'\\dots' can only stand for whole terms of a sum"));
  CHECK_THAT(parse_error("x = ∂L + 1"), Catch::Contains("expected '/' after ∂L"));
  CHECK_THAT(parse_error("x = a_ + 1"), Catch::Contains("column 7: expected a subscript after '_'"));
  CHECK_THAT(parse_error("x = exp + 1"), Catch::Contains("expected the argument of exp"));
}

TEST_CASE("formula: unbalanced brackets and braces", "[check][formula][errors]") {
  CHECK_THAT(parse_error("dL/dw1 = (a1 * dL/dz1"),
             Catch::Contains("line 1, column 10: '(' at line 1, column 10 is never closed: expected ')'"));
  CHECK_THAT(parse_error("dL/dw1 = a1 * dL/dz1)"), Catch::Contains("column 21: unmatched ')': no bracket is open"));
  CHECK_THAT(parse_error("dL/dw1 = [a1 * dL/dz1}"),
             Catch::Contains("column 22: expected ']' to close '[' at line 1, column 10, found '}'"));
  CHECK_THAT(parse_error(R"(\frac{\partial L}{\partial w_1 = a_1)"),
             Catch::Contains("column 32: expected '}' to close '{' at line 1, column 18, found '='"));
  CHECK_THAT(parse_error("x = a_{13 + 1"), Catch::Contains("expected '}' to close the subscript opened at column 6"));
  CHECK_THAT(parse_error("x = ()"), Catch::Contains("empty brackets '()'"));
  CHECK_THAT(parse_error(R"(x = \left[ a \right)"), Catch::Contains("'[' at line 1, column 10 is never closed"));
}

TEST_CASE("formula: unknown commands, empty sides, missing '='", "[check][formula][errors]") {
  CHECK_THAT(parse_error(R"(\frac{\partial L}{\partial w_1} = \foo)"),
             Catch::Contains("column 35: unknown command '\\foo'"));
  CHECK_THAT(parse_error("= a1"), Catch::Contains("line 1, column 1: the left side is empty"));
  CHECK_THAT(parse_error("dL/dw1 = "), Catch::Contains("column 9: the right side is empty"));
  CHECK_THAT(parse_error("dL/dw1 a1"), Catch::Contains("column 10: expected '=': a formula is an equation"));
  CHECK_THAT(parse_error(""), Catch::Contains("line 1, column 1: expected an expression"));
}

TEST_CASE("formula: lines of a multi-line formula count from its first line", "[check][formula][errors]") {
  const std::string error = parse_error("\\begin{aligned} x &= a \\\\\n &+ * b \\end{aligned}", 10);
  CHECK_THAT(error, Catch::StartsWith("line 11, column 5: expected an expression after '+', found '*'"));
  CHECK_THAT(error, Catch::EndsWith("\n   &+ * b \\end{aligned}\n      ^"));
}

TEST_CASE("formula: split_formulas takes $$ blocks from a .tex file and lines from a plain one", "[check][formula]") {
  SECTION("$$ blocks; prose, inline $x$ and % comments are ignored; columns are the file's") {
    const std::string tex =
        "% a comment with $$ in it\nSome prose, $w_i$ inline.\n\n"
        "Where $$z_1 = w_1 a_1$$ and $$x = y$$\n$$\\begin{aligned} a &= b \\\\\n &+ c \\end{aligned}$$\n";
    const auto formulas = split_formulas(tex);
    REQUIRE(formulas.size() == 3);
    CHECK(formulas[0].line == 4);
    CHECK(formulas[0].column == 9);
    CHECK(formulas[0].text == "z_1 = w_1 a_1");
    CHECK(formulas[1].line == 4);
    CHECK(formulas[2].line == 5);
    CHECK(formulas[2].text == "a &= b \\\\\n &+ c \\end{aligned}");
    FormulaSource cut = formulas[0];
    cut.text += " +";
    CHECK_THROWS_WITH(parse_formula(cut), Catch::StartsWith("line 4, column 24:"));
  }
  SECTION("plain lines; blank, % and # lines are skipped") {
    const auto formulas = split_formulas("dz2/dw1 = a3\n\n# note\n  z2 = w1*a3 + ...\n");
    REQUIRE(formulas.size() == 2);
    CHECK(formulas[0].line == 1);
    CHECK(formulas[1].line == 4);
    CHECK(formulas[1].text == "  z2 = w1*a3 + ...");
  }
}

TEST_CASE("formula: names_in lists every name with its column", "[check][formula]") {
  const auto names = names_in(parse_formula("dL/dw1 = a13*dL/dz2").rhs);
  REQUIRE(names.size() == 3);
  CHECK(names[0].name == "a13");
  CHECK(names[0].pos.column == 10);
  CHECK(names[1].name == "L");
  CHECK(names[2].name == "z2");
  CHECK(names[2].pos.column == 18);
}
