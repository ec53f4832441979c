// SPDX-License-Identifier: MIT
// The checker: draws, name resolution, the four forms and their term-by-term diagnosis.
#include "check/checker.hpp"
#include "autodiff/functions.hpp"
#include "check/notation.hpp"
#include "check/session.hpp"
#include "graph/symbolic.hpp"
#include "graph/text.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

namespace gradpath::check {

namespace {

using detail::Draw;
using detail::Session;

using graph::number_text;

// ---- one formula against a session ----------------------------------------------------

class FormulaCheck {
 public:
  FormulaCheck(Session& session, const Formula& formula, const FormulaSource& src, Report& report)
      : s_(session), f_(formula), report_(report) {
    auto resolve_all = [&](const Expr& e) {
      for (const NameUse& use : names_in(e)) slots_.emplace(use.name, s_.resolve(use, src));
    };
    resolve_all(f_.lhs);
    resolve_all(f_.rhs);
    for (const Annotation& a : f_.annotations) {
      resolve_all(a.value);
      resolve_all(a.claim);
    }
    for (const Expr* e : {&f_.lhs, &f_.rhs}) refuse_second_derivatives_off_the_hessian(*e, src);
    for (const Annotation& a : f_.annotations) {
      refuse_second_derivatives_off_the_hessian(a.value, src);
      refuse_second_derivatives_off_the_hessian(a.claim, src);
    }
  }

  void run() {
    // Every branch upstream of what the formula names is taken at some draw first, so
    // every comparison below sees each of them.
    std::vector<NodeId> named;
    for (const auto& [name, slot] : slots_) named.push_back(tape().node_of(slot));
    const detail::Coverage coverage = s_.cover(named);
    report_.draws = static_cast<int>(s_.draw_count());
    report_.branches = coverage.branches;
    report_.branches_covered = coverage.covered;
    report_.switches_by_op = coverage.switches_by_op;
    report_.uncovered = coverage.uncovered;
    const std::vector<FormulaSwitch> own = formula_switches();
    std::vector<const FormulaSwitch*> counted;  // those that are no graph switch
    for (const FormulaSwitch& fs : own) {
      if (!fs.on_slots || !s_.cover(fs.as_switch)) counted.push_back(&fs);
    }
    report_.draws = static_cast<int>(s_.draw_count());
    const std::vector<const Expr*> terms = rhs_terms();
    if (f_.lhs.kind == ExprKind::Derivative && !f_.lhs.wrt2.empty()) {
      report_.form = Form::SecondDerivative;
      check_second_derivative();
    } else if (f_.lhs.kind == ExprKind::Derivative && !terms.empty() && all_cut_terms(terms)) {
      report_.form = Form::Cut;
      check_cut(terms);
    } else if (f_.lhs.kind == ExprKind::Derivative && !contains_derivative(f_.rhs) && !f_.has_ellipsis) {
      report_.form = Form::Derivative;
      check_derivative();
    } else if (f_.lhs.kind == ExprKind::Name && f_.rhs.kind == ExprKind::Sum && is_sum_node(slot(f_.lhs.name)) &&
               !contains_derivative(f_.rhs)) {
      report_.form = Form::Expansion;
      check_expansion(terms);
    } else if (f_.has_ellipsis) {
      throw Error(
          "an ellipsis stands for terms of a sum over a cut (∂L/∂w = c1·∂L/∂z1 + …) or of a sum "
          "node's expansion (z = w1·a1 + …); this formula is neither, so it cannot be checked");
    } else {
      report_.form = Form::Equation;
      check_equation();
    }
    check_annotations();
    const bool failed = std::any_of(report_.findings.begin(), report_.findings.end(),
                                    [](const Finding& x) { return x.kind != FindingKind::NotWritten; });
    for (const FormulaSwitch* fs : counted) {
      ++report_.switches_by_op[std::string(formula_comparisons)];
      for (std::size_t outcome = 0; outcome < 2; ++outcome) {
        ++report_.branches;
        if (outcome_seen(*fs, outcome)) {
          ++report_.branches_covered;
        } else {
          report_.uncovered.push_back(to_string(*fs->expr) + (outcome ? " false" : " true") + " (in the formula)");
        }
      }
    }
    report_.verdict = failed                                        ? Verdict::Fail
                      : report_.branches_covered < report_.branches ? Verdict::Uncovered
                      : f_.has_ellipsis                             ? Verdict::Partial
                                                                    : Verdict::Pass;
  }

 private:
  std::optional<graph::SymbolicSum> symbolic(Slot of, Slot wrt) const {
    return graph::symbolic_derivative(tape(), of, wrt);
  }

  // A scalar as written from the graph: its name, or a product of its operands' names.
  struct Rendered {
    std::string text;
    std::vector<std::string> names;
  };
  Rendered render(Slot s, int depth = 2) const {
    const Tape& t = tape();
    const std::string name = t.slot_name(s);
    if (!name.empty()) return {name, {name}};
    const NodeId n = t.node_of(s);
    if (depth > 0 && t.size(n) == 1 && t.op(n) == Op::Mul) {
      const auto args = t.arg_slots(n);
      Rendered a = render(args[0], depth - 1);
      if (args.size() == 1) {
        a.text = number_text(t.partials(n)[0]) + "·" + a.text;
        return a;
      }
      Rendered b = render(args[1], depth - 1);
      a.text += "·" + b.text;
      a.names.insert(a.names.end(), b.names.begin(), b.names.end());
      return a;
    }
    return {number_text(t.value(s)), {}};
  }

  // The terms of a sum node as a formula writes them: operand j with its partial (±1) for
  // Sum, Add and Sub, the product of pair j (x_j·y_j) for a dot product.
  std::size_t term_count(NodeId n) const {
    const std::size_t operands = tape().arg_slots(n).size();
    return tape().op(n) == Op::Dot ? operands / 2 : operands;
  }
  // Term j's value on `t`, a tape holding the same graph (the checker's draws).
  double term_value(const Tape& t, NodeId n, std::size_t j) const {
    const auto args = t.arg_slots(n);
    if (t.op(n) == Op::Dot) return t.value(args[2 * j]) * t.value(args[2 * j + 1]);
    return t.partials(n)[j] * t.value(args[j]);
  }
  bool term_negative(NodeId n, std::size_t j) const { return tape().op(n) != Op::Dot && tape().partials(n)[j] < 0; }
  Rendered term_rendered(NodeId n, std::size_t j) const {
    const auto args = tape().arg_slots(n);
    if (tape().op(n) != Op::Dot) return render(args[j]);
    Rendered x = render(args[2 * j], 1), y = render(args[2 * j + 1], 1);
    x.text += "·" + y.text;
    x.names.insert(x.names.end(), y.names.begin(), y.names.end());
    return x;
  }
  // True when some operand of term j is reached (forward from the node `from`).
  bool term_reached(NodeId n, std::size_t j, const std::vector<char>& reached) const {
    const auto args = tape().arg_slots(n);
    if (tape().op(n) != Op::Dot) return reached[tape().node_of(args[j])] != 0;
    return reached[tape().node_of(args[2 * j])] != 0 || reached[tape().node_of(args[2 * j + 1])] != 0;
  }

