// SPDX-License-Identifier: MIT
#include "check/session.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>

#include "autodiff/second_order.hpp"
#include "graph/branches.hpp"
#include "graph/text.hpp"

namespace gradpath::check::detail {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A branch counts as taken only this far from its boundary, relative to the leaves' scale:
// a draw on the kink (relu input 1e-15) would test nothing.
constexpr double aim_margin = 0.02;
// Per branch aimed at: Newton steps, and fresh starting points when the leaves' gradient
// vanishes (a dead relu upstream of the branch).
constexpr int aim_steps = 40, aim_starts = 6;
// A step aims this many margins past the boundary, so that the next step, made for
// another condition, does not undo it.
constexpr double overshoot = 10.0;
// Draws with every switch aimed at a random branch, after each branch is covered alone.
constexpr int mixed_draws = 12;
// Pairs of branches of two switches one upstream of the other are aimed at together (a
// relu off while the pool cell it feeds wins its window) until the session has built
// this many tapes.
constexpr std::size_t max_pair_builds = 20000;
// More branches than this upstream of one formula are not aimed at one by one.
constexpr std::size_t max_aimed_branches = 4096;

}  // namespace

double Draw::derivative(Slot of, Slot wrt) {
  auto it = grads.find(of);
  if (it == grads.end()) {
    tape->backward(tape->var_at(of));
    it = grads.emplace(of, std::vector<double>(tape->grads().begin(), tape->grads().end())).first;
  }
  return it->second[wrt];
}

double Draw::second_derivative(Slot of, Slot wrt, Slot wrt2) {
  const std::array key{of, wrt, wrt2};
  if (const auto it = second_derivatives.find(key); it != second_derivatives.end()) return it->second;
  // The column of wrt2 in the Hessian over {wrt, wrt2}: its first element is ∂²of/∂wrt∂wrt2.
  std::vector<TensorVar> params{TensorVar(tape->var_at(wrt), Shape{})};
  if (wrt2 != wrt) params.emplace_back(tape->var_at(wrt2), Shape{});
  std::vector<double> direction(params.size(), 0.0);
  direction.back() = 1.0;
  const double h = hvp(*tape, tape->var_at(of), params, direction)[0];
  second_derivatives.emplace(key, h);
  return h;
}

Session::Session(const BuildFn& build, const CheckOptions& options) : build_(build), options_(options) {
  if (options.redraws < 0) throw Error("check: redraws must be >= 0, got " + std::to_string(options.redraws));
  {
    Draw d{std::make_unique<Tape>(), "at the current point", {}, {}, {}};
    d.tape->set_leaf_values([this](std::size_t, double given) {
      leaves_.push_back(given);
      return given;
    });
    build_(*d.tape);
    d.tape->set_leaf_values({});
    draws_.push_back(std::move(d));
  }
  const Tape& t = tape();
  for (NodeId n = 0; n < t.node_count(); ++n) {
    if (is_leaf(t.op(n)) && t.size(n) == 1) leaf_slots_.push_back(t.offset(n));
    for (Slot s = t.offset(n); s < t.offset(n) + t.size(n); ++s) {
      std::string name = t.slot_name(s);
      if (!name.empty()) names_.emplace_back(std::move(name), s);
    }
  }
  if (leaf_slots_.size() != leaves_.size()) {
    throw Error("check: the model has float32 leaves; check derivations on a float64 build of it");
  }
  graph_ = graph::view(t);
  switches_ = graph::switches(t);
  graph_switches_ = switches_.size();
  for (const Switch& s : switches_) {
    const auto& first = s.branches.front().conditions;
    if (s.branches.size() == 2 && first.size() == 1 && first[0].greater && !first[0].less)
      kink_inputs_.emplace(t.offset(s.node) + static_cast<Slot>(s.element), *first[0].greater);
  }
  for (const Switch& s : switches_) draws_[0].taken.push_back(graph::branch_taken(t, s));
  for (int r = 1; r <= options.redraws; ++r) {
    Draw d = build_at(redrawn(options.seed + static_cast<std::uint64_t>(r), 0.5), "at redraw " + std::to_string(r));
    if (finite(*d.tape)) draws_.push_back(std::move(d));
  }
}

std::string Session::loss_name() const {
  if (!options_.loss.empty()) return options_.loss;
  const Tape& t = tape();
  if (t.node_count() == 0 || t.size(t.node_count() - 1) != 1) return {};
  return t.slot_name(t.offset(t.node_count() - 1));
}

bool Session::agree(double a, double b) const {
  if (a == b) return true;
  if (!std::isfinite(a) || !std::isfinite(b)) return false;
  return std::abs(a - b) <= options_.atol + options_.rtol * std::max(std::abs(a), std::abs(b));
}

