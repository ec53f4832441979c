// SPDX-License-Identifier: MIT
// Names and scopes: naming nodes and ranges of nodes, reading an element's name, the scope
// paths recording runs under, and refusing a name whose elements would spell another's.
#include <algorithm>
#include <cstdint>
#include <iterator>
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
// can meet, and Names::by_stem finds them by stem and digits. Between two names of one stem, with digits
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
  const auto group = names_.by_stem.find(mine.stem);
  if (group == names_.by_stem.end()) return;
  auto check = [&](const std::vector<NodeId>& others) {
    for (NodeId other : others) {
      if (other == first) continue;  // a rename of this very range
      const auto it = std::lower_bound(names_.ranges.begin(), names_.ranges.end(), other,
                                       [](const Names::Range& r, NodeId id) { return r.first < id; });
      const std::uint64_t theirs_count = elements(it->first, it->count, it->numbered);
      if (const std::optional<std::string> both = common_element(mine, spelling(it->base, theirs_count))) {
        throw Error("set_name: the name " + describe(base, mine.count) + " clashes with " +
                    describe(it->base, theirs_count) + " (node " + std::to_string(other) + "): both would name " +
                    *both + "; choose a name that does not end in a digit, or one no other name starts with");
      }
    }
  };
  // The names whose digits are a prefix of this one's (its own digits included), then,
  // when this name is a range, the longer ones that start with its digits: a single node
  // spells no name longer than its own. A lookup per digit, not a pass over the stem.
  const Names::ByDigits& by_digits = group->second;
  for (std::size_t length = 0; length <= mine.digits.size(); ++length) {
    if (const auto it = by_digits.find(mine.digits.substr(0, length)); it != by_digits.end()) check(it->second);
  }
  if (mine.count == 0) return;
  for (auto it = by_digits.upper_bound(mine.digits); it != by_digits.end() && it->first.starts_with(mine.digits);
       ++it) {
    check(it->second);
  }
}

void Tape::Names::index(NodeId first, std::string_view base) {
  const Spelling s = spelling(base, 0);
  auto group = by_stem.find(s.stem);
  if (group == by_stem.end()) group = by_stem.emplace(std::string(s.stem), ByDigits{}).first;
  auto digits = group->second.find(s.digits);
  if (digits == group->second.end()) digits = group->second.emplace(std::string(s.digits), std::vector<NodeId>{}).first;
  digits->second.push_back(first);
}

// Keeps the stem's entry (and its capacity) when it empties: a training loop that names
// its nodes again after each reset() then allocates nothing here.
void Tape::Names::unindex(NodeId first, std::string_view base) {
  const Spelling s = spelling(base, 0);
  const auto group = by_stem.find(s.stem);
  if (group == by_stem.end()) return;
  const auto digits = group->second.find(s.digits);
  if (digits == group->second.end()) return;
  std::vector<NodeId>& firsts = digits->second;
  const auto it = std::find(firsts.rbegin(), firsts.rend(), first);
  if (it != firsts.rend()) firsts.erase(std::next(it).base());
}

// ---- naming nodes ------------------------------------------------------------------------

void Tape::set_name(NodeId n, std::string_view name) { add_name(n, 1, name, false); }
void Tape::set_range_name(NodeId first, NodeId count, std::string_view base, const Shape& shape) {
  add_name(first, count, base, true, shape);
}

void Tape::add_name(NodeId first, NodeId count, std::string_view base, bool numbered, const Shape& shape) {
  if (count == 0 || first + count > nodes_.size()) {
    throw Error("set_name: nodes " + std::to_string(first) + "+" + std::to_string(count) + " are not on the tape");
  }
  if (shape.rank() != 0 && shape.size() != count) {
    throw Error("set_name: the shape " + shape.str() + " of '" + std::string(base) + "' does not have its " +
                std::to_string(count) + " elements");
  }
  std::vector<Names::Range>& ranges = names_.ranges;
  auto it = std::lower_bound(ranges.begin(), ranges.end(), first,
                             [](const Names::Range& r, NodeId id) { return r.first + r.count <= id; });
  const bool rename = it != ranges.end() && it->first == first && it->count == count;
  if (it != ranges.end() && it->first < first + count && !rename) {
    throw Error("set_name: node " + std::to_string(first) + " already belongs to the named range '" + it->base + "'");
  }
  check_name_clash(first, count, base, numbered);
  if (rename) {
    names_.unindex(first, it->base);
    it->base = base;
    it->numbered = numbered;
    it->shape = shape;
  } else {
    ranges.insert(it, Names::Range{first, count, std::string(base), numbered, shape});
  }
  names_.index(first, base);
}