  // "z2 = w1·a3 + w2·a4 + …" for a sum node, showing the terms on a path from `wrt`.
  std::string expansion(Slot of, Slot wrt) const {
    const Tape& t = tape();
    const NodeId n = t.node_of(of);
    if (!is_sum_node(of)) return {};
    const std::vector<char> forward = s_.reach_forward(t.node_of(wrt));
    std::string s = t.slot_name(of) + " =";
    bool gap = false;
    for (std::size_t j = 0; j < term_count(n); ++j) {
      if (j >= 2 && !term_reached(n, j, forward)) {
        gap = true;
        continue;
      }
      if (gap) s += " + …";
      gap = false;
      const bool negative = term_negative(n, j);
      s += (j == 0 ? (negative ? " -" : "") : (negative ? " - " : " + "));
      if (j == 0 && !negative) s += " ";
      s += term_rendered(n, j).text;
    }
    if (gap) s += " + …";
    return s;
  }

  Slot slot(const std::string& name) const {
    if (auto it = substitute_.find(name); it != substitute_.end()) return it->second;
    return slots_.at(name);
  }
  const Tape& tape() const { return s_.tape(); }
  std::string name_of(Slot s) const { return tape().slot_name(s); }
  std::string d(Slot of, Slot wrt) const { return "∂" + name_of(of) + "/∂" + name_of(wrt); }

  void add(FindingKind kind, std::size_t term, std::string message, Mistake mistake = Mistake::None) {
    report_.findings.push_back({kind, mistake, term, std::move(message)});
  }

  double eval(const Expr& e, std::size_t draw) {
    auto arg = [&](std::size_t i) { return eval(e.args[i], draw); };
    switch (e.kind) {
      case ExprKind::Number:
        return e.number;
      case ExprKind::Name:
        return s_.draw(draw).tape->value(slot(e.name));
      case ExprKind::Derivative:
        if (!e.wrt2.empty()) return s_.draw(draw).second_derivative(slot(e.name), slot(e.wrt), slot(e.wrt2));
        return s_.draw(draw).derivative(slot(e.name), slot(e.wrt));
      case ExprKind::Negate:
        return -arg(0);
      case ExprKind::Quotient:
        return arg(0) / arg(1);
      case ExprKind::Power:
        return std::pow(arg(0), arg(1));
      case ExprKind::Ellipsis:
        throw Error("check: an ellipsis has no value");
      case ExprKind::IndexSum:
      case ExprKind::Transpose:
      case ExprKind::Hadamard:
      case ExprKind::Updated:
        throw Error("check: a sum over an index or a matrix is written out before it is evaluated");
      case ExprKind::Sum: {
        double total = 0.0;
        for (std::size_t i = 0; i < e.args.size(); ++i) total += arg(i);
        return total;
      }
      case ExprKind::Product: {
        double total = 1.0;
        for (std::size_t i = 0; i < e.args.size(); ++i) total *= arg(i);
        return total;
      }
      case ExprKind::Compare: {
        const double a = arg(0), b = arg(1);
        const bool holds = e.name == ">" ? a > b : e.name == "<" ? a < b : e.name == ">=" ? a >= b : a <= b;
        return holds ? 1.0 : 0.0;
      }
      case ExprKind::Call:
        break;
    }
    // A function of the table, or its derivative (name'); a parameter not written takes
    // the function's default.
    const bool prime = e.name.ends_with('\'');
    const FunctionInfo* f = function_named(prime ? std::string_view(e.name).substr(0, e.name.size() - 1) : e.name);
    if (f == nullptr) throw Error("check: unknown function '" + e.name + "'");
    const double x = arg(0), p = e.args.size() > 1 ? arg(1) : f->parameter.fallback;
    const double y = f->value(x, p);
    return prime ? f->derivative(x, y, p) : y;
  }

  // The first draw at which two quantities differ, if any.
  template <typename F, typename G>
  std::optional<std::size_t> first_difference(F left, G right) {
    for (std::size_t k = 0; k < s_.draw_count(); ++k) {
      if (!s_.agree(left(k), right(k))) return k;
    }
    return std::nullopt;
  }

  std::vector<const Expr*> rhs_terms() const {
    std::vector<const Expr*> out;
    if (f_.rhs.kind != ExprKind::Sum) return {&f_.rhs};
    for (const Expr& t : f_.rhs.args) {
      if (t.kind != ExprKind::Ellipsis) out.push_back(&t);
    }
    return out;
  }

  static bool is_first_derivative(const Expr& e) { return e.kind == ExprKind::Derivative && e.wrt2.empty(); }

  // A second derivative is read only where the engine computes it exactly: of the loss, by
  // leaves (the Hessian of Draw::second_derivative). Any other is refused at its column.
  void refuse_second_derivatives_off_the_hessian(const Expr& e, const FormulaSource& src) const {
    for (const Expr& a : e.args) refuse_second_derivatives_off_the_hessian(a, src);
    if (e.kind != ExprKind::Derivative || e.wrt2.empty()) return;
    auto refuse = [&](SourcePos pos, const std::string& what) {
      throw ParseError(located_message(src.text, src.start(), pos, what), pos);
    };
    const std::string loss = s_.loss_name();
    if (loss.empty()) {
      refuse(e.pos,
             "second derivatives are of the loss, and the network's last node is no named scalar: name the loss");
    }
    if (slot(e.name) != s_.resolve({loss, e.pos}, src)) {
      refuse(e.pos, "second derivatives are read of the loss " + loss + " only, not of " + e.name);
    }
    for (const auto& [name, pos] : {std::pair{e.wrt, e.wrt_pos}, std::pair{e.wrt2, e.wrt2_pos}}) {
      const NodeId n = tape().node_of(slot(name));
      if (!is_leaf(tape().op(n)) || tape().size(n) != 1) {
        refuse(pos, name + " is computed by the network: second derivatives are taken by inputs and params");
      }
    }
  }

  static bool contains_derivative(const Expr& e) {
    if (e.kind == ExprKind::Derivative) return true;
    return std::any_of(e.args.begin(), e.args.end(), [](const Expr& a) { return contains_derivative(a); });
  }

  bool is_sum_node(Slot s) const {
    const NodeId n = tape().node_of(s);
    const Op op = tape().op(n);
    return tape().size(n) == 1 && (op == Op::Sum || op == Op::Dot || op == Op::Add || op == Op::Sub);
  }

  // ---- cut form ------------------------------------------------------------------

  // A term c · ∂L/∂z, possibly written as a chain c · ∂y/∂z · ∂L/∂y.
  struct CutTerm {
    Slot cut = 0;
    bool negative = false;
    std::vector<const Expr*> coefficient;  // the factors that are not the chain
    std::vector<const Expr*> chain;        // ∂L/∂x, then ∂x/∂x', ... down to the cut node
  };

