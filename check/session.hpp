// SPDX-License-Identifier: MIT
// The checker's session over a model: the points it evaluates the graph at (the given
// point, random redraws, and draws chosen to take every branch of every piecewise node),
// name resolution, and the walks over the graph the diagnosis needs.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "check/checker.hpp"
#include "graph/graph.hpp"

namespace gradpath::check::detail {

// One point: a fresh tape built with its leaves set, and the branch every switch takes.
struct Draw {
  std::unique_ptr<Tape> tape;
  std::string where;                                         // "at the current point", "at the draw where z3 < 0"
  std::vector<std::optional<std::size_t>> taken;             // per Session::switches(), none on a tie
  std::map<Slot, std::vector<double>> grads;                 // by the slot differentiated
  std::map<std::array<Slot, 3>, double> second_derivatives;  // by (of, wrt, wrt2)

  double value(Slot s) const { return tape->value(s); }
  double derivative(Slot of, Slot wrt);
  // ∂²of/∂wrt∂wrt2, exact: one Hessian-vector product (autodiff/second_order.hpp) with
  // the leaves wrt and wrt2 as the params. `of` is a scalar, wrt and wrt2 scalar leaves.
  double second_derivative(Slot of, Slot wrt, Slot wrt2);
};

// What the draws of a formula cover: every branch of every switch its names depend on.
struct Coverage {
  std::size_t branches = 0, covered = 0;
  std::map<std::string, std::size_t> switches_by_op;  // "relu" -> 3
  std::vector<std::string> uncovered;                 // "z3 < 0", "O5 wins Z1's window"
};

class Session {
 public:
  // Builds the current point and the random redraws. An Error when the build throws or
  // records another graph at another point.
  Session(const BuildFn& build, const CheckOptions& options);

  const Tape& tape() const { return *draws_[0].tape; }
  std::size_t draw_count() const { return draws_.size(); }
  Draw& draw(std::size_t d) { return draws_[d]; }
  const CheckOptions& options() const { return options_; }
  // The name of the loss: the options', else the tape's last node when it is a named
  // scalar; "" when neither. Update rules step down it; second derivatives are of it.
  std::string loss_name() const;
  bool agree(double a, double b) const;

  // The slot a name means: exact match first, then a case-insensitive one when unique.
  // A ParseError at the name's position otherwise, with the nearest names.
  Slot resolve(const NameUse& use, const FormulaSource& src) const;
  // Every named slot, in tape order.
  const std::vector<std::pair<std::string, Slot>>& names() const { return names_; }

  // Adds draws until every branch of every switch upstream of `nodes` is taken at some
  // draw (each branch aimed at in turn by moving the leaves, then a few draws with every
  // switch aimed at a random branch, so pairs of switches differ too).
  Coverage cover(const std::vector<NodeId>& nodes);
  // The same for a comparison the formula itself makes ([z1 > 0], relu(z1)): aims at each
  // branch of `s` not taken yet. True when `s` is one of the graph's own switches.
  bool cover(const Switch& s);

  // The graph of the current point's tape: what the diagnosis walks.
  const graph::TapeGraph& graph() const { return graph_; }
  // Nodes reachable from `from` going forward (consumers), not passing through `blocked`.
  std::vector<char> reach_forward(NodeId from, const std::set<NodeId>& blocked = {}) const;
  // Nodes from which `to` is reachable, not passing through `blocked`.
  std::vector<char> reach_backward(NodeId to, const std::set<NodeId>& blocked = {}) const;
  // How a node is shown in a path: its name, else its op.
  std::string label(NodeId n) const;

 private:
  Draw build_at(const std::vector<double>& leaves, std::string where) const;
  std::vector<double> redrawn(std::uint64_t seed, double spread) const;
  // Moves the leaves from `start` until each (switch, branch) target holds, as far as they
  // go; when `first_required`, none unless the first one holds.
  std::optional<Draw> aim(const std::vector<std::pair<std::size_t, std::size_t>>& targets, std::vector<double> start,
                          const std::string& where, std::uint64_t seed, bool first_required = true) const;
  bool finite(const Tape& t) const;
  bool feeds(std::size_t s1, std::size_t s2) const;

  BuildFn build_;
  CheckOptions options_;
  std::vector<Draw> draws_;
  std::vector<double> leaves_;    // the current point's leaf values, in recording order
  std::vector<Slot> leaf_slots_;  // the slot of each
  std::vector<Switch> switches_;  // every switch of the graph, then the formulas' own
  std::size_t graph_switches_ = 0;
  std::map<Slot, Slot> kink_inputs_;                     // a relu or abs element's output -> its input
  std::set<std::pair<std::size_t, std::size_t>> tried_;  // branches aimed at already
  std::set<std::array<std::size_t, 4>> tried_pairs_;     // (switch, branch, switch, branch)
  bool mixed_ = false;
  mutable std::size_t builds_ = 0;  // tapes built so far: the work the pairs may add is bounded
  std::vector<std::pair<std::string, Slot>> names_;
  graph::TapeGraph graph_;
};

}  // namespace gradpath::check::detail
