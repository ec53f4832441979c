// SPDX-License-Identifier: MIT
// The formula language of hand derivations (ASCII, LaTeX, Unicode): lexer, parser, AST.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "autodiff/tape.hpp"

namespace gradpath::check {

// 1-based line and column (columns count code points, not bytes).
struct SourcePos {
  int line = 1;
  int column = 1;
};

enum class ExprKind {
  Number,      // 2, 0.5
  Name,        // a13 (also written a_13, a_{13}, \hat{a})
  Derivative,  // dL/dw1, ∂L/∂w1, \frac{\partial L}{\partial w_1}; second order when wrt2 is set:
               // d2L/dw1dw2, ∂²L/∂w1∂w2, \frac{\partial^2 L}{\partial w_1 \partial w_2}, ∂²L/∂w1²
  Sum,         // args are the terms; a subtracted term is wrapped in Negate
  Product,     // args are the factors (explicit or juxtaposed)
  Quotient,    // args = {numerator, denominator}
  Power,       // args = {base, exponent}
  Negate,      // args = {operand}
  Call,        // name = function (exp log sqrt tanh sigmoid relu abs sin cos), args = {argument};
               // a name ending in ' is the function's derivative (sigmoid'(z) = σ′(z))
  Compare,     // an Iverson bracket [a > b] (also \mathbb{1}[…], \mathbb{1}_{…}, H(a) for [a > 0]):
               // 1 when it holds, else 0; name = > < >= <=, args = {a, b}
  Ellipsis,    // … standing for unwritten terms of a sum
  IndexSum,    // \sum_{k=1}^{4} a: name = the subscript as written ("k=1", "k", "i,j"), wrt = the
               // upper bound as written ("" when none), args = {a}; expanded before it is checked
  Transpose,   // a^\top, a^T, a^{\top}, aᵀ: args = {a}; read element by element before it is checked
  Hadamard,    // a \odot b, a \circ b, a ⊙ b: the element-wise product of matrices; args are the factors
  Updated,     // w_i^*, w^{*}, w^\ast: the weight after one gradient-descent step; args = {the name}
};

// A name as written, when its subscript is more than an element number: w_i, W_{1,2},
// W[1,2], a_{2(i-1)+m}, \delta_k. The checker binds its index letters and resolves it to
// the element it names; `subscript` has the spaces and \, left out.
struct WrittenName {
  std::string base;       // w, W, a, delta
  std::string subscript;  // "i", "1,2", "2(i-1)+m"; "" for a plain name (a13, y)
  SourcePos pos;          // where the subscript starts
};

struct Expr {
  ExprKind kind = ExprKind::Number;
  double number = 0.0;
  std::string name;  // Name; Derivative: what is differentiated; Call: the function
  std::string wrt;   // Derivative: with respect to what
  std::string wrt2;  // a second derivative ∂²name/∂wrt∂wrt2: the second variable; "" for a first derivative
  std::vector<Expr> args;
  SourcePos pos;                     // where it starts (for a Derivative: where its `name` is written)
  SourcePos wrt_pos;                 // Derivative: where `wrt` is written
  SourcePos wrt2_pos;                // where `wrt2` is written (at `wrt` for ∂w_1^2)
  WrittenName written, wrt_written;  // Name and Derivative: `name` and `wrt` as written; a
                                     // function written as a bare word (H, step, max): its base
  WrittenName wrt2_written;
};

// "X \Rightarrow Y" inside a term: the term uses X; the note claims X equals Y.
struct Annotation {
  Expr value;
  Expr claim;
};

// "i = 1,\dots,9", "\forall i", "i \in \{1..9\}" after a formula: the values a free index takes.
struct IndexRange {
  std::string var;
  bool written = false;  // false for "\forall i": the range is the tensor's
  long first = 1, last = 0;
  SourcePos pos;
};

struct Formula {
  Expr lhs;
  Expr rhs;
  std::vector<Annotation> annotations;
  bool has_ellipsis = false;  // somewhere in the right side
  // "δ_k := ∂L/∂z_k" (also \coloneqq, \equiv, "let δ_k = …"): lhs names rhs from here on;
  // "δ_1 := ∂L/∂z_1 = v_1 (y - t)" also states that rhs equals `fact`.
  bool defines = false;
  std::vector<Expr> fact;  // at most one
  std::vector<IndexRange> ranges;
};

// A parse error: the message already holds "line L, column C: ..." and the source line
// with a caret under the column.
class ParseError : public Error {
 public:
  ParseError(const std::string& message, SourcePos pos) : Error(message), pos_(pos) {}
  SourcePos pos() const { return pos_; }

 private:
  SourcePos pos_;
};

// One formula's text and where in its file it starts.
struct FormulaSource {
  std::string text;
  int line = 1;
  int column = 1;
  // A row "&= c" of an align block goes on from the row before: this is that row's
  // text, whose left side the row's claim is about ("a &= b \\ &= c" claims a = c).
  std::string chained_lhs;
  SourcePos start() const { return {line, column}; }
};

// Parses one equation. `first_line` is the line `text` starts on, for messages.
Formula parse_formula(std::string_view text, int first_line = 1);
Formula parse_formula(const FormulaSource& formula);

// The formulas of a file, in order.
// - A LaTeX file (one with $$, \[, \(, $ or \begin{…} outside comments): every display
//   block ($$…$$, \[…\], equation, align, gather, multline, eqnarray, with or without
//   *); each row of a block (rows end at \\): a row that starts with "=" (after &) is
//   a claim about the left side of the row before, a row without "=" goes on with the
//   row before; every inline $…$ or \(…\) that holds "=" and a derivative. % starts a
//   comment; prose outside math is ignored.
// - Otherwise every non-empty line that does not start with % or #.
// Nothing that looks like an equation is dropped: a block that cannot be parsed is
// still returned, and reading it gives the error.
std::vector<FormulaSource> split_formulas(std::string_view file_text);

// "line L, column C: what" followed by the source line and a caret under the column.
std::string located_message(std::string_view text, int first_line, SourcePos pos, std::string_view what);
// The same for a text that starts at `start` of its file (a formula cut from a line).
std::string located_message(std::string_view text, SourcePos start, SourcePos pos, std::string_view what);

// Prints an expression with ∂ and ·, e.g. "a13·∂L/∂z2".
std::string to_string(const Expr& e);

// The names an expression mentions, in order of appearance (with repeats), each with
// where it is written; a derivative contributes all of its names.
struct NameUse {
  std::string name;
  SourcePos pos;
};
std::vector<NameUse> names_in(const Expr& e);

}  // namespace gradpath::check