const Shape* Tape::range_shape(NodeId n) const {
  const std::vector<Names::Range>& ranges = names_.ranges;
  auto it =
      std::upper_bound(ranges.begin(), ranges.end(), n, [](NodeId id, const Names::Range& r) { return id < r.first; });
  if (it == ranges.begin()) return nullptr;
  --it;
  if (n >= it->first + it->count || it->shape.rank() == 0) return nullptr;
  return &it->shape;
}

std::string Tape::name(NodeId n) const {
  const std::vector<Names::Range>& ranges = names_.ranges;
  auto it =
      std::upper_bound(ranges.begin(), ranges.end(), n, [](NodeId id, const Names::Range& r) { return id < r.first; });
  if (it == ranges.begin()) return {};
  --it;
  if (n >= it->first + it->count) return {};
  return it->numbered ? it->base + std::to_string(n - it->first + 1) : it->base;
}

std::string Tape::slot_name(Slot s) const {
  const NodeId n = node_of(s);
  if (size(n) == 1) return name(n);
  const std::string base = name(n);
  return base.empty() ? base : base + std::to_string(s - offset(n) + 1);
}

// ---- scopes ------------------------------------------------------------------------

void Tape::push_scope(std::string_view name) {
  if (name.empty() || name.find('/') != std::string_view::npos) {
    throw Error("push_scope: a scope name must be non-empty and hold no '/', got '" + std::string(name) + "'");
  }
  std::string path = names_.scope_stack.empty()
                         ? std::string(name)
                         : names_.scope_paths[names_.scope_stack.back()] + "/" + std::string(name);
  // A lookup, not a scan: a model of n conv2d_mac entries opens n scopes.
  const auto [it, added] = names_.scope_index.try_emplace(path, static_cast<std::uint32_t>(names_.scope_paths.size()));
  const std::uint32_t index = it->second;
  if (added) names_.scope_paths.push_back(std::move(path));
  names_.scope_stack.push_back(index);
  names_.open_scope_run(static_cast<NodeId>(nodes_.size()), index);
}

void Tape::pop_scope() {
  if (names_.scope_stack.empty()) throw Error("pop_scope: no scope is open");
  names_.scope_stack.pop_back();
  names_.open_scope_run(static_cast<NodeId>(nodes_.size()),
                        names_.scope_stack.empty() ? ~0u : names_.scope_stack.back());
}

std::string Tape::scope(NodeId n) const {
  const std::vector<Names::ScopeRun>& runs = names_.scope_runs;
  auto it =
      std::upper_bound(runs.begin(), runs.end(), n, [](NodeId id, const Names::ScopeRun& r) { return id < r.first; });
  if (it == runs.begin() || std::prev(it)->path == ~0u) return {};
  return names_.scope_paths[std::prev(it)->path];
}

void Tape::Names::open_scope_run(NodeId first, std::uint32_t path) {
  if (!scope_runs.empty() && scope_runs.back().first == first) {
    scope_runs.back().path = path;  // nothing was recorded in the previous run
  } else {
    scope_runs.push_back({first, path});
  }
}

void Tape::Names::drop_from(NodeId keep) {
  for (; !ranges.empty() && ranges.back().first >= keep; ranges.pop_back())
    unindex(ranges.back().first, ranges.back().base);
  // Scopes recorded after `keep` are dropped; the scope open now stays open.
  while (!scope_runs.empty() && scope_runs.back().first >= keep) scope_runs.pop_back();
  if (!scope_stack.empty()) open_scope_run(keep, scope_stack.back());
}

}  // namespace gradpath