  static void flatten(const Expr& e, bool& negative, std::vector<const Expr*>& factors) {
    if (e.kind == ExprKind::Negate) {
      negative = !negative;
      flatten(e.args[0], negative, factors);
    } else if (e.kind == ExprKind::Product) {
      for (const Expr& a : e.args) flatten(a, negative, factors);
    } else {
      factors.push_back(&e);
    }
  }

  std::optional<CutTerm> cut_term(const Expr& term) const {
    const Slot L = slot(f_.lhs.name), w = slot(f_.lhs.wrt);
    CutTerm ct;
    std::vector<const Expr*> factors;
    flatten(term, ct.negative, factors);
    auto take = [&](auto pred) -> const Expr* {
      auto it = std::find_if(factors.begin(), factors.end(),
                             [&](const Expr* x) { return is_first_derivative(*x) && pred(*x); });
      if (it == factors.end()) return nullptr;
      const Expr* found = *it;
      factors.erase(it);
      return found;
    };
    const Expr* link = take([&](const Expr& x) { return slot(x.name) == L && slot(x.wrt) != w; });
    if (link == nullptr) return std::nullopt;
    ct.chain.push_back(link);
    ct.cut = slot(link->wrt);
    while (const Expr* next = take([&](const Expr& x) { return slot(x.name) == ct.cut && slot(x.wrt) != w; })) {
      ct.chain.push_back(next);
      ct.cut = slot(next->wrt);
    }
    ct.coefficient = std::move(factors);
    return ct;
  }

  // Every term c·∂L/∂z over distinct nodes z. Terms that reach one node through chains of
  // different lengths (dR1/dO1·dZ1/dR1·dL/dZ1 + dR2/dO2·dZ1/dR2·dL/dZ1) are a sum over
  // paths, not a cut: that formula is compared as a whole.
  bool all_cut_terms(const std::vector<const Expr*>& terms) const {
    std::map<Slot, std::size_t> chains;  // cut node -> the longest chain reaching it
    bool repeated = false, long_chain = false;
    for (const Expr* t : terms) {
      const std::optional<CutTerm> ct = cut_term(*t);
      if (!ct) return false;
      repeated |= chains.contains(ct->cut);
      long_chain |= ct->chain.size() > 1;
      chains[ct->cut] = std::max(chains[ct->cut], ct->chain.size());
    }
    return !(repeated && long_chain);
  }

  double product(const std::vector<const Expr*>& factors, bool negative, std::size_t draw) {
    double v = negative ? -1.0 : 1.0;
    for (const Expr* x : factors) v *= eval(*x, draw);
    return v;
  }

  static std::string factors_text(const std::vector<const Expr*>& factors, bool negative) {
    std::string s = graph::join(factors, "·", [](const Expr* x) {
      return x->kind == ExprKind::Sum ? "(" + to_string(*x) + ")" : to_string(*x);
    });
    if (s.empty()) s = "1";
    return negative ? "-" + s : s;
  }

  // "∂z2/∂w1 is a3 (z2 = w1·a3 + …)", or the value when no symbolic form is known.
  std::string truth_text(Slot of, Slot wrt, std::size_t draw) {
    std::string s = d(of, wrt) + " is ";
    if (const std::optional<graph::SymbolicSum> p = symbolic(of, wrt)) {
      s += p->text();
    } else {
      s += number_text(s_.draw(draw).derivative(of, wrt)) + " " + s_.draw(draw).where;
    }
    const std::string e = expansion(of, wrt);
    return e.empty() ? s : s + " (" + e + ")";
  }

  std::string coefficient_symbol(Slot of, Slot wrt) {
    const std::optional<graph::SymbolicSum> p = symbolic(of, wrt);
    if (!p) return "(" + d(of, wrt) + ")";
    const std::string text = p->text();
    return p->terms.size() > 1 ? "(" + text + ")" : text;
  }

  void check_cut(const std::vector<const Expr*>& terms) {
    const Slot L = slot(f_.lhs.name), w = slot(f_.lhs.wrt);
    const NodeId w_node = tape().node_of(w), L_node = tape().node_of(L);
    const std::vector<char> from_w = s_.reach_forward(w_node);
    const std::vector<char> to_L = s_.reach_backward(L_node);
    std::map<Slot, std::size_t> seen;  // cut slot -> term
    std::set<NodeId> cut_nodes;
    bool problems = false;
    for (std::size_t k = 0; k < terms.size(); ++k) {
      const std::size_t term = k + 1;
      const std::string prefix = "term " + std::to_string(term) + ": ";
      const CutTerm ct = *cut_term(*terms[k]);
      const NodeId c = tape().node_of(ct.cut);
      if (auto it = seen.find(ct.cut); it != seen.end()) {
        add(FindingKind::ExtraTerm, term,
            prefix + "extra term: ∂" + name_of(L) + "/∂" + name_of(ct.cut) + " already appears in term " +
                std::to_string(it->second) + " (a cut crosses each path once)",
            Mistake::ExtraTerm);
        problems = true;
        continue;
      }
      seen.emplace(ct.cut, term);
      if (!from_w[c] || !to_L[c]) {
        add(FindingKind::ExtraTerm, term,
            prefix + "extra term: " +
                (!from_w[c]
                     ? "no path leads from " + name_of(w) + " to " + name_of(ct.cut) + ", so " + d(ct.cut, w) + " = 0"
                     : "no path leads from " + name_of(ct.cut) + " to " + name_of(L) + ", so " + d(L, ct.cut) + " = 0"),
            Mistake::ExtraTerm);
        problems = true;
        continue;
      }
      cut_nodes.insert(c);
      if (ct.chain.size() > 1) {
        const auto draw = first_difference([&](std::size_t x) { return product(ct.chain, false, x); },
                                           [&](std::size_t x) { return s_.draw(x).derivative(L, ct.cut); });
        if (draw) {
          add(FindingKind::WrongTerm, term,
              prefix + factors_text(ct.chain, false) + " is not " + d(L, ct.cut) + ": it is " +
                  number_text(product(ct.chain, false, *draw)) + " and " + d(L, ct.cut) + " is " +
                  number_text(s_.draw(*draw).derivative(L, ct.cut)) + " " + s_.draw(*draw).where);
          problems = true;
        }
      }
      const auto draw = first_difference([&](std::size_t x) { return product(ct.coefficient, ct.negative, x); },
                                         [&](std::size_t x) { return s_.draw(x).derivative(ct.cut, w); });
      if (draw) {
        std::string msg =
            prefix + truth_text(ct.cut, w, *draw) + ", the formula has " + factors_text(ct.coefficient, ct.negative);
        if (!symbolic(ct.cut, w)) msg += " = " + number_text(product(ct.coefficient, ct.negative, *draw));
        const Quantity truth = [&](std::size_t x) { return s_.draw(x).derivative(ct.cut, w); };
        const Quantity written = [&](std::size_t x) { return product(ct.coefficient, ct.negative, x); };
        std::optional<Named> named =
            nonzero_somewhere(truth) ? name_mistake(written, truth, ct.coefficient)
                                     : Named{Mistake::ExtraTerm, "extra term: " + d(ct.cut, w) + " is 0 at every draw"};
        if (!named) named = name_path(written, ct.cut, w);
        if (named) msg = prefix + named->what + ": " + msg.substr(prefix.size());
        add(FindingKind::WrongTerm, term, msg + point_text(*draw), named ? named->mistake : Mistake::None);
        problems = true;
      }
    }
    problems |= check_cut_structure(w, L, cut_nodes);
    if (!problems && !f_.has_ellipsis) check_equation();
  }

