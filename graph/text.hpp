// SPDX-License-Identifier: MIT
// Text every message writes: lists joined with a separator, the distance between names.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <range/v3/range/conversion.hpp>
#include <range/v3/view/join.hpp>
#include <range/v3/view/transform.hpp>

namespace gradpath::graph {

// Levenshtein distance: how far a misspelt name is from each known one, for "did you mean".
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The items' texts with `separator` between them: join(nodes, ", ", label) is
// "a1, a2, a3". `text` maps an item to something a std::string is made from.
template <typename Range, typename Text = std::identity>
std::string join(const Range& items, std::string_view separator, Text text = {}) {
  return items | ranges::views::transform([&](const auto& item) { return std::string(std::invoke(text, item)); }) |
         ranges::views::join(separator) | ranges::to<std::string>();
}

}  // namespace gradpath::graph
