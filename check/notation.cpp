// SPDX-License-Identifier: MIT
#include "check/notation.hpp"
#include "graph/text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

namespace gradpath::check::detail {

namespace {

// A formula is checked once per value of its free indices, at most this many times; a
// sum over an index is written out to at most this many terms.
constexpr std::size_t max_instances = 10000;
// An index's value and the brackets in it are bounded, so a hostile subscript can
// neither overflow a long nor the stack.
constexpr long max_index = 1000000;
constexpr int max_index_depth = 50;
// A definition whose right side, its own definitions written out, is larger or deeper
// than this is refused: definitions of definitions could otherwise grow without bound.
constexpr std::size_t max_definition_nodes = 2000;
constexpr int max_definition_depth = 300;

// The nodes of an expression, and how deep it nests.
std::pair<std::size_t, int> extent(const Expr& e) {
  std::size_t nodes = 1;
  int depth = 0;
  for (const Expr& a : e.args) {
    const auto [n, d] = extent(a);
    nodes += n;
    depth = std::max(depth, d);
  }
  return {nodes, depth + 1};
}

bool is_letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// An index as written: numbers and single index letters with + - * ( ) and products
// written side by side, 2(i-1)+m. Evaluated with the letters' values; a letter with none
// is an error the caller names.
class IndexExpr {
 public:
  IndexExpr(std::string_view text, const std::map<std::string, long>& env) : text_(text), env_(env) {}

  // The value, or none when the text is no index or a letter has no value (`unbound`).
  std::optional<long> value() {
    const std::optional<long> v = sum();
    if (!v || i_ != text_.size()) return std::nullopt;
    return v;
  }
  std::string unbound;  // the first letter without a value

 private:
  std::optional<long> sum() {
    std::optional<long> v = product();
    while (v && i_ < text_.size() && (text_[i_] == '+' || text_[i_] == '-')) {
      const bool minus = text_[i_++] == '-';
      const std::optional<long> w = product();
      if (!w) return std::nullopt;
      v = minus ? *v - *w : *v + *w;
      if (std::abs(*v) > max_index) return std::nullopt;
    }
    return v;
  }
  std::optional<long> product() {
    std::optional<long> v = factor();
    while (v && i_ < text_.size() &&
           (text_[i_] == '*' || text_[i_] == '(' || is_letter(text_[i_]) || is_digit(text_[i_]))) {
      if (text_[i_] == '*') ++i_;
      const std::optional<long> w = factor();
      if (!w) return std::nullopt;
      v = *v * *w;
      if (std::abs(*v) > max_index) return std::nullopt;
    }
    return v;
  }
  std::optional<long> factor() {
    if (i_ >= text_.size()) return std::nullopt;
    const char c = text_[i_];
    if (c == '-') {
      ++i_;
      const std::optional<long> v = factor();
      return v ? std::optional<long>(-*v) : std::nullopt;
    }
    if (c == '(') {
      if (++depth_ > max_index_depth) return std::nullopt;
      ++i_;
      const std::optional<long> v = sum();
      --depth_;
      if (!v || i_ >= text_.size() || text_[i_] != ')') return std::nullopt;
      ++i_;
      return v;
    }
    if (is_digit(c)) {
      long v = 0;
      while (i_ < text_.size() && is_digit(text_[i_]) && v <= max_index) v = v * 10 + (text_[i_++] - '0');
      return v <= max_index ? std::optional<long>(v) : std::nullopt;
    }
    if (is_letter(c)) {
      ++i_;
      const auto it = env_.find(std::string(1, c));
      if (it == env_.end()) {
        if (unbound.empty()) unbound = std::string(1, c);
        return std::nullopt;
      }
      return it->second;
    }
    return std::nullopt;
  }