  // Every path from w to L must cross exactly one of the cut nodes. Paths that avoid them
  // all are closed with the named nodes they pass through, each a missing term.
  bool check_cut_structure(Slot w, Slot L, std::set<NodeId> cut) {
    bool problems = false;
    const NodeId w_node = tape().node_of(w), L_node = tape().node_of(L);
    const std::vector<NodeId> written(cut.begin(), cut.end());
    std::vector<std::vector<char>> downstream;
    for (NodeId c : written) downstream.push_back(s_.reach_forward(c));
    for (std::size_t i = 0; i < written.size(); ++i) {
      for (std::size_t j = 0; j < written.size(); ++j) {
        if (i == j || !downstream[i][written[j]]) continue;
        add(FindingKind::NotACut, 0,
            "not a cut: " + s_.label(written[i]) + " and " + s_.label(written[j]) + " lie on one path from " +
                name_of(w) + " to " + name_of(L) + " (" + s_.label(written[i]) + " → … → " + s_.label(written[j]) +
                "), so that path is counted twice");
        problems = true;
      }
    }
    std::vector<std::string> unwritten;
    while (true) {
      const std::vector<char> fwd = s_.reach_forward(w_node, cut);
      if (!fwd[L_node]) break;
      const std::vector<char> bwd = s_.reach_backward(L_node, cut);
      // A node on an open path, named, and neither before nor after a written cut node.
      std::optional<NodeId> pick;
      for (NodeId n = w_node + 1; n < L_node && !pick; ++n) {
        if (!fwd[n] || !bwd[n] || cut.contains(n) || tape().size(n) != 1 || tape().name(n).empty()) continue;
        bool parallel = true;
        for (const std::vector<char>& after : downstream) parallel &= !after[n];
        const std::vector<char> after_n = s_.reach_forward(n);
        for (NodeId c : written) parallel &= !after_n[c];
        if (parallel) pick = n;
      }
      if (!pick) {
        add(FindingKind::NotACut, 0,
            "not a cut: " + open_path(w_node, L_node, cut) + " avoids every node the formula names");
        return true;
      }
      cut.insert(*pick);
      const Slot m = tape().offset(*pick);
      const auto draw =
          first_difference([&](std::size_t x) { return s_.draw(x).derivative(m, w) * s_.draw(x).derivative(L, m); },
                           [](std::size_t) { return 0.0; });
      const std::string term = coefficient_symbol(m, w) + "·" + d(L, m);
      if (!draw && !f_.has_ellipsis) continue;  // no share at any draw: nothing is missing
      if (f_.has_ellipsis) {
        unwritten.push_back(term);
      } else {
        add(FindingKind::MissingTerm, 0, "missing path through " + s_.label(*pick) + ": add " + term,
            Mistake::MissingPath);
        problems = true;
      }
    }
    if (!unwritten.empty()) add_not_written(unwritten);
    return problems;
  }

  void add_not_written(const std::vector<std::string>& terms) {
    add(FindingKind::NotWritten, 0,
        "not written (the ellipsis): " + std::to_string(terms.size()) + (terms.size() == 1 ? " term: " : " terms: ") +
            graph::join(terms, " + "));
  }

  // One path from w to L avoiding `blocked`, shown by names (or ops).
  std::string open_path(NodeId from, NodeId to, const std::set<NodeId>& blocked) const {
    const std::vector<char> fwd = s_.reach_forward(from, blocked);
    const std::vector<char> bwd = s_.reach_backward(to, blocked);
    std::string s = s_.label(from);
    NodeId at = from;
    while (at != to) {
      NodeId next = to;
      for (NodeId n = at + 1; n <= to; ++n) {
        if (fwd[n] && bwd[n] && !blocked.contains(n) && boost::edge(at, n, s_.graph()).second) {
          next = n;
          break;
        }
      }
      at = next;
      s += " → " + s_.label(at);
    }
    return s;
  }

  // ---- single derivative ----------------------------------------------------------

  void check_derivative() {
    const Slot of = slot(f_.lhs.name), wrt = slot(f_.lhs.wrt);
    const auto draw = first_difference([&](std::size_t x) { return s_.draw(x).derivative(of, wrt); },
                                       [&](std::size_t x) { return eval(f_.rhs, x); });
    if (!draw) return;
    std::string msg = truth_text(of, wrt, *draw) + ", the formula has " + to_string(f_.rhs);
    if (f_.rhs.kind != ExprKind::Name && f_.rhs.kind != ExprKind::Number) {
      msg += " = " + number_text(eval(f_.rhs, *draw)) + " " + s_.draw(*draw).where;
    }
    Slot of_slot = of, wrt_slot = wrt;
    const std::optional<Named> named =
        name_formula([&](std::size_t x) { return s_.draw(x).derivative(of, wrt); }, &of_slot, &wrt_slot);
    if (named) msg = named->what + ". " + msg + point_text(*draw);
    add(FindingKind::WrongTerm, 0, named ? msg : msg + point_text(*draw), named ? named->mistake : Mistake::None);
  }

  // ---- second derivative ------------------------------------------------------------

  // ∂²L/∂a∂b = expression, against the engine's exact Hessian element at every draw; a
  // wrong right side is named as an equation's is (a sign, a factor, which term).
  void check_second_derivative() {
    std::vector<double> hessian;  // fixed before names are swapped while naming a mistake
    for (std::size_t x = 0; x < s_.draw_count(); ++x) hessian.push_back(eval(f_.lhs, x));
    const Quantity truth = [&](std::size_t x) { return hessian[x]; };
    const Quantity written = [&](std::size_t x) { return eval(f_.rhs, x); };
    const auto draw = first_difference(truth, written);
    if (!draw) return;
    std::size_t differing = 0;
    for (std::size_t x = 0; x < s_.draw_count(); ++x) differing += s_.agree(truth(x), written(x)) ? 0 : 1;
    std::string msg = to_string(f_.lhs) + " is " + number_text(truth(*draw)) + " " + s_.draw(*draw).where +
                      " (the engine's Hessian), the formula has " + to_string(f_.rhs) + " = " +
                      number_text(written(*draw)) + "; they differ at " + std::to_string(differing) + " of " +
                      std::to_string(s_.draw_count()) + " draws" + point_text(*draw);
    const std::optional<Named> named = name_formula(truth);
    if (named) msg = named->what + ". " + msg;
    add(FindingKind::Mismatch, 0, msg, named ? named->mistake : Mistake::None);
  }

