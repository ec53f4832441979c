// SPDX-License-Identifier: MIT
// Text every message writes: lists joined with a separator.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <range/v3/range/conversion.hpp>
#include <range/v3/view/join.hpp>
#include <range/v3/view/transform.hpp>

namespace gradpath::graph {

// The items' texts with `separator` between them: join(nodes, ", ", label) is
// "a1, a2, a3". `text` maps an item to something a std::string is made from.
template <typename Range, typename Text = std::identity>
std::string join(const Range& items, std::string_view separator, Text text = {}) {
  return items | ranges::views::transform([&](const auto& item) { return std::string(std::invoke(text, item)); }) |
         ranges::views::join(separator) | ranges::to<std::string>();
}

}  // namespace gradpath::graph
