// SPDX-License-Identifier: MIT
// Hostile formula text: numbers no double holds, malformed numbers, characters a terminal
// would not show, and files of many formulas. Each is an error at its column or stays
// linear; none throws anything but gradpath's own errors.
#include <catch2/catch.hpp>
#include <string>

#include "check/checker.hpp"
#include "check/formula.hpp"

using namespace gradpath;
using namespace gradpath::check;
using Catch::Contains;

namespace {
std::string parse_error(const std::string& text) {
  try {
    parse_formula(text);
  } catch (const ParseError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("numbers out of a double's range are errors at their column", "[check][formula][hostile]") {
  CHECK_THAT(parse_error("dL/dw1 = 1e999*a1"),
             Contains("line 1, column 10: the number '1e999' is out of the range of a double"));
  CHECK_THAT(parse_error("L = 1e-400"), Contains("column 5: the number '1e-400'") && Contains("would read as 0"));
  const std::string digits(100000, '7');
  const std::string huge = parse_error("L = " + digits);
  CHECK_THAT(huge, Contains("out of the range of a double"));
  CHECK(huge.size() < 400);  // the number is shortened in the message
  CHECK_NOTHROW(parse_formula("L = 0.000"));
  CHECK_NOTHROW(parse_formula("L = 0e5"));
  CHECK(parse_formula("L = 1.5e-3").rhs.number == 1.5e-3);
}

TEST_CASE("a malformed number is an error, not the prefix that reads", "[check][formula][hostile]") {
  CHECK_THAT(parse_error("L = 1.2.3"), Contains("column 5: malformed number '1.2.3'"));
}

TEST_CASE("characters a terminal would not show plainly are named by code point", "[check][formula][hostile]") {
  CHECK_THAT(parse_error("L = a\u00A0+ b"),
             Contains("column 6: unexpected character U+00A0 (a space other than ' ': retype it)"));
  // An escape sequence in a formula never reaches the terminal raw, in the message or in
  // the quoted line under it.
  const std::string escape = parse_error("L = a \x1b[31m + b");
  CHECK_THAT(escape, Contains("unexpected character U+001B (a control character)"));
  CHECK(escape.find('\x1b') == std::string::npos);
}

TEST_CASE("many formulas on one line: found in linear time, columns kept", "[check][formula][hostile]") {
  std::string line;
  for (int i = 0; i < 100000; ++i) line += "$$ L = L $$";
  const auto formulas = split_formulas(line);
  REQUIRE(formulas.size() == 100000);
  CHECK(formulas.back().line == 1);
  CHECK(formulas.back().column == 11 * 99999 + 4);
  CHECK(formulas.back().text == "L = L ");
}

TEST_CASE("files that state nothing are errors, not 0 formulas", "[check][formula][hostile]") {
  const BuildFn build = [](Tape& tape) { tape.input(1.0, "L"); };
  for (const char* text : {"", "\n\n", "% only a comment\n", "# a comment\n", "% $$ L = 1 $$ in a comment\n",
                           "Prose and $w_i$ inline, no equation.\n"}) {
    INFO(text);
    CHECK_THROWS_WITH(check_text(build, text), Contains("holds no formula"));
  }
}

TEST_CASE("bytes that are not UTF-8 in a formula file still give JSON that dumps", "[check][formula][hostile]") {
  const BuildFn build = [](Tape& tape) { tape.input(1.0, "x").named("x"); };
  const std::vector<Report> reports = check_text(build, "x = 1 + \x88\x82 2\nx = 1\n");
  REQUIRE(reports.size() == 2);
  CHECK(reports[0].verdict == Verdict::Error);
  std::string dumped;
  CHECK_NOTHROW(dumped = json(reports).dump());
  CHECK_THAT(dumped, Contains("\uFFFD"));
}
