// SPDX-License-Identifier: MIT
// The notation derivations are written in, read into the plain formulas the checker
// compares: abbreviations (δ_k := ∂L/∂z_k) replaced, index letters bound, indexed names
// (w_i, W_{1,2}, W[1,2], W_{12}) resolved to the elements they name, sums over an index
// (\sum_{k=1}^{4}, Σ_k, \sum_{i,j}) written out, and a formula with a free index made one
// formula per value of it.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "check/formula.hpp"
#include "check/session.hpp"

namespace gradpath::check::detail {

// Index letters and their values: i = 2, j = 3.
using Binding = std::vector<std::pair<std::string, long>>;

class Notation {
 public:
  explicit Notation(const Session& session) : session_(session) {}

  // A formula as the checker reads it, and the values of the free indices it was made
  // with (empty when it has none).
  struct Instance {
    Formula formula;
    Binding binding;
    std::vector<std::string> notes;  // which reading of an ambiguous name was taken
    // Set when the formula is read but cannot hold whatever the numbers: its matrix form
    // has the transposed shape of its left side. The message says so.
    std::string transposed;
  };
  // One instance per value of the formula's free indices, in order. A ParseError where a
  // name, an index or a range cannot be read.
  std::vector<Instance> instances(const Formula& formula, const FormulaSource& src) const;

  // Whether `formula` ("δ_k := …", "let a = …") names something new; false when its left
  // side is already a name of the network, so it is a claim to check.
  bool defines_new_name(const Formula& formula) const;
  // Remembers the definition for the formulas after it, once its right side reads at
  // every value of its index letters. What it states besides is returned to be checked
  // (δ_1 := ∂L/∂z_1 = v_1(y - t) states ∂L/∂z_1 = v_1(y - t)).
  std::optional<Formula> define(const Formula& formula, const FormulaSource& src);

 private:
  struct Definition {
    std::vector<std::string> params;  // the index letters of its left side
    Expr body;
  };
  using Env = std::map<std::string, long>;
  // The shape of an expression in the matrix form: a tensor written bare is a matrix, or
  // a column vector (rows x 1); 1 x 1 is a scalar.
  struct Dims {
    std::size_t rows = 1, cols = 1;
    bool scalar() const { return rows == 1 && cols == 1; }
    bool operator==(const Dims&) const = default;
  };
  struct Range {
    long first = 1, last = 0;
    std::string where;  // the name it is read from: "w_i"; why it cannot be read when last is 0
    SourcePos pos;      // where that name's subscript is
  };

  bool known(const std::string& name) const;
  void no_name_as_function(const Expr& e, const FormulaSource& src) const;
  void no_name_as_index(const std::string& letter, SourcePos pos, const FormulaSource& src) const;
  std::size_t elements(const std::string& base) const;
  std::optional<std::pair<std::size_t, std::size_t>> matrix_shape(const std::string& base) const;
  bool indexed(const WrittenName& w, const std::string& name, const Env& env) const;
  std::vector<std::string> index_texts(const WrittenName& w, const std::string& name) const;

  void ambiguous_readings(const Expr& e, std::vector<std::string>& notes) const;
  Expr expand_definitions(const Expr& e) const;
  void free_letters(const Expr& e, const Env& bound, std::vector<std::pair<std::string, SourcePos>>& out) const;
  void ranges_of(const std::string& letter, const Expr& e, std::vector<Range>& out) const;
  Range range_of(const std::string& letter, SourcePos pos, const std::vector<const Expr*>& in,
                 const FormulaSource& src) const;
  std::string element(const WrittenName& w, const std::string& name, SourcePos pos, const Env& env,
                      const FormulaSource& src) const;
  void no_definition_differentiated(const WrittenName& w, const std::string& name, SourcePos pos,
                                    const FormulaSource& src) const;
  Expr bind(const Expr& e, const Env& env, const FormulaSource& src) const;
  Expr gradient_step(const Expr& e, bool whole_left_side, const FormulaSource& src) const;

  // The matrix form (check/matrix.cpp).
  bool matrix_form(const Expr& e) const;
  std::optional<Dims> bare_tensor(const Expr& name, const FormulaSource& src) const;
  Dims dims(const Expr& e, const FormulaSource& src) const;
  Dims product_dims(const Expr& product, std::size_t factors, const FormulaSource& src) const;
  Expr entry(const Expr& e, const std::string& row, const std::string& col, std::vector<std::string>& letters,
             const FormulaSource& src) const;
  Expr product_entry(const Expr& product, std::size_t factors, const std::string& row, const std::string& col,
                     std::vector<std::string>& letters, const FormulaSource& src) const;
  std::string fresh_letter(std::vector<std::string>& letters, SourcePos pos, const FormulaSource& src) const;
  std::string element_wise(Formula& f, const FormulaSource& src) const;
  std::vector<Expr> expand_sum(const Expr& sum, const Env& env, const FormulaSource& src) const;

  const Session& session_;
  std::map<std::string, Definition> definitions_;  // by base (delta), or by whole name (delta1)
};

// A ParseError at `pos` of the formula, with its line and a caret.
[[noreturn]] void fail(const FormulaSource& src, SourcePos pos, const std::string& what);

// The report of a formula with free indices from those of its instances (one per
// binding): the worst verdict, shown at the first binding that has it, with every binding
// that has it ("for i = 2, 5, 8 (shown at i = 2): …").
Report by_binding(std::vector<Report> reports, const std::vector<Binding>& bindings);

// "i = 2, j = 3".
std::string binding_text(const Binding& binding);
// "i = 2, 5, 8" or "(i, j) = (1, 2), (2, 1)": the values of some bindings.
std::string bindings_text(std::span<const Binding> bindings);

}  // namespace gradpath::check::detail