  // ---- expansion of a sum node ----------------------------------------------------

  void check_expansion(const std::vector<const Expr*>& terms) {
    const Slot z = slot(f_.lhs.name);
    const NodeId n = tape().node_of(z);
    const std::size_t count = term_count(n);
    auto operand_value = [&](std::size_t j, std::size_t x) { return term_value(*s_.draw(x).tape, n, j); };
    auto operand_text = [&](std::size_t j) {
      const std::string r = term_rendered(n, j).text;
      return term_negative(n, j) ? "-" + r : r;
    };
    std::vector<char> used(count, 0);
    std::vector<std::size_t> unmatched;
    for (std::size_t k = 0; k < terms.size(); ++k) {
      bool matched = false;
      for (std::size_t j = 0; j < count && !matched; ++j) {
        if (used[j]) continue;
        matched = !first_difference([&](std::size_t x) { return eval(*terms[k], x); },
                                    [&](std::size_t x) { return operand_value(j, x); });
        if (matched) used[j] = 1;
      }
      if (!matched) unmatched.push_back(k);
    }
    for (std::size_t k : unmatched) {
      const std::string prefix = "term " + std::to_string(k + 1) + ": ";
      std::vector<std::string> written;
      for (const NameUse& u : names_in(*terms[k])) written.push_back(name_of(slot(u.name)));
      // The operand sharing most names with the written term; ties go to the operand
      // sharing the term's earliest-written name.
      std::optional<std::size_t> best;
      std::pair<std::size_t, std::size_t> best_score{0, 0};
      for (std::size_t j = 0; j < count; ++j) {
        if (used[j]) continue;
        const std::vector<std::string> names = term_rendered(n, j).names;
        std::size_t shared = 0, first = written.size();
        for (std::size_t i = 0; i < written.size(); ++i) {
          if (std::find(names.begin(), names.end(), written[i]) != names.end()) {
            ++shared;
            first = std::min(first, i);
          }
        }
        const std::pair<std::size_t, std::size_t> score{shared, written.size() - first};
        if (shared > 0 && score > best_score) best = j, best_score = score;
      }
      if (best) {
        used[*best] = 1;
        add(FindingKind::WrongTerm, k + 1,
            prefix + name_of(z) + " has " + operand_text(*best) + ", the formula has " + to_string(*terms[k]));
      } else {
        add(FindingKind::ExtraTerm, k + 1,
            prefix + "extra term: " + name_of(z) + " has no operand " + to_string(*terms[k]), Mistake::ExtraTerm);
      }
    }
    std::vector<std::string> rest;
    for (std::size_t j = 0; j < count; ++j) {
      if (!used[j]) rest.push_back(operand_text(j));
    }
    if (f_.has_ellipsis) {
      if (!rest.empty()) add_not_written(rest);
      return;
    }
    for (const std::string& r : rest) add(FindingKind::MissingTerm, 0, "missing term: " + r);
    if (report_.findings.empty()) check_equation();
  }

  // ---- plain equation --------------------------------------------------------------

  void check_equation() {
    const auto draw = first_difference([&](std::size_t x) { return eval(f_.lhs, x); },
                                       [&](std::size_t x) { return eval(f_.rhs, x); });
    if (!draw) return;
    std::string msg = "the left side " + to_string(f_.lhs) + " is " + number_text(eval(f_.lhs, *draw)) +
                      " but the right side is " + number_text(eval(f_.rhs, *draw)) + " " + s_.draw(*draw).where +
                      point_text(*draw);
    std::optional<Named> named;
    if (f_.lhs.kind == ExprKind::Derivative) {
      Slot of = slot(f_.lhs.name), wrt = slot(f_.lhs.wrt);
      named = name_formula([&](std::size_t x) { return eval(f_.lhs, x); }, &of, &wrt);
    } else {
      named = name_formula([&](std::size_t x) { return eval(f_.lhs, x); });
    }
    if (named) msg = named->what + ". " + msg;
    add(FindingKind::Mismatch, 0, msg, named ? named->mistake : Mistake::None);
  }

  void check_annotations() {
    for (const Annotation& a : f_.annotations) {
      const auto draw = first_difference([&](std::size_t x) { return eval(a.value, x); },
                                         [&](std::size_t x) { return eval(a.claim, x); });
      if (!draw) continue;
      add(FindingKind::Annotation, 0,
          to_string(a.value) + " ⇒ " + to_string(a.claim) + " does not hold: " + number_text(eval(a.value, *draw)) +
              " vs " + number_text(eval(a.claim, *draw)) + " " + s_.draw(*draw).where);
    }
  }

  // " (there x1 = 0.31, z1 = -0.12)": the values of the formula's names at a draw other
  // than the given point, so a failure can be followed by hand.
  std::string point_text(std::size_t draw) {
    if (draw == 0) return "";
    std::string s;
    std::size_t shown = 0;
    for (const auto& [name, slot] : slots_) {
      if (shown++ == 8) {
        s += ", …";
        break;
      }
      s += (s.empty() ? " (there " : ", ") + name_of(slot) + " = " + number_text(s_.draw(draw).value(slot));
    }
    return s.empty() ? s : s + ")";
  }

  // ---- the formula's own branches ----------------------------------------------------
  // [a > b], relu(a), relu'(a), abs(a), elu(a), step(a) in the formula choose between two values
  // too: each must come out both ways at some draw, or the formula is not checked there.

  struct FormulaSwitch {
    const Expr* expr;  // the comparison or call
    const Expr* a;     // its sides: a > b (b null: 0)
    const Expr* b;
    bool strict = true;     // > rather than >=
    bool on_slots = false;  // both sides are names (or 0): the session can aim at it
    Switch as_switch;
  };

  // A call of a kinked function (relu, abs, leaky_relu, elu) or of its derivative.
  static bool kinked_call(const Expr& e) {
    std::string_view name = e.name;
    if (name.ends_with('\'')) name.remove_suffix(1);
    const FunctionInfo* f = function_named(name);
    return f != nullptr && f->kinked;
  }

