// SPDX-License-Identifier: MIT
// Name clashes: refusing a name whose element names would spell another name's.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "autodiff/tape.hpp"

namespace gradpath {

// Note [Name clashes]
// A named range spells its elements base1, base2, ... (a tensor node of several elements
// too), a single node just base. So a tensor 'w' of 12 elements and a 'w1' of two both
// spell w11 (and w12), and a formula's w11 could mean either: the checker could only call
// it ambiguous. Such a name is refused when it is made, with an Error naming both.
//
// Cut every name into its stem and its trailing digits: 'w1' is stem 'w', digits '1';
// every element name of it has the same stem (w11 = w + 11), so only names of one stem
// can meet, and names_by_stem_ finds them. Between two names of one stem, with digits
// p and q and element numbers 1..m and 1..n (or a single node: the digits alone):
//   - two names with one base (p == q) clash, whatever their sizes: two nodes called 'w'
//     are as ambiguous as two w11s;
//   - a single node with digits p meets a range (q, 1..n) when p = q + k for a k in 1..n;
//   - two ranges meet when the shorter digits p are a prefix of q = p + r and p + k = q + j
//     for some k, j: the smallest such k is r followed by 1 (so when r1 <= m), and none
//     when r starts with 0 (no element number does).
// Spelling elements differently (w[11], w_{1,1}) would avoid the clash but change every
// name the checker, the DOT output and the JSON command print; refusing keeps them.
namespace {

struct Spelling {
  std::string_view stem, digits;
  std::uint64_t count = 0;  // elements numbered 1..count; 0: a single node, no number
};

Spelling spelling(std::string_view base, std::uint64_t count) {
  std::size_t cut = base.size();
  while (cut > 0 && base[cut - 1] >= '0' && base[cut - 1] <= '9') --cut;
  return {base.substr(0, cut), base.substr(cut), count};
}

// The number a digit string spells, or nullopt past 2^40 (no tensor has that many elements).
std::optional<std::uint64_t> number(std::string_view digits) {
  if (digits.size() > 12) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : digits) n = n * 10 + static_cast<std::uint64_t>(c - '0');
  return n;
}

// An element name both spellings give (stem, digits), if any.
std::optional<std::string> common_element(const Spelling& a, const Spelling& b) {
  const Spelling& s = a.digits.size() <= b.digits.size() ? a : b;  // shorter digits
  const Spelling& l = &s == &a ? b : a;
  if (l.digits.substr(0, s.digits.size()) != s.digits) return std::nullopt;
  const std::string_view r = l.digits.substr(s.digits.size());
  const std::string prefix = std::string(l.stem) + std::string(l.digits);
  if (r.empty()) return s.count != 0 && l.count != 0 ? prefix + "1" : prefix;  // one base
  // s's one name is shorter than every name of l; no element number starts with 0.
  if (s.count == 0 || r[0] == '0') return std::nullopt;
  if (l.count == 0) {  // l's name is s's element number r
    const std::optional<std::uint64_t> k = number(r);
    return k && *k <= s.count ? std::optional(prefix) : std::nullopt;
  }
  const std::optional<std::uint64_t> k = number(std::string(r) + "1");
  return k && *k <= s.count ? std::optional(prefix + "1") : std::nullopt;
}

std::string describe(std::string_view base, std::uint64_t count) {
  const std::string b(base);
  if (count == 0) return "'" + b + "'";
  if (count == 1) return "'" + b + "' (element " + b + "1)";
  return "'" + b + "' (elements " + b + "1 ... " + b + std::to_string(count) + ")";
}

}  // namespace

void Tape::check_name_clash(NodeId first, NodeId count, std::string_view base, bool numbered) const {
  auto elements = [&](NodeId n, NodeId c, bool num) -> std::uint64_t { return num ? c : (size(n) > 1 ? size(n) : 0); };
  const Spelling mine = spelling(base, elements(first, count, numbered));
  const auto group = names_by_stem_.find(mine.stem);
  if (group == names_by_stem_.end()) return;
  for (NodeId other : group->second) {
    if (other == first) continue;  // a rename of this very range
    const auto it = std::lower_bound(names_.begin(), names_.end(), other,
                                     [](const NameRange& r, NodeId id) { return r.first < id; });
    const std::uint64_t theirs_count = elements(it->first, it->count, it->numbered);
    if (const std::optional<std::string> both = common_element(mine, spelling(it->base, theirs_count))) {
      throw Error("set_name: the name " + describe(base, mine.count) + " clashes with " +
                  describe(it->base, theirs_count) + " (node " + std::to_string(other) + "): both would name " + *both +
                  "; choose a name that does not end in a digit, or one no other name starts with");
    }
  }
}

void Tape::index_name(NodeId first, std::string_view base) {
  const std::string_view stem = spelling(base, 0).stem;
  auto group = names_by_stem_.find(stem);
  if (group == names_by_stem_.end()) group = names_by_stem_.emplace(std::string(stem), std::vector<NodeId>{}).first;
  group->second.push_back(first);
}

// Keeps the stem's entry (and its capacity) when it empties: a training loop that names
// its nodes again after each reset() then allocates nothing here.
void Tape::unindex_name(NodeId first, std::string_view base) {
  const auto group = names_by_stem_.find(spelling(base, 0).stem);
  if (group == names_by_stem_.end()) return;
  std::vector<NodeId>& firsts = group->second;
  const auto it = std::find(firsts.rbegin(), firsts.rend(), first);
  if (it != firsts.rend()) firsts.erase(std::next(it).base());
}

}  // namespace gradpath
