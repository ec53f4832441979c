// SPDX-License-Identifier: MIT
// libFuzzer harness: the formula parser on arbitrary bytes may only throw gradpath::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "check/formula.hpp"

using namespace gradpath;

namespace {
// Parses one formula and walks what came out, so printing and name listing see every AST
// the parser can make; a parse error is the expected outcome for most inputs.
void parse_and_walk(std::string_view text, int first_line) {
  try {
    const check::Formula f = check::parse_formula(text, first_line);
    (void)check::to_string(f.lhs);
    (void)check::to_string(f.rhs);
    (void)check::names_in(f.rhs);
    for (const check::Annotation& a : f.annotations) (void)check::to_string(a.claim);
  } catch (const Error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  parse_and_walk(text, 1);
  try {
    for (const check::FormulaSource& f : check::split_formulas(text)) parse_and_walk(f.text, f.line);
  } catch (const Error&) {
  }
  return 0;
}