  std::string_view text_;
  const std::map<std::string, long>& env_;
  std::size_t i_ = 0;
  int depth_ = 0;
};

// The subscript split at its commas: "2(i-1)+m,2(j-1)+n" -> two indices.
std::vector<std::string> split_commas(std::string_view sub) {
  std::vector<std::string> out(1);
  int depth = 0;
  for (char c : sub) {
    depth += c == '(' ? 1 : c == ')' ? -1 : 0;
    if (c == ',' && depth == 0) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

std::string letters_of(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (is_letter(c) && out.find(c) == std::string::npos) out += c;
  }
  return out;
}

// The canonical name of a written name: a subscript of letters and digits is part of it.
std::string canonical(const WrittenName& w) {
  const bool plain = std::all_of(w.subscript.begin(), w.subscript.end(),
                                 [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
  return plain ? w.base + w.subscript : w.base + "_{" + w.subscript + "}";
}

// Each index letter of `params` in `w`'s subscript replaced by what a use writes there.
void substitute(WrittenName& w, std::string& name, const std::map<char, std::string>& by) {
  if (w.subscript.empty()) return;
  std::string out;
  for (char c : w.subscript) {
    const auto it = by.find(c);
    out += it == by.end() ? std::string(1, c) : it->second;
  }
  w.subscript = out;
  name = canonical(w);
}

void substitute_all(Expr& e, const std::map<char, std::string>& by) {
  if (e.kind == ExprKind::Name || e.kind == ExprKind::Derivative) substitute(e.written, e.name, by);
  if (e.kind == ExprKind::Derivative) substitute(e.wrt_written, e.wrt, by);
  if (!e.wrt2.empty()) substitute(e.wrt2_written, e.wrt2, by);
  for (Expr& a : e.args) substitute_all(a, by);
}

}  // namespace

[[noreturn]] void fail(const FormulaSource& src, SourcePos pos, const std::string& what) {
  throw ParseError(located_message(src.text, src.start(), pos, what), pos);
}

std::string binding_text(const Binding& b) {
  return graph::join(b, ", ", [](const auto& bound) { return bound.first + " = " + std::to_string(bound.second); });
}

std::string bindings_text(std::span<const Binding> bindings) {
  if (bindings.empty()) return "";
  const std::string letters = graph::join(bindings[0], ", ", [](const auto& bound) { return bound.first; });
  const std::string values = graph::join(bindings, ", ", [](const Binding& b) {
    const std::string v = graph::join(b, ", ", [](const auto& bound) { return std::to_string(bound.second); });
    return b.size() > 1 ? "(" + v + ")" : v;
  });
  return bindings[0].size() > 1 ? "(" + letters + ") = " + values : letters + " = " + values;
}

Report by_binding(std::vector<Report> reports, const std::vector<Binding>& bindings) {
  auto rank = [](Verdict v) {
    return v == Verdict::Error       ? 4
           : v == Verdict::Fail      ? 3
           : v == Verdict::Uncovered ? 2
           : v == Verdict::Partial   ? 1
                                     : 0;
  };
  std::size_t worst = 0;
  for (std::size_t k = 0; k < reports.size(); ++k) {
    if (rank(reports[k].verdict) > rank(reports[worst].verdict)) worst = k;
  }
  std::vector<Binding> same;
  for (std::size_t k = 0; k < reports.size(); ++k) {
    if (reports[k].verdict == reports[worst].verdict) same.push_back(bindings[k]);
  }
  Report r = std::move(reports[worst]);
  if (r.verdict == Verdict::Pass) return r;
  const std::string at = binding_text(bindings[worst]);
  std::string prefix = "for " + bindings_text(same);
  if (same.size() > 1) prefix += " (shown at " + at + ")";
  if (r.verdict == Verdict::Error) r.error = prefix + ": " + r.error;
  for (std::size_t k = 0; k < r.findings.size(); ++k) {
    r.findings[k].message = (k == 0 ? prefix : "at " + at) + ": " + r.findings[k].message;
  }
  return r;
}

// ---- what the network has -------------------------------------------------------------

// A name of the network: exactly, or in another case when only one name matches.
bool Notation::known(const std::string& name) const {
  std::size_t folded = 0;
  const std::string wanted = lower(name);
  for (const auto& [n, slot] : session_.names()) {
    if (n == name) return true;
    folded += lower(n) == wanted;
  }
  return folded == 1;
}

// H(z), step(z), max(a, b), relu(z) written where the network has a node of that name
// could be a product with that node: refused rather than guessed.
void Notation::no_name_as_function(const Expr& e, const FormulaSource& src) const {
  const bool function = e.kind != ExprKind::Name && e.kind != ExprKind::Derivative && !e.written.base.empty();
  if (function && known(e.written.base)) {
    const std::string& w = e.written.base;
    fail(src, e.pos,
         w + " is a node of the network, so " + w + "(…) could be a product: write " + w + "·(…) for the product" +
             (w == "H" || w == "step" ? ", [z > 0] for the step function" : ", \\" + lower(w) + " for the function"));
  }
  for (const Expr& a : e.args) no_name_as_function(a, src);
}

// An index letter that is also a node of the network (t, b) would be read two ways.
void Notation::no_name_as_index(const std::string& letter, SourcePos pos, const FormulaSource& src) const {
  if (known(letter)) {
    fail(src, pos, letter + " is a node of the network and cannot be an index too: use another letter (i, j, k, m, n)");
  }
}

// How many elements the tensor `base` has: base1, base2, … on the tape, spelled exactly
// as written; in another case only when the network has no tensor of that exact spelling
// (u and U are two tensors when both are there).
std::size_t Notation::elements(const std::string& base) const {
  auto exactly = [&](const std::string& name) {
    return std::any_of(session_.names().begin(), session_.names().end(),
                       [&](const auto& n) { return n.first == name; });
  };
  std::size_t n = 0;
  while (exactly(base + std::to_string(n + 1))) ++n;
  if (n > 0) return n;
  while (known(base + std::to_string(n + 1))) ++n;
  return n;
}

// (rows, columns) of `base` when some op reads it (or writes it) with two dimensions
// other than 1, as the diagnosis does in matrix_index.
std::optional<std::pair<std::size_t, std::size_t>> Notation::matrix_shape(const std::string& base) const {
  const std::size_t n = elements(base);
  if (n == 0) return std::nullopt;
  const std::string first = base + "1";
  std::optional<Slot> slot, folded;
  for (const auto& [name, s] : session_.names()) {
    if (name == first) slot = s;
    if (lower(name) == lower(first)) folded = s;
  }
  if (!slot) slot = folded;
  const Tape& t = session_.tape();
  auto matrix = [&](const Shape& shape, Slot offset) -> std::optional<std::pair<std::size_t, std::size_t>> {
    if (offset != *slot || shape.size() != n) return std::nullopt;
    // Leading axes of 1 (an image's batch and channel) fall away; the last two stay even
    // when one is 1, so a 1 x 3 weight reads W_{1,2}.
    std::size_t first = 0;
    while (shape.rank() - first > 2 && shape[first] == 1) ++first;
    if (shape.rank() - first != 2) return std::nullopt;
    return std::pair{shape[first], shape[first + 1]};
  };
  if (const Shape* leaf = t.range_shape(t.node_of(*slot))) {  // a float64 leaf, conv2d_mac's outputs
    if (auto m = matrix(*leaf, *slot)) return m;
  }
  for (const TensorRecord& r : t.tensor_records()) {
    if (auto m = matrix(r.shape, r.output)) return m;
    for (const TensorArg& a : t.tensor_args(r)) {
      if (auto m = matrix(a.shape, a.offset)) return m;
    }
  }
  return std::nullopt;
}

// Whether a written name is read through its indices rather than as the name it spells:
// its subscript is more than letters and digits, or its letters are index letters with
// values, or the name it spells is none of the network's while its base is a tensor.
bool Notation::indexed(const WrittenName& w, const std::string& name, const Env& env) const {
  if (w.subscript.empty()) return false;
  if (name != w.base + w.subscript) return true;
  const std::string letters = letters_of(w.subscript);
  const bool all_bound = !letters.empty() && std::all_of(letters.begin(), letters.end(),
                                                         [&](char c) { return env.contains(std::string(1, c)); });
  if (all_bound) return true;
  return !known(name) && elements(w.base) > 0;
}

// The indices of a written name: one per comma; W_{ij} and W_{12} are two when W is a
// matrix (the name W12 spelled out wins: a_{13} is a13, as the note numbers its image).
std::vector<std::string> Notation::index_texts(const WrittenName& w, const std::string& name) const {
  std::vector<std::string> parts = split_commas(w.subscript);
  if (parts.size() != 1 || w.subscript.size() != 2 || !matrix_shape(w.base)) return parts;
  const bool letters = is_letter(w.subscript[0]) && is_letter(w.subscript[1]);
  const bool digits = is_digit(w.subscript[0]) && is_digit(w.subscript[1]) && !known(name);
  if (letters || digits) return {w.subscript.substr(0, 1), w.subscript.substr(1)};
  return parts;
}

// W_{12} where W has an element 12 and is read as a matrix with a row 1 and a column 2:
// the element's number is taken (a_{13} is a13, as the note numbers its image), and said.
void Notation::ambiguous_readings(const Expr& e, std::vector<std::string>& notes) const {
  auto side = [&](const WrittenName& w, const std::string& name) {
    const std::string& sub = w.subscript;
    if (sub.size() != 2 || !is_digit(sub[0]) || !is_digit(sub[1]) || sub[0] == '0' || !known(name)) return;
    const auto m = matrix_shape(w.base);
    if (!m || static_cast<std::size_t>(sub[0] - '0') > m->first || static_cast<std::size_t>(sub[1] - '0') > m->second) {
      return;
    }
    const std::string note = w.base + "_{" + sub + "} is read as " + name + ", element " + sub + " of " + w.base +
                             " in row-major order; write " + w.base + "_{" + sub.substr(0, 1) + "," + sub.substr(1) +
                             "} for row " + sub.substr(0, 1) + ", column " + sub.substr(1);
    if (std::find(notes.begin(), notes.end(), note) == notes.end()) notes.push_back(note);
  };
  if (e.kind == ExprKind::Name || e.kind == ExprKind::Derivative) side(e.written, e.name);
  if (e.kind == ExprKind::Derivative) side(e.wrt_written, e.wrt);
  if (!e.wrt2.empty()) side(e.wrt2_written, e.wrt2);
  for (const Expr& a : e.args) ambiguous_readings(a, notes);
}

// ---- abbreviations ------------------------------------------------------------------

bool Notation::defines_new_name(const Formula& formula) const {
  if (!formula.defines || formula.lhs.kind != ExprKind::Name) return false;
  const WrittenName& w = formula.lhs.written;
  if (known(formula.lhs.name)) return false;
  return w.subscript.empty() || elements(w.base) == 0;
}

std::optional<Formula> Notation::define(const Formula& formula, const FormulaSource& src) {
  const Expr& lhs = formula.lhs;
  const WrittenName& w = lhs.written;
  Definition d;
  std::string key = lhs.name;
  const bool digits = std::all_of(w.subscript.begin(), w.subscript.end(), [](char c) { return is_digit(c); });
  if (!digits) {
    for (const std::string& part : split_commas(w.subscript)) {
      if (part.empty() || !std::all_of(part.begin(), part.end(), [](char c) { return is_letter(c); })) {
        fail(src, w.pos, "a definition's subscript is index letters (δ_k, W_{i,j}) or a number (δ_1)");
      }
      for (char c : part) d.params.emplace_back(1, c);
    }
    key = w.base;
  }
  d.body = expand_definitions(formula.rhs);
  if (const auto [nodes, depth] = extent(d.body); nodes > max_definition_nodes || depth > max_definition_depth) {
    fail(src, lhs.pos,
         "the definition of " + lhs.name + ", with the definitions it uses written out, is too large (" +
             std::to_string(nodes) + " terms and factors): write it with fewer nested definitions");
  }
  // It must read at every value of its letters, so a use never meets an error located
  // in another formula.
  if (d.params.empty()) {
    if (matrix_form(d.body)) {
      dims(d.body, src);  // δ := ∂L/∂z: a matrix, read element by element where it is used
    } else {
      bind(d.body, {}, src);
    }
  } else {
    Expr sum;
    sum.kind = ExprKind::IndexSum;
    sum.pos = lhs.pos;
    sum.written.pos = w.pos;
    sum.name = graph::join(d.params, ",");
    sum.args.push_back(d.body);
    expand_sum(sum, {}, src);
  }
  definitions_[key] = std::move(d);
  if (formula.fact.empty()) return std::nullopt;
  Formula fact;
  fact.lhs = formula.rhs;
  fact.rhs = formula.fact[0];
  fact.has_ellipsis = formula.has_ellipsis;
  fact.annotations = formula.annotations;
  fact.ranges = formula.ranges;
  return fact;
}

// Every use of a defined name replaced by its right side, its index letters by what the
// use writes in their place.
Expr Notation::expand_definitions(const Expr& e) const {
  if (e.kind == ExprKind::Name) {
    if (auto it = definitions_.find(e.name); it != definitions_.end() && it->second.params.empty()) {
      return it->second.body;
    }
    const auto it = definitions_.find(e.written.base);
    if (!e.written.subscript.empty() && it != definitions_.end() && !it->second.params.empty()) {
      const std::vector<std::string>& params = it->second.params;
      std::vector<std::string> parts = split_commas(e.written.subscript);
      if (parts.size() == 1 && params.size() > 1 && parts[0].size() == params.size()) {
        std::vector<std::string> each;
        for (char c : parts[0]) each.emplace_back(1, c);
        parts = each;
      }
      if (parts.size() == params.size()) {
        std::map<char, std::string> by;
        for (std::size_t k = 0; k < params.size(); ++k) {
          by[params[k][0]] = parts[k].size() == 1 ? parts[k] : "(" + parts[k] + ")";
        }
        Expr body = it->second.body;
        substitute_all(body, by);
        return body;
      }
    }
    return e;
  }
  Expr out = e;
  for (Expr& a : out.args) a = expand_definitions(a);
  return out;
}

// ---- the update rule ----------------------------------------------------------------------

// w^* on the left side of a formula is the weight after one gradient-descent step: w - lr ·
// ∂loss/∂w, with the learning rate and the loss of the check's options, or the number the
// file defines as \alpha or \eta and the tape's last node.
Expr Notation::gradient_step(const Expr& e, bool whole_left_side, const FormulaSource& src) const {
  if (e.kind != ExprKind::Updated) {
    Expr out = e;
    for (Expr& a : out.args) a = gradient_step(a, false, src);
    return out;
  }
  if (!whole_left_side) {
    fail(src, e.pos,
         "an updated weight (w^*) is the left side of an update rule: w_i^* = w_i - \\alpha \\frac{\\partial "
         "L}{\\partial w_i}");
  }
  const CheckOptions& options = session_.options();
  std::optional<double> rate = options.learning_rate;
  for (const char* name : {"alpha", "eta"}) {
    const auto it = definitions_.find(name);
    if (!rate && it != definitions_.end() && it->second.params.empty() && it->second.body.kind == ExprKind::Number) {
      rate = it->second.body.number;
    }
  }
  if (!rate) {
    fail(src, e.pos,
         "the update rule is checked against one gradient-descent step, which needs the learning rate: define it "
         "before the rule ($$\\alpha := 0.1$$) or give it to the checker (gradpath check --lr 0.1)");
  }
  const std::string loss = session_.loss_name();
  if (loss.empty()) {
    fail(src, e.pos,
         "the update rule steps down the loss, and the network's last node is no named scalar: name the loss");
  }
  const Expr& weight = e.args[0];
  Expr derivative;
  derivative.kind = ExprKind::Derivative;
  derivative.name = loss;
  derivative.written.base = loss;
  derivative.pos = weight.pos;
  derivative.wrt = weight.name;
  derivative.wrt_written = weight.written;
  derivative.wrt_pos = weight.pos;
  Expr lr;
  lr.kind = ExprKind::Number;
  lr.number = *rate;
  lr.pos = e.pos;
  Expr step;
  step.kind = ExprKind::Product;
  step.pos = e.pos;
  step.args = {lr, derivative};
  Expr negated;
  negated.kind = ExprKind::Negate;
  negated.pos = e.pos;
  negated.args = {step};
  Expr out;
  out.kind = ExprKind::Sum;
  out.pos = e.pos;
  out.args = {weight, negated};
  return out;
}

// ---- free indices and their ranges -----------------------------------------------------

void Notation::free_letters(const Expr& e, const Env& bound,
                            std::vector<std::pair<std::string, SourcePos>>& out) const {
  auto side = [&](const WrittenName& w, const std::string& name) {
    if (!indexed(w, name, bound)) return;
    for (char c : letters_of(w.subscript)) {
      const std::string l(1, c);
      const bool seen = std::any_of(out.begin(), out.end(), [&](const auto& f) { return f.first == l; });
      if (!bound.contains(l) && !seen) out.emplace_back(l, w.pos);
    }
  };
  if (e.kind == ExprKind::Name || e.kind == ExprKind::Derivative) side(e.written, e.name);
  if (e.kind == ExprKind::Derivative) side(e.wrt_written, e.wrt);
  if (!e.wrt2.empty()) side(e.wrt2_written, e.wrt2);
  if (e.kind == ExprKind::IndexSum) {
    Env inner = bound;
    for (const std::string& part : split_commas(e.name)) {
      if (!part.empty()) inner[part.substr(0, 1)] = 1;
    }
    free_letters(e.args[0], inner, out);
    return;
  }
  for (const Expr& a : e.args) free_letters(a, bound, out);
}

// The ranges `letter` has where it is an index by itself: 1..n in w_i (w has n
// elements), 1..rows and 1..columns in W_{i,j}.
void Notation::ranges_of(const std::string& letter, const Expr& e, std::vector<Range>& out) const {
  auto side = [&](const WrittenName& w, const std::string& name) {
    if (!indexed(w, name, {{letter, 1}})) return;
    const std::vector<std::string> parts = index_texts(w, name);
    for (std::size_t p = 0; p < parts.size(); ++p) {
      if (parts[p] != letter) continue;
      const std::string where = w.base + "_" + (w.subscript.size() == 1 ? w.subscript : "{" + w.subscript + "}");
      const auto n = static_cast<long>(elements(w.base));
      if (parts.size() == 1) {
        out.push_back({1, n, n > 0 ? where : "unknown name '" + w.base + "' in " + where, w.pos});
      } else if (const auto m = matrix_shape(w.base); m && parts.size() == 2) {
        out.push_back({1, static_cast<long>(p == 0 ? m->first : m->second), where, w.pos});
      } else {
        out.push_back({1, 0,
                       where + " has " + std::to_string(parts.size()) + " indices, but no op of the network reads " +
                           w.base + " as a matrix: write its element number, " + w.base + "_{k}",
                       w.pos});
      }
    }
  };
  if (e.kind == ExprKind::Name || e.kind == ExprKind::Derivative) side(e.written, e.name);
  if (e.kind == ExprKind::Derivative) side(e.wrt_written, e.wrt);
  if (!e.wrt2.empty()) side(e.wrt2_written, e.wrt2);
  for (const Expr& a : e.args) ranges_of(letter, a, out);
}

// The one range every bare use of `letter` gives; an error when none does or two differ.
Notation::Range Notation::range_of(const std::string& letter, SourcePos pos, const std::vector<const Expr*>& in,
                                   const FormulaSource& src) const {
  std::vector<Range> ranges;
  for (const Expr* e : in) ranges_of(letter, *e, ranges);
  if (ranges.empty()) {
    fail(src, pos,
         "the range of the index " + letter + " cannot be read from the tensors it indexes: write it (" + letter +
             " = 1,\\dots,9 after the formula, or \\sum_{" + letter + "=1}^{4})");
  }
  for (const Range& r : ranges) {
    if (r.last == 0) fail(src, r.pos, r.where);
  }
  for (const Range& r : ranges) {
    if (r.last != ranges[0].last) {
      fail(src, pos,
           "the index " + letter + " runs over 1.." + std::to_string(ranges[0].last) + " in " + ranges[0].where +
               " but 1.." + std::to_string(r.last) + " in " + r.where + ": write its range (" + letter +
               " = 1,\\dots," + std::to_string(std::min(r.last, ranges[0].last)) + ")");
    }
  }
  if (ranges[0].last < 1) fail(src, pos, "the index " + letter + " indexes a tensor with no elements");
  return ranges[0];
}

// ---- binding ----------------------------------------------------------------------------

// The element a written name means with its index letters' values: w_i at i = 2 is w2,
// W_{1,2} is W2 when W has 2 columns (row-major, from 1).
std::string Notation::element(const WrittenName& w, const std::string& name, SourcePos pos, const Env& env,
                              const FormulaSource& src) const {
  std::string written = w.base + "_{" + w.subscript + "}";
  std::string at_values;  // " at i = 10": the letters' values, for a message
  for (char c : letters_of(w.subscript)) {
    if (const auto it = env.find(std::string(1, c)); it != env.end()) {
      at_values += (at_values.empty() ? " at " : ", ") + it->first + " = " + std::to_string(it->second);
    }
  }
  written += at_values;
  const std::size_t n = elements(w.base);
  if (n == 0) {
    fail(src, pos, "unknown name '" + w.base + "' in " + written + ": no tensor of the network is called " + w.base);
  }
  std::vector<long> at;
  for (const std::string& part : index_texts(w, name)) {
    // W_{ij} is two indices, never i·j: on a tensor not read as a matrix it is refused.
    if (part.size() > 1 && std::all_of(part.begin(), part.end(), [](char c) { return is_letter(c); })) {
      fail(src, w.pos,
           written + " reads as " + std::to_string(part.size()) + " indices, but no op of the network reads " + w.base +
               " as a matrix: write its element number, " + w.base + "_{k}");
    }
    IndexExpr index(part, env);
    const std::optional<long> v = index.value();
    if (!v && !index.unbound.empty()) {
      fail(src, w.pos, "the index letter " + index.unbound + " in " + written + " has no value here");
    }
    if (!v) fail(src, w.pos, "cannot read the index '" + part + "' of " + written + ": write a_{2(i-1)+m}, W_{i,j}");
    at.push_back(*v);
  }
  auto values = [&] { return graph::join(at, ",", [](long v) { return std::to_string(v); }); };
  if (at.size() == 1) {
    if (at[0] < 1 || static_cast<std::size_t>(at[0]) > n) {
      fail(src, w.pos,
           written + " is element " + std::to_string(at[0]) + " of " + w.base + ", which has elements 1.." +
               std::to_string(n));
    }
    return w.base + std::to_string(at[0]);
  }
  const auto shape = matrix_shape(w.base);
  if (at.size() != 2 || !shape) {
    fail(src, w.pos,
         written + " has " + std::to_string(at.size()) + " indices, but no op of the network reads " + w.base +
             " as a matrix: write its element number, " + w.base + "_{k} (k = 1.." + std::to_string(n) + ")");
  }
  const auto [rows, cols] = *shape;
  if (at[0] < 1 || at[1] < 1 || static_cast<std::size_t>(at[0]) > rows || static_cast<std::size_t>(at[1]) > cols) {
    fail(src, w.pos,
         written + " is (" + values() + "), outside " + w.base + "'s " + std::to_string(rows) + "×" +
             std::to_string(cols));
  }
  return w.base + std::to_string((at[0] - 1) * static_cast<long>(cols) + at[1]);
}

// ∂L/∂δ_1 where δ_k is a definition: a derivative is of and by the network's nodes.
void Notation::no_definition_differentiated(const WrittenName& w, const std::string& name, SourcePos pos,
                                            const FormulaSource& src) const {
  const auto by_base = definitions_.find(w.base);
  const bool defined = definitions_.contains(name) ||
                       (!w.subscript.empty() && by_base != definitions_.end() && !by_base->second.params.empty());
  if (defined) {
    fail(src, pos,
         name + " is a definition, not a node of the network: write the derivative of the node it stands for");
  }
}

// `e` with every indexed name resolved at `env` and every sum over an index written out;
// a sum that is a term of a sum gives its terms to that sum.
Expr Notation::bind(const Expr& e, const Env& env, const FormulaSource& src) const {
  Expr out = e;
  if (e.kind == ExprKind::Derivative) {
    no_definition_differentiated(e.written, e.name, e.pos, src);
    no_definition_differentiated(e.wrt_written, e.wrt, e.wrt_pos, src);
    if (!e.wrt2.empty()) no_definition_differentiated(e.wrt2_written, e.wrt2, e.wrt2_pos, src);
  }
  if (e.kind == ExprKind::Name || e.kind == ExprKind::Derivative) {
    if (indexed(e.written, e.name, env)) out.name = element(e.written, e.name, e.pos, env, src);
    if (e.kind == ExprKind::Derivative && indexed(e.wrt_written, e.wrt, env)) {
      out.wrt = element(e.wrt_written, e.wrt, e.wrt_pos, env, src);
    }
    if (!e.wrt2.empty() && indexed(e.wrt2_written, e.wrt2, env)) {
      out.wrt2 = element(e.wrt2_written, e.wrt2, e.wrt2_pos, env, src);
    }
    return out;
  }
  if (e.kind == ExprKind::IndexSum) {
    std::vector<Expr> terms = expand_sum(e, env, src);
    if (terms.size() == 1) return std::move(terms[0]);
    out = Expr();
    out.kind = ExprKind::Sum;
    out.pos = e.pos;
    out.args = std::move(terms);
    return out;
  }
  out.args.clear();
  for (const Expr& a : e.args) {
    if (e.kind == ExprKind::Sum && a.kind == ExprKind::IndexSum) {
      for (Expr& t : expand_sum(a, env, src)) out.args.push_back(std::move(t));
    } else {
      out.args.push_back(bind(a, env, src));
    }
  }
  return out;
}

// The terms of \sum_{k=1}^{4} a_k: the summand at each value, in order; \sum_{i,j} runs
// over both, i slowest. A range not written is the one the summand's tensors give.
std::vector<Expr> Notation::expand_sum(const Expr& sum, const Env& env, const FormulaSource& src) const {
  struct Index {
    std::string letter;
    long first, last;
  };
  std::vector<Index> indices;
  const std::vector<std::string> parts = split_commas(sum.name);
  for (const std::string& part : parts) {
    const std::size_t eq = part.find('=');
    const std::string letter = part.substr(0, eq);
    if (letter.size() != 1 || !is_letter(letter[0])) {
      fail(src, sum.written.pos, "a sum runs over index letters: \\sum_k, \\sum_{k=1}^{4}, \\sum_{i,j}");
    }
    if (env.contains(letter)) fail(src, sum.written.pos, "the index " + letter + " is already in use here");
    no_name_as_index(letter, sum.written.pos, src);
    Index index{letter, 1, 0};
    if (eq != std::string::npos) {
      const std::optional<long> first = IndexExpr(part.substr(eq + 1), env).value();
      if (!first) fail(src, sum.written.pos, "the first value of " + letter + " is a whole number: \\sum_{k=1}^{4}");
      index.first = *first;
    }
    if (!sum.wrt.empty()) {
      if (parts.size() != 1) fail(src, sum.wrt_pos, "one upper bound for two indices: write \\sum_{i,j} without it");
      const std::optional<long> last = IndexExpr(sum.wrt, env).value();
      if (!last) fail(src, sum.wrt_pos, "the last value of " + letter + " is a whole number: \\sum_{k=1}^{4}");
      index.last = *last;
    } else {
      index.last = range_of(letter, sum.written.pos, {&sum.args[0]}, src).last;
    }
    if (index.last < index.first) fail(src, sum.written.pos, "the sum over " + letter + " has no terms");
    indices.push_back(index);
  }
  std::size_t count = 1;
  for (const Index& index : indices) {
    count = std::min(count * static_cast<std::size_t>(index.last - index.first + 1), max_instances + 1);
  }
  if (count > max_instances) {
    fail(src, sum.written.pos,
         "the sum has more than " + std::to_string(max_instances) + " terms: that many are not written out");
  }
  std::vector<Expr> terms;
  Env inner = env;
  auto each = [&](auto&& self, std::size_t k) -> void {
    if (k == indices.size()) {
      const Expr& body = sum.args[0];
      if (body.kind != ExprKind::IndexSum) {
        terms.push_back(bind(body, inner, src));
        return;
      }
      for (Expr& t : expand_sum(body, inner, src)) terms.push_back(std::move(t));  // \sum_i \sum_j: one sum
      return;
    }
    for (long v = indices[k].first; v <= indices[k].last; ++v) {
      inner[indices[k].letter] = v;
      self(self, k + 1);
    }
  };
  each(each, 0);
  return terms;
}

std::vector<Notation::Instance> Notation::instances(const Formula& formula, const FormulaSource& src) const {
  Formula f = formula;
  f.lhs = expand_definitions(formula.lhs);
  f.rhs = expand_definitions(formula.rhs);
  for (Annotation& a : f.annotations) {
    a.value = expand_definitions(a.value);
    a.claim = expand_definitions(a.claim);
  }
  f.lhs = gradient_step(f.lhs, true, src);
  f.rhs = gradient_step(f.rhs, false, src);
  if (matrix_form(f.lhs) || matrix_form(f.rhs)) {
    std::string transposed = element_wise(f, src);
    if (!transposed.empty()) return {Instance{f, {}, {}, std::move(transposed)}};
    f.lhs = expand_definitions(f.lhs);  // δ_i where δ_k := … was written bare
    f.rhs = expand_definitions(f.rhs);
  }
  std::vector<const Expr*> parts{&f.lhs, &f.rhs};
  for (const Annotation& a : f.annotations) parts.insert(parts.end(), {&a.value, &a.claim});
  std::vector<std::pair<std::string, SourcePos>> letters;
  std::vector<std::string> notes;
  for (const Expr* e : parts) {
    no_name_as_function(*e, src);
    free_letters(*e, {}, letters);
    ambiguous_readings(*e, notes);
  }
  for (const auto& [letter, pos] : letters) no_name_as_index(letter, pos, src);
  for (const IndexRange& r : f.ranges) {
    const bool free = std::any_of(letters.begin(), letters.end(), [&](const auto& l) { return l.first == r.var; });
    if (!free) fail(src, r.pos, "the formula has no free index " + r.var);
  }
  std::vector<Range> ranges;
  for (const auto& letter : letters) {
    const auto it =
        std::find_if(f.ranges.begin(), f.ranges.end(), [&](const IndexRange& r) { return r.var == letter.first; });
    if (it != f.ranges.end() && it->written) {
      ranges.push_back({it->first, it->last, "", it->pos});
    } else {
      ranges.push_back(range_of(letter.first, letter.second, parts, src));
    }
  }
  std::size_t count = 1;
  for (const Range& r : ranges) {
    count = std::min(count * static_cast<std::size_t>(std::max(0L, r.last - r.first + 1)), max_instances + 1);
  }
  if (count > max_instances) {
    fail(src, letters[0].second,
         "the free indices take more than " + std::to_string(max_instances) +
             " values together: write a smaller range (i = 1,\\dots,9)");
  }
  std::vector<Instance> out;
  Env env;
  Binding binding;
  auto each = [&](auto&& self, std::size_t k) -> void {
    if (k == letters.size()) {
      Instance in{f, binding, notes, {}};
      in.formula.lhs = bind(f.lhs, env, src);
      in.formula.rhs = bind(f.rhs, env, src);
      for (Annotation& a : in.formula.annotations) {
        a.value = bind(a.value, env, src);
        a.claim = bind(a.claim, env, src);
      }
      in.formula.ranges.clear();
      out.push_back(std::move(in));
      return;
    }
    for (long v = ranges[k].first; v <= ranges[k].last; ++v) {
      env[letters[k].first] = v;
      binding.emplace_back(letters[k].first, v);
      self(self, k + 1);
      binding.pop_back();
    }
  };
  each(each, 0);
  return out;
}

}  // namespace gradpath::check::detail
