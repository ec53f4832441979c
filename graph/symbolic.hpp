// SPDX-License-Identifier: MIT
// Derivatives in symbols: each edge's local partial written from the names of the nodes
// (w1·a3 has partial a3 with respect to w1, σ(z1) has σ′(z1), relu(z1) has [z1 > 0]),
// and d of / d wrt as the sum over paths of their products.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "autodiff/tape.hpp"

namespace gradpath::graph {

// A number as every message and symbolic text writes it: six significant digits.
std::string number_text(double v);

// coeff · f1 · f2 · …, the factors sorted (a3, σ′(z1), [z2 > 0]).
struct Monomial {
  double coeff = 1.0;
  std::vector<std::string> factors;
};

// A sum of monomials, like terms merged: "a3·v2 - 2·a1".
struct SymbolicSum {
  std::vector<Monomial> terms;
  void add(const Monomial& m);
  std::string text() const;
};

// The partial of scalar node n with respect to its operand j in symbols, when the op
// has one and the names it needs exist: sum, add, sub and neg give their constant,
// mul the other operand's name, a function its symbol (σ σ′(z), relu [z > 0], exp exp(z),
// log 1/z), max [a ≥ b]. None for a tensor node, an unnamed operand or a function with a
// parameter (the scalar record does not keep it).
std::optional<Monomial> symbolic_partial(const Tape& tape, NodeId n, std::size_t j);

// d of / d wrt as a sum over the paths between them of the products of their symbolic
// partials; none when an edge on them has no symbolic partial or the sum would have
// more than `max_terms` terms. 0 (no terms) when no path joins them.
std::optional<SymbolicSum> symbolic_derivative(const Tape& tape, Slot of, Slot wrt, std::size_t max_terms = 8);

}  // namespace gradpath::graph