  std::vector<FormulaSwitch> formula_switches() {
    std::vector<FormulaSwitch> out;
    std::vector<const Expr*> stack{&f_.lhs, &f_.rhs};
    for (const Annotation& a : f_.annotations) stack.insert(stack.end(), {&a.value, &a.claim});
    while (!stack.empty()) {
      const Expr* e = stack.back();
      stack.pop_back();
      for (const Expr& a : e->args) stack.push_back(&a);
      FormulaSwitch fs{e, nullptr, nullptr, true, false, {}};
      if (e->kind == ExprKind::Compare) {
        const bool greater = e->name[0] == '>';
        fs.a = &e->args[greater ? 0 : 1];
        fs.b = &e->args[greater ? 1 : 0];
        fs.strict = e->name.size() == 1;
      } else if (e->kind == ExprKind::Call && kinked_call(*e)) {
        fs.a = &e->args[0];
      } else {
        continue;
      }
      // A side the session can aim at: a name, or 0 (no slot).
      auto is_zero = [](const Expr* x) { return x == nullptr || (x->kind == ExprKind::Number && x->number == 0.0); };
      auto aimable = [&](const Expr* x) { return is_zero(x) || x->kind == ExprKind::Name; };
      auto slot_of = [&](const Expr* x) {
        return is_zero(x) ? std::optional<Slot>{} : std::optional<Slot>{slot(x->name)};
      };
      if (aimable(fs.a) && aimable(fs.b) && !(is_zero(fs.a) && is_zero(fs.b))) {
        const std::optional<Slot> a = slot_of(fs.a), b = slot_of(fs.b);
        fs.on_slots = true;
        fs.as_switch = Switch{tape().node_of(a ? *a : *b),
                              0,
                              {Branch{{Condition{a, b, !fs.strict}}}, Branch{{Condition{b, a, fs.strict}}}}};
      }
      out.push_back(std::move(fs));
    }
    return out;
  }

  // Outcome 0: a > b (a >= b when not strict); 1: the other.
  bool outcome_seen(const FormulaSwitch& fs, std::size_t outcome) {
    for (std::size_t x = 0; x < s_.draw_count(); ++x) {
      const double a = eval(*fs.a, x), b = fs.b ? eval(*fs.b, x) : 0.0;
      if (std::isnan(a) || std::isnan(b)) continue;
      const bool holds = fs.strict ? a > b : a >= b;
      if (holds == (outcome == 0)) return true;
    }
    return false;
  }

  // ---- naming the mistake ------------------------------------------------------------
  // Each test compares at every draw, the branch-covering ones included, so a name is
  // only given when it holds as a function, not by coincidence at one point.

  using Quantity = std::function<double(std::size_t)>;
  struct Named {
    Mistake mistake = Mistake::None;
    std::string what;  // what to fix, e.g. "the sign is flipped"
  };

  bool everywhere(const Quantity& a, const Quantity& b) { return !first_difference(a, b); }
  bool nonzero_somewhere(const Quantity& a) {
    return first_difference(a, [](std::size_t) { return 0.0; }).has_value();
  }

  static std::string factor_text(double c) {
    const double inverse = 1.0 / c;
    if (std::abs(inverse - std::round(inverse)) < 1e-9 && std::abs(c) < 1) {
      return std::string(c < 0 ? "-" : "") + "1/" + number_text(std::abs(std::round(inverse)));
    }
    return number_text(c);
  }

  // σ′(z1), tanh′(z2), [z3 > 0], leaky_relu′(z4, 0.2): the local derivative of every
  // function of the table on the tape, named by its input.
  struct Activation {
    std::string text;
    Slot in, out;
    const FunctionInfo* f;
    std::optional<double> p;     // the parameter, when the record keeps it (tensor ops)
    std::optional<NodeId> node;  // a scalar node, whose recorded partial is the derivative
  };
  const std::vector<Activation>& activations() {
    if (activations_) return *activations_;
    activations_.emplace();
    const Tape& t = tape();
    auto text = [&](const FunctionInfo& f, Slot in, std::optional<double> p) {
      const std::string z = name_of(in).empty() ? "#" + std::to_string(in) : name_of(in);
      if (!f.has_parameter() || p) return f.symbol_at(z, p.value_or(0.0));
      return std::string(f.name) + "′(" + z + ", " + std::string(f.parameter.name) + ")";
    };
    for (NodeId n = 0; n < t.node_count() && activations_->size() < max_candidates; ++n) {
      if (t.op(n) == Op::Tensor) {
        const TensorRecord& r = t.tensor_record(n);
        const FunctionInfo* f = function_named(r.info->name);
        if (r.dtype == DType::f32 || f == nullptr) continue;
        const double p = function_parameter(r);
        for (std::size_t i = 0; i < r.shape.size(); ++i) {
          const Slot in = t.tensor_args(r)[0].offset + static_cast<Slot>(i);
          activations_->push_back({text(*f, in, p), in, r.output + static_cast<Slot>(i), f, p, std::nullopt});
        }
      } else if (const std::optional<FnId> id = function_of(t.op(n)); id && t.size(n) == 1) {
        const FunctionInfo& f = function_info(*id);
        const Slot in = t.arg_slots(n)[0];
        activations_->push_back({text(f, in, std::nullopt), in, t.offset(n), &f, std::nullopt, n});
      }
    }
    return *activations_;
  }
  double activation_derivative(const Activation& a, std::size_t draw) {
    const Draw& d = s_.draw(draw);
    if (a.node) return d.tape->partials(*a.node)[0];
    return a.f->derivative(d.value(a.in), d.value(a.out), a.p.value_or(a.f->parameter.fallback));
  }

  // The elements of the tensor a name belongs to, by its base and number: W4 -> W1 … W6.
  std::vector<std::pair<std::string, Slot>> siblings(const std::string& name) {
    const Slot own = slot(name);
    const std::string written = name_of(own);
    const std::size_t digits = written.find_last_not_of("0123456789") + 1;
    std::vector<std::pair<std::string, Slot>> out;
    if (digits == 0 || digits == written.size()) return out;
    for (const auto& [other, s] : s_.names()) {
      if (s == own || other.size() <= digits || other.compare(0, digits, written, 0, digits) != 0) continue;
      if (other.find_first_not_of("0123456789", digits) == std::string::npos) out.emplace_back(other, s);
    }
    return out;
  }
  // (row, column) from 1 of a matrix element, when some tensor op reads its tensor as a
  // matrix; none otherwise.
  std::optional<std::pair<std::size_t, std::size_t>> matrix_index(Slot s) {
    const std::string n = name_of(s);
    const std::size_t digits = n.find_last_not_of("0123456789") + 1;
    std::size_t k = 0;
    const auto [end, ec] = std::from_chars(n.data() + digits, n.data() + n.size(), k);
    if (ec != std::errc() || end != n.data() + n.size() || k == 0 || k - 1 > s) return std::nullopt;
    const Slot first = s - static_cast<Slot>(k - 1);
    for (const TensorRecord& r : tape().tensor_records()) {
      for (const TensorArg& a : tape().tensor_args(r)) {
        if (a.offset != first || a.shape.rank() != 2) continue;
        return std::pair{(k - 1) / a.shape[1] + 1, (k - 1) % a.shape[1] + 1};
      }
    }
    return std::nullopt;
  }

