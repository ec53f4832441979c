// SPDX-License-Identifier: MIT
// The matrix form of a formula, ∂L/∂W = δ x^⊤, read element by element. A tensor written
// bare is a matrix (a column vector when no op reads it with two dimensions), juxtaposed
// factors multiply as matrices, ^⊤ transposes, ⊙ multiplies element-wise and a function
// applies to each element. The formula becomes one about the element (i, j) of its left
// side, ∂L/∂W_{i,j} = δ_i x_j, with free indices i and j, and a matrix product a sum over
// a new index: (W^⊤ δ)_i = Σ_k W_{k,i} δ_k. The rest of the notation checks it for every
// value of i and j, so a wrong element is named by its indices.
#include <algorithm>
#include <cctype>
#include <utility>

#include "check/notation.hpp"

namespace gradpath::check::detail {

namespace {

std::string dims_text(std::size_t rows, std::size_t cols) { return std::to_string(rows) + "×" + std::to_string(cols); }

bool has_kind(const Expr& e, ExprKind kind) {
  return e.kind == kind || std::any_of(e.args.begin(), e.args.end(), [&](const Expr& a) { return has_kind(a, kind); });
}

// A name with the subscript `sub`, spelled as the parser spells it: w_i is wi, W_{i,j} stays.
void subscript(std::string& name, WrittenName& written, const std::string& base, const std::string& sub, SourcePos at) {
  written.base = base;
  written.subscript = sub;
  written.pos = at;
  const bool plain =
      std::all_of(sub.begin(), sub.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
  name = plain ? base + sub : base + "_{" + sub + "}";
}

// The letters a formula already uses in its subscripts and sums.
void used_letters(const Expr& e, std::vector<std::string>& out) {
  for (const std::string* text : {&e.written.subscript, &e.wrt_written.subscript, &e.wrt2_written.subscript}) {
    for (char c : *text) {
      if (std::isalpha(static_cast<unsigned char>(c))) out.emplace_back(1, c);
    }
  }
  if (e.kind == ExprKind::IndexSum) {
    for (char c : e.name) {
      if (std::isalpha(static_cast<unsigned char>(c))) out.emplace_back(1, c);
    }
  }
  for (const Expr& a : e.args) used_letters(a, out);
}

// The two names of a derivative ∂of/∂wrt, each as a Name written where it is.
std::pair<Expr, Expr> derivative_names(const Expr& d) {
  Expr of, wrt;
  of.kind = wrt.kind = ExprKind::Name;
  of.name = d.name;
  of.written = d.written;
  of.pos = d.pos;
  wrt.name = d.wrt;
  wrt.written = d.wrt_written;
  wrt.pos = d.wrt_pos;
  return {of, wrt};
}

// The second variable of ∂²of/∂wrt∂wrt2 as a Name written where it is.
Expr second_variable(const Expr& d) {
  Expr wrt2;
  wrt2.kind = ExprKind::Name;
  wrt2.name = d.wrt2;
  wrt2.written = d.wrt2_written;
  wrt2.pos = d.wrt2_pos;
  return wrt2;
}

}  // namespace

// A tensor written bare (W, x, δ for δ_k := …), or a product, transpose or ⊙ of them.
bool Notation::matrix_form(const Expr& e) const {
  if (e.kind == ExprKind::Transpose || e.kind == ExprKind::Hadamard) return true;
  if (e.kind == ExprKind::Name && e.written.subscript.empty() && !known(e.name)) {
    const auto it = definitions_.find(e.name);
    if (it != definitions_.end()) return !it->second.params.empty() || matrix_form(it->second.body);
    return elements(e.name) > 1;
  }
  if (e.kind == ExprKind::Derivative) {
    const auto [of, wrt] = derivative_names(e);
    return matrix_form(of) || matrix_form(wrt) || (!e.wrt2.empty() && matrix_form(second_variable(e)));
  }
  return std::any_of(e.args.begin(), e.args.end(), [&](const Expr& a) { return matrix_form(a); });
}

// The shape of a name written bare: a tensor of the network, or a definition whose left
// side has index letters (δ for δ_k := ∂L/∂z_k is a column over k's range).
std::optional<Notation::Dims> Notation::bare_tensor(const Expr& name, const FormulaSource& src) const {
  if (!name.written.subscript.empty() || known(name.name)) return std::nullopt;
  if (const auto it = definitions_.find(name.name); it != definitions_.end() && !it->second.params.empty()) {
    const Definition& d = it->second;
    if (d.params.size() > 2) fail(src, name.pos, name.name + " has more than two indices: it is no matrix");
    std::vector<std::size_t> sizes;
    for (const std::string& letter : d.params) {
      const Range r = range_of(letter, name.pos, {&d.body}, src);
      if (r.first != 1) fail(src, name.pos, name.name + "'s index " + letter + " does not start at 1: it is no matrix");
      sizes.push_back(static_cast<std::size_t>(r.last));
    }
    return Dims{sizes[0], sizes.size() == 2 ? sizes[1] : 1};
  }
  const std::size_t n = elements(name.name);
  if (n <= 1) return std::nullopt;
  if (const auto shape = matrix_shape(name.name)) return Dims{shape->first, shape->second};
  return Dims{n, 1};
}

Notation::Dims Notation::dims(const Expr& e, const FormulaSource& src) const {
  auto same = [&](const std::vector<Expr>& args, std::string_view what) {
    Dims d;
    for (const Expr& a : args) {
      const Dims x = dims(a, src);
      if (x.scalar()) continue;
      if (!d.scalar() && x != d) {
        fail(src, a.pos,
             std::string(what) + " of a " + dims_text(d.rows, d.cols) + " and a " + dims_text(x.rows, x.cols) +
                 " matrix: their shapes must be the same");
      }
      d = x;
    }
    return d;
  };
  switch (e.kind) {
    case ExprKind::Name:
      return bare_tensor(e, src).value_or(Dims{});
    case ExprKind::Derivative: {
      const auto [of, wrt] = derivative_names(e);
      const Dims a = dims(of, src), b = dims(wrt, src);
      if (!e.wrt2.empty() && !(a.scalar() && b.scalar() && dims(second_variable(e), src).scalar())) {
        fail(src, e.pos,
             "a second derivative of a tensor or by a tensor (a Hessian) is not read in matrix form: write one "
             "element, e.g. \\frac{\\partial^2 L}{\\partial w_1 \\partial w_2}");
      }
      if (!a.scalar() && !b.scalar()) {
        fail(src, e.pos,
             "∂" + e.name + "/∂" + e.wrt +
                 " of a matrix by a matrix (a Jacobian) is not read: write one element, "
                 "e.g. \\frac{\\partial " +
                 e.name + "_1}{\\partial " + e.wrt + "_1}");
      }
      return a.scalar() ? b : a;
    }
    case ExprKind::Transpose: {
      const Dims a = dims(e.args[0], src);
      return {a.cols, a.rows};
    }
    case ExprKind::Product:
      return product_dims(e, e.args.size(), src);
    case ExprKind::Sum:
    case ExprKind::Negate:
    case ExprKind::Updated:
      return same(e.args, "a sum");
    case ExprKind::Hadamard:
      return same(e.args, "an element-wise product");
    case ExprKind::Call:
    case ExprKind::Compare:
      return same(e.args, "a function");
    case ExprKind::Quotient:
      return same(e.args, "a quotient");
    case ExprKind::Power:
      if (!dims(e.args[1], src).scalar()) fail(src, e.args[1].pos, "an exponent must be a number, not a matrix");
      return dims(e.args[0], src);
    case ExprKind::IndexSum:
    case ExprKind::Ellipsis:
      if (matrix_form(e)) fail(src, e.pos, "a sum over an index or an ellipsis is not read in the matrix form");
      return {};
    case ExprKind::Number:
      return {};
  }
  return {};
}

// The shape of the product of the first `factors` factors.
Notation::Dims Notation::product_dims(const Expr& product, std::size_t factors, const FormulaSource& src) const {
  const Dims right = dims(product.args[factors - 1], src);
  if (factors == 1) return right;
  const Dims left = product_dims(product, factors - 1, src);
  if (left.scalar()) return right;
  if (right.scalar()) return left;
  if (left.cols != right.rows) {
    const Expr& f = product.args[factors - 1];
    fail(src, f.pos,
         "cannot multiply a " + dims_text(left.rows, left.cols) + " matrix by a " + dims_text(right.rows, right.cols) +
             " one: a tensor written bare is a column, so δ x^\\top is an outer product and W^\\top δ a product "
             "with the transpose; \\odot multiplies element by element");
  }
  return {left.rows, right.cols};
}

std::string Notation::fresh_letter(std::vector<std::string>& letters, SourcePos pos, const FormulaSource& src) const {
  for (const char* candidate : {"i", "j", "k", "l", "m", "n", "p", "q", "r", "s", "u", "v"}) {
    if (std::find(letters.begin(), letters.end(), candidate) != letters.end() || known(candidate)) continue;
    letters.emplace_back(candidate);
    return candidate;
  }
  fail(src, pos, "the matrix form needs more index letters than the formula leaves free");
}

// The element (row, col) of `e`, whose shape is dims(e); a scalar's is itself.
Expr Notation::entry(const Expr& e, const std::string& row, const std::string& col, std::vector<std::string>& letters,
                     const FormulaSource& src) const {
  if (dims(e, src).scalar() && !has_kind(e, ExprKind::Transpose) && !has_kind(e, ExprKind::Hadamard)) return e;
  Expr out = e;
  switch (e.kind) {
    case ExprKind::Name: {
      const Dims d = dims(e, src);
      const std::string sub = d.cols == 1 ? row : row + "," + col;
      subscript(out.name, out.written, e.name, sub, e.pos);
      return out;
    }
    case ExprKind::Derivative: {
      const auto [of, wrt] = derivative_names(e);
      if (!dims(of, src).scalar()) {
        subscript(out.name, out.written, e.name, row, e.pos);
      } else {
        const Dims d = dims(wrt, src);
        subscript(out.wrt, out.wrt_written, e.wrt, d.cols == 1 ? row : row + "," + col, e.wrt_pos);
      }
      return out;
    }
    case ExprKind::Transpose:
      return entry(e.args[0], col, row, letters, src);
    case ExprKind::Product:
      return product_entry(e, e.args.size(), row, col, letters, src);
    case ExprKind::Hadamard:
      out.kind = ExprKind::Product;
      [[fallthrough]];
    case ExprKind::Sum:
    case ExprKind::Negate:
    case ExprKind::Updated:
    case ExprKind::Call:
    case ExprKind::Compare:
    case ExprKind::Quotient:
      for (Expr& a : out.args) a = entry(a, row, col, letters, src);
      return out;
    case ExprKind::Power:
      out.args[0] = entry(e.args[0], row, col, letters, src);
      out.args[1] = entry(e.args[1], "1", "1", letters, src);
      return out;
    case ExprKind::Number:
    case ExprKind::IndexSum:
    case ExprKind::Ellipsis:
      return out;
  }
  return out;
}

// The element (row, col) of the product of the first `factors` factors: a matrix
// product is a sum over a new index, an outer product (inner size 1) a single term.
Expr Notation::product_entry(const Expr& product, std::size_t factors, const std::string& row, const std::string& col,
                             std::vector<std::string>& letters, const FormulaSource& src) const {
  const Expr& last = product.args[factors - 1];
  if (factors == 1) return entry(last, row, col, letters, src);
  const Dims left = product_dims(product, factors - 1, src), right = dims(last, src);
  Expr p;
  p.kind = ExprKind::Product;
  p.pos = product.pos;
  if (left.scalar() || right.scalar()) {
    p.args.push_back(left.scalar() ? product_entry(product, factors - 1, "1", "1", letters, src)
                                   : product_entry(product, factors - 1, row, col, letters, src));
    p.args.push_back(right.scalar() ? entry(last, "1", "1", letters, src) : entry(last, row, col, letters, src));
    return p;
  }
  if (left.cols == 1) {
    p.args.push_back(product_entry(product, factors - 1, row, "1", letters, src));
    p.args.push_back(entry(last, "1", col, letters, src));
    return p;
  }
  const std::string k = fresh_letter(letters, last.pos, src);
  p.args.push_back(product_entry(product, factors - 1, row, k, letters, src));
  p.args.push_back(entry(last, k, col, letters, src));
  Expr sum;
  sum.kind = ExprKind::IndexSum;
  sum.pos = product.pos;
  sum.written.pos = product.pos;
  sum.name = k + "=1";
  sum.wrt = std::to_string(left.cols);
  sum.wrt_pos = product.pos;
  sum.args.push_back(std::move(p));
  return sum;
}

// `f` in the matrix form made a formula about one element of its left side, with free
// indices for the rows and columns. "" when done; the message when the right side is the
// transpose of the left (a formula that is read, and wrong).
std::string Notation::element_wise(Formula& f, const FormulaSource& src) const {
  if (!f.annotations.empty()) fail(src, f.lhs.pos, "an annotation (⇒) is not read in the matrix form");
  const Dims left = dims(f.lhs, src), right = dims(f.rhs, src);
  if (left != right && !right.scalar()) {
    if (left.rows == right.cols && left.cols == right.rows) {
      return "the right side is " + dims_text(right.rows, right.cols) + ", the transpose of " + to_string(f.lhs) +
             " (" + dims_text(left.rows, left.cols) + "): the factors are in the wrong order or transposed";
    }
    fail(src, f.rhs.pos,
         "the left side is " + dims_text(left.rows, left.cols) + " and the right side " +
             dims_text(right.rows, right.cols) + ": they must have the same shape");
  }
  std::vector<std::string> letters;
  used_letters(f.lhs, letters);
  used_letters(f.rhs, letters);
  for (const IndexRange& r : f.ranges) letters.push_back(r.var);
  const std::string row = left.rows > 1 ? fresh_letter(letters, f.lhs.pos, src) : "1";
  const std::string col = left.cols > 1 ? fresh_letter(letters, f.lhs.pos, src) : "1";
  f.lhs = entry(f.lhs, row, col, letters, src);
  f.rhs = entry(f.rhs, row, col, letters, src);
  return "";
}

}  // namespace gradpath::check::detail
