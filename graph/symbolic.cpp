// SPDX-License-Identifier: MIT
#include "graph/symbolic.hpp"
#include "graph/text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "autodiff/functions.hpp"

namespace gradpath::graph {

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

void SymbolicSum::add(const Monomial& m) {
  for (Monomial& q : terms) {
    if (q.factors == m.factors) {
      q.coeff += m.coeff;
      return;
    }
  }
  terms.push_back(m);
}

std::string SymbolicSum::text() const {
  std::string s;
  for (const Monomial& m : terms) {
    if (m.coeff == 0.0) continue;
    const double magnitude = std::abs(m.coeff);
    const std::string factors = join(m.factors, "·");
    const std::string body = m.factors.empty()  ? number_text(magnitude)
                             : magnitude != 1.0 ? number_text(magnitude) + "·" + factors
                                                : factors;
    s += s.empty() ? (m.coeff < 0 ? "-" : "") + body : (m.coeff < 0 ? " - " : " + ") + body;
  }
  return s.empty() ? "0" : s;
}

std::optional<Monomial> symbolic_partial(const Tape& tape, NodeId n, std::size_t j) {
  if (tape.size(n) != 1 || tape.op(n) == Op::Tensor) return std::nullopt;
  const auto args = tape.arg_slots(n);
  const double partial = tape.partials(n)[j];
  auto named = [&](std::size_t k, auto make) -> std::optional<Monomial> {
    const std::string name = tape.slot_name(args[k]);
    if (name.empty()) return std::nullopt;
    return make(name);
  };
  // A function's partial is its symbol at the input's name. A parameterised one (leaky_relu's
  // slope) gets none: a scalar record does not keep its parameter.
  if (const std::optional<FnId> f = function_of(tape.op(n))) {
    const FunctionInfo& info = function_info(*f);
    if (info.has_parameter()) return std::nullopt;
    return named(0, [&](const std::string& z) { return Monomial{1.0, {info.symbol_at(z, 0.0)}}; });
  }
  switch (tape.op(n)) {
    case Op::Add:
    case Op::Sub:
    case Op::Sum:
    case Op::Neg:
    case Op::Copy:
      return Monomial{partial, {}};  // constants: ±1
    case Op::Mul:
      if (args.size() == 1) return Monomial{partial, {}};  // times a constant
      return named(1 - j, [](const std::string& other) { return Monomial{1.0, {other}}; });
    case Op::Dot:  // operands in pairs: x_i's partial is y_i and y_i's is x_i
      return named(j ^ 1, [](const std::string& other) { return Monomial{1.0, {other}}; });
    case Op::Max:
    case Op::Min: {
      if (args.size() != 2) return std::nullopt;
      const std::string a = tape.slot_name(args[j]), b = tape.slot_name(args[1 - j]);
      if (a.empty() || b.empty()) return std::nullopt;
      const char* op = tape.op(n) == Op::Max ? (j == 0 ? " ≥ " : " > ") : (j == 0 ? " ≤ " : " < ");
      return Monomial{1.0, {"[" + a + op + b + "]"}};
    }
    default:
      return std::nullopt;
  }
}

std::optional<SymbolicSum> symbolic_derivative(const Tape& tape, Slot of, Slot wrt, std::size_t max_terms) {
  if (of == wrt) return SymbolicSum{{Monomial{}}};
  const NodeId from = tape.node_of(wrt), to = tape.node_of(of);
  if (to < from) return SymbolicSum{};
  // Forward over tape order: each slot's derivative with respect to wrt, where it has one
  // (a reached slot without one poisons every slot it feeds).
  std::map<Slot, std::optional<SymbolicSum>> d;
  d[wrt] = SymbolicSum{{Monomial{}}};
  // d[operand] · edge, added into `sum`; false when either has no symbols.
  auto accumulate = [&](std::optional<SymbolicSum>& sum, const std::optional<SymbolicSum>& operand,
                        const std::optional<Monomial>& edge) {
    if (!sum || !operand || !edge) {
      sum = std::nullopt;
      return;
    }
    for (const Monomial& m : operand->terms) {
      Monomial product{m.coeff * edge->coeff, m.factors};
      product.factors.insert(product.factors.end(), edge->factors.begin(), edge->factors.end());
      std::sort(product.factors.begin(), product.factors.end());
      sum->add(product);
    }
    if (sum->terms.size() > max_terms) sum = std::nullopt;
  };
  std::vector<SymbolicEdge> edges;
  for (NodeId n = from + 1; n <= to; ++n) {
    if (tape.op(n) != Op::Tensor) {
      const auto args = tape.arg_slots(n);
      std::optional<SymbolicSum> sum = SymbolicSum{};
      bool reached = false;
      for (std::size_t j = 0; j < args.size(); ++j) {
        const auto it = d.find(args[j]);
        if (it == d.end()) continue;
        reached = true;
        accumulate(sum, it->second, symbolic_partial(tape, n, j));
      }
      if (reached) d[tape.offset(n)] = sum;
      continue;
    }
    const TensorRecord& r = tape.tensor_record(n);
    bool reached = false;
    for (const TensorArg& a : tape.tensor_args(r)) {
      reached |= a.dtype == DType::f64 && d.lower_bound(a.offset) != d.end() &&
                 d.lower_bound(a.offset)->first < a.offset + a.shape.size();
    }
    if (!reached) continue;
    for (std::size_t e = 0; e < r.shape.size(); ++e) {
      std::optional<SymbolicSum> sum = SymbolicSum{};
      edges.clear();
      if (r.info->symbolic == nullptr || !r.info->symbolic(tape, r, e, edges)) {
        sum = std::nullopt;
      } else {
        for (const SymbolicEdge& edge : edges) {
          const auto it = d.find(edge.operand);
          if (it != d.end()) accumulate(sum, it->second, Monomial{edge.coeff, edge.factors});
        }
      }
      d[tape.offset(n) + static_cast<Slot>(e)] = sum;
    }
  }
  const auto it = d.find(of);
  if (it == d.end()) return SymbolicSum{};
  return it->second;
}

}  // namespace gradpath::graph