  // What `written` (the value of `exprs`) gets wrong, when it is a mistake with a name.
  std::optional<Named> name_mistake(const Quantity& written, const Quantity& truth,
                                    const std::vector<const Expr*>& exprs) {
    if (!nonzero_somewhere(truth) && !nonzero_somewhere(written)) return std::nullopt;
    if (nonzero_somewhere(truth) && everywhere(written, [&](std::size_t x) { return -truth(x); })) {
      return Named{Mistake::Sign, "the sign is flipped"};
    }
    for (std::size_t k = 0; k < s_.draw_count(); ++k) {
      const double t = truth(k), w = written(k);
      if (t == 0.0 || w == 0.0 || !std::isfinite(w / t)) continue;
      const double c = w / t;
      if (!s_.agree(c, 1.0) && !s_.agree(c, -1.0) && everywhere(written, [&](std::size_t x) { return c * truth(x); })) {
        return Named{Mistake::ConstantFactor,
                     "off by a constant factor: it is " + factor_text(c) + " times the right value"};
      }
      break;
    }
    for (const Activation& a : activations()) {
      const Quantity act = [&](std::size_t x) { return activation_derivative(a, x); };
      if (everywhere(truth, [&](std::size_t x) { return written(x) * act(x); })) {
        return Named{Mistake::MissingActivation, "the activation derivative " + a.text + " is missing"};
      }
      if (everywhere(written, [&](std::size_t x) { return truth(x) * act(x); })) {
        return Named{Mistake::MissingActivation, "the factor " + a.text + " does not belong here"};
      }
    }
    std::vector<std::string> names;
    for (const Expr* e : exprs) {
      for (const NameUse& u : names_in(*e)) {
        if (std::find(names.begin(), names.end(), u.name) == names.end()) names.push_back(u.name);
      }
    }
    for (const std::string& name : names) {
      const Slot was = slot(name);
      for (const auto& [other, s] : siblings(name)) {
        substitute_[name] = s;
        const bool fixes = everywhere(written, truth);
        substitute_.erase(name);
        if (!fixes) continue;
        const auto a = matrix_index(was), b = matrix_index(s);
        if (a && b && a->first == b->second && a->second == b->first) {
          auto at = [](auto i) { return "_{" + std::to_string(i.first) + "," + std::to_string(i.second) + "}"; };
          return Named{Mistake::TransposedIndex, "transposed index: " + name_of(was) + " is " + at(*a) +
                                                     " of its matrix; the right element is " + other + " = " + at(*b)};
        }
        return Named{Mistake::WrongIndex, "wrong index: write " + other + " for " + name_of(was)};
      }
    }
    return std::nullopt;
  }

  // The paths through one named node, as a share of d of / d wrt: when the formula lacks
  // exactly that share (or has it twice), the mistake is that path.
  std::optional<Named> name_path(const Quantity& written, Slot of, Slot wrt) {
    const NodeId from = tape().node_of(wrt), to = tape().node_of(of);
    const std::vector<char> fwd = s_.reach_forward(from), bwd = s_.reach_backward(to);
    const Quantity truth = [&](std::size_t x) { return s_.draw(x).derivative(of, wrt); };
    std::optional<Named> through_all;  // the first node every path crosses, when all are missing
    std::size_t tried = 0;
    for (const auto& named_slot : s_.names()) {
      const std::string& name = named_slot.first;
      const Slot m = named_slot.second;  // a plain variable: lambdas below capture it
      const NodeId n = tape().node_of(m);
      if (n == from || n == to || !fwd[n] || !bwd[n] || tried++ >= max_candidates) continue;
      const Quantity share = [&](std::size_t x) {
        return s_.draw(x).derivative(m, wrt) * s_.draw(x).derivative(of, m);
      };
      if (!nonzero_somewhere(share)) continue;
      const std::string term = coefficient_symbol(m, wrt) + "·" + d(of, m);
      if (everywhere(share, truth)) {
        if (!through_all && !nonzero_somewhere(written)) {
          through_all =
              Named{Mistake::MissingPath, "missing path: every path from " + name_of(wrt) + " to " + name_of(of) +
                                              " goes through " + name + ", and the formula has none: write " + term};
        }
        continue;
      }
      if (everywhere([&](std::size_t x) { return truth(x) - written(x); }, share)) {
        return Named{Mistake::MissingPath, "missing path through " + name + ": add " + term};
      }
      if (everywhere([&](std::size_t x) { return written(x) - truth(x); }, share)) {
        return Named{Mistake::ExtraTerm, "extra term: the path through " + name + " (" + term + ") is counted twice"};
      }
    }
    if (through_all) return through_all;
    if (std::optional<Named> n = name_path_pair(written, of, wrt)) return n;
    if (!nonzero_somewhere(written)) {
      return Named{Mistake::MissingPath,
                   "missing path: the formula leaves out every path from " + name_of(wrt) + " to " + name_of(of)};
    }
    return std::nullopt;
  }

  // The same for the paths through two named nodes, one after the other (a relu cell and
  // the pool window it wins: O2 → Z1), when no single node names the missing share.
  std::optional<Named> name_path_pair(const Quantity& written, Slot of, Slot wrt) {
    const NodeId from = tape().node_of(wrt), to = tape().node_of(of);
    const std::vector<char> fwd = s_.reach_forward(from), bwd = s_.reach_backward(to);
    std::vector<std::pair<std::string, Slot>> on_paths;
    for (const auto& [name, m] : s_.names()) {
      const NodeId n = tape().node_of(m);
      if (n != from && n != to && fwd[n] && bwd[n]) on_paths.emplace_back(name, m);
    }
    const Quantity missing = [&](std::size_t x) { return s_.draw(x).derivative(of, wrt) - written(x); };
    std::size_t tried = 0;
    for (const auto& [first, first_slot] : on_paths) {
      for (const auto& [second, second_slot] : on_paths) {
        const Slot m1 = first_slot, m2 = second_slot;  // plain variables: the lambda captures them
        if (tape().node_of(m2) <= tape().node_of(m1) || tried++ >= max_candidates * 8) continue;
        const Quantity share = [&](std::size_t x) {
          Draw& d = s_.draw(x);
          return d.derivative(m1, wrt) * d.derivative(m2, m1) * d.derivative(of, m2);
        };
        if (!nonzero_somewhere(share) || !everywhere(missing, share)) continue;
        return Named{Mistake::MissingPath, "missing path through " + first + " and " + second + ": add " +
                                               coefficient_symbol(m1, wrt) + "·" + d(m2, m1) + "·" + d(of, m2)};
      }
    }
    return std::nullopt;
  }