bool Session::finite(const Tape& t) const {
  const auto v = t.values();
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// Each leaf x * U(1 - spread, 1 + spread) + U(-0.1, 0.1), reproducible from the seed.
std::vector<double> Session::redrawn(std::uint64_t seed, double spread) const {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> scale(1.0 - spread, 1.0 + spread), shift(-0.1, 0.1);
  std::vector<double> out;
  for (double x : leaves_) out.push_back(x * scale(rng) + shift(rng));
  return out;
}

Draw Session::build_at(const std::vector<double>& leaves, std::string where) const {
  ++builds_;
  Draw d{std::make_unique<Tape>(), std::move(where), {}, {}, {}};
  d.tape->set_leaf_values([&leaves](std::size_t k, double given) { return k < leaves.size() ? leaves[k] : given; });
  build_(*d.tape);
  d.tape->set_leaf_values({});
  if (d.tape->node_count() != tape().node_count()) {
    throw Error("check: the build recorded " + std::to_string(tape().node_count()) +
                " nodes at the current point but " + std::to_string(d.tape->node_count()) + " " + d.where +
                ": it must record the same graph every time");
  }
  for (const Switch& s : switches_) d.taken.push_back(graph::branch_taken(*d.tape, s));
  return d;
}

std::optional<Draw> Session::aim(const std::vector<std::pair<std::size_t, std::size_t>>& targets, std::vector<double> x,
                                 const std::string& where, std::uint64_t seed, bool first_required) const {
  double scale = 0.0;
  for (double v : leaves_) scale += v * v;
  const double margin = aim_margin * std::max(1.0, std::sqrt(scale / std::max<std::size_t>(1, leaves_.size())));
  std::mt19937_64 rng(seed);
  const int steps = aim_steps + 4 * static_cast<int>(targets.size());
  std::vector<char> dropped(targets.size(), 0);  // secondary targets out of reach
  for (int step = 0; step <= steps; ++step) {
    Draw d = build_at(x, where);
    if (!finite(*d.tape)) return std::nullopt;
    // The conditions still short of the margin: the required target's first.
    std::vector<const Condition*> short_of;
    bool first_holds = true;
    for (std::size_t t = 0; t < targets.size(); ++t) {
      if (dropped[t]) continue;
      const bool required = t == 0 && first_required;
      for (const Condition& c : switches_[targets[t].first].branches[targets[t].second].conditions) {
        const double m = graph::margin(*d.tape, c);
        if (m >= margin || (c.or_equal && m >= 0)) continue;
        if (required) first_holds = false;
        short_of.push_back(&c);
      }
      if (required && !first_holds) break;
    }
    if (short_of.empty() || (first_holds && step == steps)) return d;
    if (step == steps) return std::nullopt;
    const Condition& c =
        *short_of[first_holds ? std::uniform_int_distribution<std::size_t>(0, short_of.size() - 1)(rng) : 0];
    // Its gradient with respect to the leaves, and the Newton step to twice the margin.
    std::vector<double> g(x.size(), 0.0);
    // A relu that is off passes no gradient: aim through its input instead, which turns
    // it back on (the unit a pool cell must win with is often off at the start).
    auto add_grad = [&](std::optional<Slot> s, double sign) {
      for (int through = 0; s && through < 8; ++through) {
        d.tape->backward(d.tape->var_at(*s));
        const auto grads = d.tape->grads();
        bool moved = false;
        for (std::size_t k = 0; k < x.size(); ++k) {
          g[k] += sign * grads[leaf_slots_[k]];
          moved |= grads[leaf_slots_[k]] != 0.0;
        }
        const auto input = kink_inputs_.find(*s);
        if (moved || input == kink_inputs_.end()) return;
        s = input->second;
      }
    };
    add_grad(c.greater, 1.0);
    add_grad(c.less, -1.0);
    double norm = 0.0;
    for (double v : g) norm += v * v;
    if (norm == 0.0) {
      if (!first_holds) return std::nullopt;
      for (std::size_t t = first_required ? 1 : 0; t < targets.size(); ++t) {
        for (const Condition& other : switches_[targets[t].first].branches[targets[t].second].conditions)
          if (&other == &c) dropped[t] = 1;
      }
      continue;
    }
    const double step_size = (overshoot * margin - graph::margin(*d.tape, c)) / norm;
    for (std::size_t k = 0; k < x.size(); ++k) x[k] += step_size * g[k];
  }
  return std::nullopt;
}

Coverage Session::cover(const std::vector<NodeId>& nodes) {
  // The switches upstream of the nodes named.
  const std::vector<char> upstream = graph::ancestors(graph_, nodes);
  std::vector<std::size_t> relevant;
  Coverage c;
  for (std::size_t s = 0; s < graph_switches_; ++s) {
    if (!upstream[switches_[s].node]) continue;
    relevant.push_back(s);
    c.branches += switches_[s].branches.size();
    const NodeId n = switches_[s].node;
    ++c.switches_by_op[tape().op(n) == Op::Tensor ? std::string(tape().tensor_record(n).info->name)
                                                  : std::string(op_name(tape().op(n)))];
  }
  auto taken = [&](std::size_t s, std::size_t b) {
    return std::any_of(draws_.begin(), draws_.end(), [&](const Draw& d) { return d.taken[s] == b; });
  };
  if (c.branches <= max_aimed_branches) {
    for (std::size_t s : relevant) {
      for (std::size_t b = 0; b < switches_[s].branches.size(); ++b) {
        if (taken(s, b) || !tried_.insert({s, b}).second) continue;
        const std::string where = "at the draw where " + graph::branch_text(tape(), switches_[s], b);
        const std::uint64_t seed = options_.seed * 1000003u + s * 31u + b;
        for (int start = 0; start < aim_starts; ++start) {
          std::vector<double> x =
              start == 0 ? redrawn(seed, 0.5) : redrawn(seed + static_cast<std::uint64_t>(start), 2.5);
          if (std::optional<Draw> d = aim({{s, b}}, std::move(x), where, seed)) {
            draws_.push_back(std::move(*d));
            break;
          }
        }
      }
    }
  }
  // Every pair of branches of two switches on one path, where it can be reached: a
  // formula that drops an indicator is wrong only where that unit is off and the units
  // after it are on. Within a budget of builds: these draws sharpen the check, the
  // verdict's coverage needs only the branches one by one.
  for (std::size_t s1 : relevant) {
    const std::vector<char> downstream = reach_forward(switches_[s1].node);
    for (std::size_t s2 : relevant) {
      if (switches_[s2].node == switches_[s1].node || !downstream[switches_[s2].node] || !feeds(s1, s2)) continue;
      for (std::size_t b1 = 0; b1 < switches_[s1].branches.size(); ++b1) {
        for (std::size_t b2 = 0; b2 < switches_[s2].branches.size(); ++b2) {
          const bool seen = std::any_of(draws_.begin(), draws_.end(),
                                        [&](const Draw& d) { return d.taken[s1] == b1 && d.taken[s2] == b2; });
          if (seen || builds_ > max_pair_builds || !tried_pairs_.insert({s1, b1, s2, b2}).second) continue;
          const std::string where = "at the draw where " + graph::branch_text(tape(), switches_[s1], b1) + " and " +
                                    graph::branch_text(tape(), switches_[s2], b2);
          const std::uint64_t seed = options_.seed * 7919u + tried_pairs_.size();
          for (int start = 0; start < 3; ++start) {
            std::optional<Draw> d =
                aim({{s1, b1}, {s2, b2}}, redrawn(seed + static_cast<std::uint64_t>(start), start == 0 ? 1.0 : 2.5),
                    where, seed);
            if (d && d->taken[s2] == b2) {
              draws_.push_back(std::move(*d));
              break;
            }
          }
        }
      }
    }
  }
  if (!mixed_ && !relevant.empty()) {
    mixed_ = true;
    std::mt19937_64 rng(options_.seed + 7919);
    for (int m = 0; m < mixed_draws; ++m) {
      std::vector<std::pair<std::size_t, std::size_t>> targets;
      for (std::size_t s = 0; s < switches_.size(); ++s)
        targets.emplace_back(s, std::uniform_int_distribution<std::size_t>(0, switches_[s].branches.size() - 1)(rng));
      if (std::optional<Draw> d =
              aim(targets, redrawn(rng(), 1.0), "at mixed draw " + std::to_string(m + 1), rng(), false))
        draws_.push_back(std::move(*d));
    }
  }
  for (std::size_t s : relevant) {
    for (std::size_t b = 0; b < switches_[s].branches.size(); ++b) {
      if (taken(s, b)) {
        ++c.covered;
      } else {
        c.uncovered.push_back(graph::branch_text(tape(), switches_[s], b));
      }
    }
  }
  return c;
}

bool Session::cover(const Switch& extra) {
  auto same = [](const Condition& a, const Condition& b) {
    return a.greater == b.greater && a.less == b.less && a.or_equal == b.or_equal;
  };
  auto same_switch = [&](const Switch& s) {
    if (s.branches.size() != extra.branches.size()) return false;
    for (std::size_t b = 0; b < s.branches.size(); ++b) {
      const auto &x = s.branches[b].conditions, &y = extra.branches[b].conditions;
      if (!std::equal(x.begin(), x.end(), y.begin(), y.end(), same)) return false;
    }
    return true;
  };
  const auto s =
      static_cast<std::size_t>(std::find_if(switches_.begin(), switches_.end(), same_switch) - switches_.begin());
  if (s < graph_switches_) return true;
  if (s == switches_.size()) {
    switches_.push_back(extra);
    for (Draw& d : draws_) d.taken.push_back(graph::branch_taken(*d.tape, extra));
  }
  for (std::size_t b = 0; b < switches_[s].branches.size(); ++b) {
    const bool taken = std::any_of(draws_.begin(), draws_.end(), [&](const Draw& d) { return d.taken[s] == b; });
    if (taken || !tried_.insert({s, b}).second) continue;
    const std::uint64_t seed = options_.seed * 1000033u + s * 31u + b;
    for (int start = 0; start < aim_starts; ++start) {
      std::vector<double> x = start == 0 ? redrawn(seed, 0.5) : redrawn(seed + static_cast<std::uint64_t>(start), 2.5);
      if (std::optional<Draw> d =
              aim({{s, b}}, std::move(x), "at the draw where " + graph::branch_text(tape(), switches_[s], b), seed)) {
        draws_.push_back(std::move(*d));
        break;
      }
    }
  }
  return false;
}

// Whether switch s1's output can reach switch s2's comparison. When s2 compares
// elements of s1's own output (a pool over a relu), only a comparison of s1's element
// counts; further down, the node-level path decides.
bool Session::feeds(std::size_t s1, std::size_t s2) const {
  const Switch& a = switches_[s1];
  const Slot out = tape().offset(a.node) + static_cast<Slot>(a.element);
  bool reads_node = false, reads_element = false;
  for (const Branch& b : switches_[s2].branches) {
    for (const Condition& c : b.conditions) {
      for (const std::optional<Slot> s : {c.greater, c.less}) {
        if (!s || tape().node_of(*s) != a.node) continue;
        reads_node = true;
        reads_element |= *s == out;
      }
    }
  }
  return !reads_node || reads_element;
}

Slot Session::resolve(const NameUse& use, const FormulaSource& src) const {
  std::vector<Slot> exact, folded;
  const std::string wanted = lower(use.name);
  for (const auto& [name, slot] : names_) {
    if (name == use.name) exact.push_back(slot);
    if (lower(name) == wanted) folded.push_back(slot);
  }
  const std::vector<Slot>& hits = exact.empty() ? folded : exact;
  if (hits.size() == 1) return hits[0];
  // A tensor of one element (a target t of shape [1]) names its element t1: the tensor's
  // own name means that element too.
  if (hits.empty()) {
    std::optional<Slot> only;
    std::size_t elements = 0;
    for (const auto& [name, slot] : names_) {
      if (name.size() <= use.name.size() || name.compare(0, use.name.size(), use.name) != 0 ||
          name.find_first_not_of("0123456789", use.name.size()) != std::string::npos)
        continue;
      ++elements;
      if (name == use.name + "1") only = slot;
    }
    if (elements == 1 && only) return *only;
  }
  auto fail = [&](const std::string& what) -> Slot {
    throw ParseError(located_message(src.text, src.start(), use.pos, what), use.pos);
  };
  if (hits.size() > 1) {
    return fail("the name '" + use.name + "' is ambiguous: it could be " + graph::join(hits, ", ", [&](Slot s) {
                  return tape().slot_name(s) + " (node " + std::to_string(tape().node_of(s)) + ")";
                }));
  }
  if (names_.empty()) return fail("unknown name '" + use.name + "': the tape has no named nodes");
  std::vector<std::pair<std::size_t, std::size_t>> ranked;  // (distance, index)
  for (std::size_t i = 0; i < names_.size(); ++i)
    ranked.emplace_back(graph::edit_distance(wanted, lower(names_[i].first)), i);
  std::stable_sort(ranked.begin(), ranked.end(), [](auto a, auto b) { return a.first < b.first; });
  std::string nearest;
  for (std::size_t i = 0; i < std::min<std::size_t>(3, ranked.size()); ++i) {
    nearest += (i ? ", " : "") + names_[ranked[i].second].first;
  }
  return fail("unknown name '" + use.name + "'; the nearest node names are " + nearest);
}

std::vector<char> Session::reach_forward(NodeId from, const std::set<NodeId>& blocked) const {
  const std::vector<NodeId> stop(blocked.begin(), blocked.end());
  return graph::descendants(graph_, std::span(&from, 1), stop);
}

std::vector<char> Session::reach_backward(NodeId to, const std::set<NodeId>& blocked) const {
  const std::vector<NodeId> stop(blocked.begin(), blocked.end());
  return graph::ancestors(graph_, std::span(&to, 1), stop);
}

std::string Session::label(NodeId n) const {
  std::string name = tape().name(n);
  if (!name.empty()) return name;
  if (tape().op(n) == Op::Tensor) return std::string(tape().tensor_record(n).info->name);
  return std::string(op_name(tape().op(n)));
}

}  // namespace gradpath::check::detail
