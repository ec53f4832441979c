// SPDX-License-Identifier: MIT
// The lookups by name over the table of elementary functions.
#include "autodiff/functions.hpp"

#include <algorithm>
#include <bit>
#include <charconv>

namespace gradpath {

std::string FunctionInfo::symbol_at(std::string_view input, double p) const {
  std::string out;
  for (const char c : symbol) {
    if (c == '%') {
      out += input;
    } else if (c == '$') {
      // The shortest text that reads back as p exactly, so a formula written from the
      // symbol evaluates with the same parameter.
      std::array<char, 32> buf{};
      const auto end = std::to_chars(buf.data(), buf.data() + buf.size(), p).ptr;
      out.append(buf.data(), end);
    } else {
      out += c;
    }
  }
  return out;
}

const FunctionInfo* function_named(std::string_view name) {
  const auto it =
      std::find_if(functions.begin(), functions.end(), [&](const FunctionInfo& f) { return f.name == name; });
  return it == functions.end() ? nullptr : &*it;
}

const FunctionInfo* function_spelled(std::string_view word) {
  const auto it = std::find_if(functions.begin(), functions.end(), [&](const FunctionInfo& f) {
    return f.name == word || std::find(f.spellings.begin(), f.spellings.end(), word) != f.spellings.end();
  });
  return it == functions.end() ? nullptr : &*it;
}

double function_parameter(const TensorRecord& record) { return options<FunctionOptions>(record).parameter; }

}  // namespace gradpath