  // A wrong right side of ∂of/∂wrt (or of any equation): the whole, then each term.
  std::optional<Named> name_formula(const Quantity& truth, Slot* of = nullptr, Slot* wrt = nullptr) {
    const Quantity written = [&](std::size_t x) { return eval(f_.rhs, x); };
    const std::vector<const Expr*> terms = rhs_terms();
    // A sign or a factor on the whole before any one term or path.
    if (std::optional<Named> n = name_mistake(written, truth, {});
        n && (n->mistake == Mistake::Sign || n->mistake == Mistake::ConstantFactor)) {
      return n;
    }
    if (terms.size() > 1) {
      // What term i must be for the formula to hold, fixed before names are swapped in it.
      std::vector<std::vector<double>> needed(terms.size());
      for (std::size_t i = 0; i < terms.size(); ++i) {
        for (std::size_t x = 0; x < s_.draw_count(); ++x)
          needed[i].push_back(truth(x) - (written(x) - eval(*terms[i], x)));
      }
      auto prefix = [](std::size_t i) { return "term " + std::to_string(i + 1) + ": "; };
      // An extra term first: the rest holding without it is the strongest reading.
      for (std::size_t i = 0; i < terms.size(); ++i) {
        if (!nonzero_somewhere([&](std::size_t x) { return needed[i][x]; })) {
          return Named{Mistake::ExtraTerm, prefix(i) + "extra term: without it the formula holds"};
        }
      }
      for (std::size_t i = 0; i < terms.size(); ++i) {
        const Quantity term = [&](std::size_t x) { return eval(*terms[i], x); };
        if (std::optional<Named> n = name_mistake(term, [&](std::size_t x) { return needed[i][x]; }, {terms[i]})) {
          n->what = prefix(i) + n->what;
          return n;
        }
      }
    }
    if (of != nullptr) {
      if (std::optional<Named> n = name_path(written, *of, *wrt)) return n;
    }
    return name_mistake(written, truth, {&f_.rhs});
  }

  static constexpr std::size_t max_candidates = 512;

  Session& s_;
  const Formula& f_;
  Report& report_;
  std::map<std::string, Slot> slots_;
  std::map<std::string, Slot> substitute_;  // names read as other slots while naming a mistake
  std::optional<std::vector<Activation>> activations_;
};

std::string collapse_space(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

Report empty_report(const FormulaSource& src, const CheckOptions& options) {
  Report r;
  r.formula = collapse_space(src.text);
  r.line = src.line;
  r.draws = options.redraws + 1;
  r.rtol = options.rtol;
  r.atol = options.atol;
  return r;
}

// Checks one formula, as the checker reads it, against the session's draws.
// e is Euler's number (e^{s_1}) unless the network has a node named e.
void read_euler(Expr& e, bool network_has_e) {
  if (e.kind == ExprKind::Name && e.name == "e" && !network_has_e) {
    e.kind = ExprKind::Number;
    e.number = std::exp(1.0);
  }
  for (Expr& a : e.args) read_euler(a, network_has_e);
}

Report check_instance(Session& session, Formula formula, const FormulaSource& src, const CheckOptions& options) {
  Report r = empty_report(src, options);
  try {
    const auto& names = session.names();
    const bool network_has_e =
        std::any_of(names.begin(), names.end(), [](const auto& n) { return n.first == "e" || n.first == "E"; });
    read_euler(formula.lhs, network_has_e);
    read_euler(formula.rhs, network_has_e);
    for (Annotation& a : formula.annotations) {
      read_euler(a.value, network_has_e);
      read_euler(a.claim, network_has_e);
    }
    FormulaCheck(session, formula, src, r).run();
  } catch (const Error& e) {
    r.verdict = Verdict::Error;
    r.form = Form::Unknown;
    r.findings.clear();
    r.error = e.what();
  }
  return r;
}

// Checks one formula of a file, with the definitions before it: none for a definition
// that states nothing besides.
std::optional<Report> check_one(Session& session, detail::Notation& notation, const FormulaSource& src,
                                const CheckOptions& options) {
  std::vector<detail::Notation::Instance> instances;
  try {
    Formula formula = parse_formula(src);
    if (notation.defines_new_name(formula)) {
      std::optional<Formula> fact = notation.define(formula, src);
      if (!fact) return std::nullopt;
      formula = std::move(*fact);
    } else if (formula.defines && !formula.fact.empty()) {
      throw ParseError(located_message(src.text, src.start(), formula.lhs.pos,
                                       formula.lhs.name + " is a name of the network: write the claim " +
                                           formula.lhs.name + " = … without ':='"),
                       formula.lhs.pos);
    }
    instances = notation.instances(formula, src);
  } catch (const Error& e) {
    Report r = empty_report(src, options);
    r.error = e.what();
    return r;
  }
  if (!instances[0].transposed.empty()) {
    Report r = empty_report(src, options);
    r.verdict = Verdict::Fail;
    r.form = Form::Equation;
    r.findings.push_back({FindingKind::Mismatch, Mistake::TransposedIndex, 0, instances[0].transposed});
    return r;
  }
  std::vector<Report> reports;
  std::vector<detail::Binding> bindings;
  for (const detail::Notation::Instance& in : instances) {
    reports.push_back(check_instance(session, in.formula, src, options));
    bindings.push_back(in.binding);
  }
  Report r = instances.size() == 1 && instances[0].binding.empty() ? std::move(reports[0])
                                                                   : detail::by_binding(std::move(reports), bindings);
  r.notes = instances[0].notes;
  return r;
}

}  // namespace

Report check_formula(const BuildFn& build, std::string_view formula, const CheckOptions& options) {
  return check_formula(build, FormulaSource{std::string(formula), 1, 1, {}}, options);
}

Report check_formula(const BuildFn& build, const FormulaSource& formula, const CheckOptions& options) {
  Session session(build, options);
  detail::Notation notation(session);
  std::optional<Report> r = check_one(session, notation, formula, options);
  if (r) return *r;
  Report definition = empty_report(formula, options);
  definition.error = "check: a definition alone states nothing to check; check it in the file that uses it";
  return definition;
}

namespace {

// Every formula against one session, each with the definitions before it; `source` names
// where they come from in the error for none at all.
std::vector<Report> check_all(const BuildFn& build, std::string_view text, const std::string& source,
                              const CheckOptions& options) {
  const std::vector<FormulaSource> formulas = split_formulas(text);
  if (formulas.empty()) {
    throw Error("check: " + source + " holds no formula: no line, $$…$$, \\[…\\], equation or align block states one");
  }
  Session session(build, options);
  detail::Notation notation(session);
  std::vector<Report> out;
  for (const FormulaSource& src : formulas) {
    if (std::optional<Report> r = check_one(session, notation, src, options)) out.push_back(std::move(*r));
  }
  if (out.empty()) throw Error("check: " + source + " holds no formula, only definitions (:=) that state nothing");
  return out;
}

}  // namespace

std::vector<Report> check_text(const BuildFn& build, std::string_view file_text, const CheckOptions& options,
                               std::string_view source) {
  return check_all(build, file_text, source.empty() ? "the text" : "'" + std::string(source) + "'", options);
}

std::vector<Report> check_file(const BuildFn& build, const std::filesystem::path& path, const CheckOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw Error("check: '" + path.string() + "' is a directory, not a formula file");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) throw Error("check: cannot read '" + path.string() + "'");
  return check_all(build, text.str(), "'" + path.string() + "'", options);
}

}  // namespace gradpath::check
