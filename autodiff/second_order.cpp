// SPDX-License-Identifier: MIT
// Forward mode and Hessian-vector products on the tape (docs/second_order.md).
#include "autodiff/second_order.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "autodiff/functions.hpp"

namespace gradpath {

namespace {

std::string describe(const TensorRecord& r) {
  return "tensor op '" + std::string(r.info->name) + "' (node " + std::to_string(r.node) + ", shape " + r.shape.str() +
         ")";
}

// A tensor node the sweeps can run: float64, with a tangent rule.
void check_tangent_rule(const TensorRecord& r, std::string_view what) {
  if (r.dtype == DType::f32) {
    throw Error(std::string(what) + ": " + describe(r) +
                " is float32: forward mode and second derivatives are not supported in float32; record the graph in "
                "float64");
  }
  if (r.info->tangent == nullptr) throw Error(std::string(what) + ": " + describe(r) + " has no tangent rule");
}

void seed(const Tape& tape, std::span<const LeafTangent> direction, std::string_view what,
          std::vector<double>& tangents) {
  for (const LeafTangent& d : direction) {
    if (&Tape::of(d.leaf.first(), what) != &tape)
      throw Error(std::string(what) + ": a seeded leaf belongs to another tape");
    if (d.leaf.dtype() != DType::f64) throw Error(std::string(what) + ": a float32 leaf cannot be seeded");
    if (d.tangent.size() != d.leaf.size()) {
      throw Error(std::string(what) + ": " + std::to_string(d.tangent.size()) +
                  " tangent values for the leaf of shape " + d.leaf.shape().str() + " (" +
                  std::to_string(d.leaf.size()) + " elements)");
    }
    // A leaf tensor's elements are consecutive scalar nodes: the next element's node is
    // the next node, looked up only when it is not (a stacked view).
    NodeId n = tape.node_of(d.leaf.offset());
    for (std::size_t i = 0; i < d.tangent.size(); ++i, ++n) {
      const auto slot = static_cast<Slot>(d.leaf.offset() + i);
      if (n >= tape.node_count() || tape.offset(n) != slot) n = tape.node_of(slot);
      if (!is_leaf(tape.op(n))) {
        throw Error(std::string(what) + ": seeded slot " + std::to_string(slot) + " is node " + std::to_string(n) +
                    ", a " + std::string(op_name(tape.op(n))) + ", not a leaf (input or param)");
      }
      tangents[slot] = d.tangent[i];
    }
  }
}

// The last node owning a slot of `output`.
NodeId last_node(const Tape& tape, const TensorVar& output, std::string_view what) {
  if (output.dtype() != DType::f64)
    throw Error(std::string(what) + ": the output is float32; not supported in float32");
  Tape::of(output.first(), what);
  return tape.node_of(static_cast<Slot>(output.offset() + output.size() - 1));
}

}  // namespace

namespace detail {
void tangent_sweep(const Tape& tape, NodeId last, std::span<const LeafTangent> direction, std::string_view what,
                   std::vector<double>& tangents) {
  for (const TensorRecord& r : tape.tensor_records()) {
    if (r.node > last) break;
    check_tangent_rule(r, what);  // before any work: a missing rule is an Error, never a partial result
  }
  tangents.assign(tape.slot_count(), 0.0);
  seed(tape, direction, what, tangents);
  for (NodeId n = 0; n <= last; ++n) {
    const Op op = tape.op(n);
    if (is_leaf(op)) continue;
    if (op == Op::Tensor) {
      const TensorRecord& r = tape.tensor_record(n);
      r.info->tangent(tape, r, tangents);
      continue;
    }
    const OperandSlots args = tape.arg_slots(n);
    const OperandPartials partials = tape.partials(n);
    double t = 0.0;
    for (std::size_t i = 0; i < args.size(); ++i) t += partials[i] * tangents[args[i]];
    tangents[tape.offset(n)] = t;
  }
}
}  // namespace detail

double jvp(Tape& tape, const Var& output, std::span<const LeafTangent> direction) {
  if (&Tape::of(output, "jvp") != &tape) throw Error("jvp: the output belongs to another tape");
  std::vector<double> tangents;
  detail::tangent_sweep(tape, tape.node_of(output.slot()), direction, "jvp", tangents);
  return tangents[output.slot()];
}

std::vector<double> jvp(Tape& tape, const TensorVar& output, std::span<const LeafTangent> direction) {
  std::vector<double> tangents;
  detail::tangent_sweep(tape, last_node(tape, output, "jvp"), direction, "jvp", tangents);
  const auto first = tangents.begin() + output.offset();
  return {first, first + static_cast<std::ptrdiff_t>(output.size())};
}

// ---- the constants scalar records note beside them ----------------------------------------

void Tape::note_constant(ConstantRole role, double value) {
  const auto n = static_cast<NodeId>(nodes_.size() - 1);
  if (constants_.size() == constants_.capacity()) {  // the vector doubles: within the memory limit
    check_memory_limit(op_name(op(n)), std::max<std::size_t>(constants_.capacity(), 1) * sizeof(ScalarConstant));
  }
  constants_.push_back({n, role, value});
}

const ScalarConstant* Tape::scalar_constant(NodeId n) const {
  const auto it = std::lower_bound(constants_.begin(), constants_.end(), n,
                                   [](const ScalarConstant& c, NodeId node) { return c.node < node; });
  return it != constants_.end() && it->node == n ? &*it : nullptr;
}

// ---- Hessian-vector products ------------------------------------------------------------------

namespace {

[[noreturn]] void throw_no_constant(const Tape& tape, NodeId n) {
  throw Error("hvp: " + std::string(op_name(tape.op(n))) + " node " + std::to_string(n) +
              " was recorded without the constant its partial depends on (record it with the ops of ops/scalar.hpp)");
}

// ṗ_i: the derivative of scalar node n's partial with respect to operand i along the
// tangents, Σ_j ∂²n/∂x_i∂x_j ẋ_j. Add, Sub, Neg, Sum and Copy have constant partials, Max
// and Min piecewise constant ones: 0.
double partial_tangent(const Tape& tape, NodeId n, std::size_t i, std::span<const double> tangents) {
  const Op op = tape.op(n);
  const OperandSlots args = tape.arg_slots(n);
  const std::span<const double> values = tape.values();
  if (const std::optional<FnId> f = function_of(op)) {
    const FunctionInfo& info = function_info(*f);
    const ScalarConstant* c = tape.scalar_constant(n);
    if (info.has_parameter() && c == nullptr) throw_no_constant(tape, n);
    const double p = c != nullptr ? c->value : info.parameter.fallback;
    return info.second(values[args[0]], values[tape.offset(n)], p) * tangents[args[0]];
  }
  if (op == Op::Mul) return args.size() == 2 ? tangents[args[1 - i]] : 0.0;  // ∂(ab)/∂a = b
  if (op == Op::Dot) return tangents[args[i ^ 1]];                           // pairs: ∂(x_k y_k)/∂x_k = y_k
  if (op == Op::Div) {
    if (args.size() == 1) {  // x / c: a constant partial; c / x: p = −c/x², ṗ = −2 p ẋ / x
      const ScalarConstant* c = tape.scalar_constant(n);
      if (c == nullptr || c->role != ConstantRole::numerator) return 0.0;
      return -2.0 * tape.partials(n)[0] * tangents[args[0]] / values[args[0]];
    }
    const double a = values[args[0]], b = values[args[1]], ta = tangents[args[0]], tb = tangents[args[1]];
    return i == 0 ? -tb / (b * b) : -ta / (b * b) + 2.0 * a * tb / (b * b * b);
  }
  if (op == Op::Pow) {
    if (args.size() == 1) {
      const ScalarConstant* c = tape.scalar_constant(n);
      if (c == nullptr) throw_no_constant(tape, n);
      const double x = values[args[0]], e = c->value, p = tape.partials(n)[0];
      if (c->role == ConstantRole::base) return p == 0.0 ? 0.0 : p * std::log(e) * tangents[args[0]];  // e^x
      return e == 0.0 ? 0.0 : e * (e - 1.0) * std::pow(x, e - 2.0) * tangents[args[0]];                // x^e
    }
    // x^y: p_x = y x^(y−1), p_y = x^y log x (log x taken as 0 at x = 0, as the record does).
    const double x = values[args[0]], y = values[args[1]], tx = tangents[args[0]], ty = tangents[args[1]];
    const double log_x = x == 0.0 ? 0.0 : std::log(x), cross = std::pow(x, y - 1.0) * (1.0 + y * log_x);
    return i == 0 ? y * (y - 1.0) * std::pow(x, y - 2.0) * tx + cross * ty
                  : cross * tx + std::pow(x, y) * log_x * log_x * ty;
  }
  return 0.0;
}

// Every tensor op through node `last` can take part: float64, with both rules.
void check_second_order_rules(const Tape& tape, NodeId last, std::string_view what) {
  for (const TensorRecord& r : tape.tensor_records()) {
    if (r.node > last) break;
    check_tangent_rule(r, what);
    if (r.info->curvature == nullptr) throw Error(std::string(what) + ": " + describe(r) + " has no curvature rule");
  }
}

// The dual reverse sweep: ġ of every slot through node `last`, left in the tape's grad
// arena, from ġ_loss = 0. Each node passes ġ back by its first-order rule (a tensor op's
// backward run on the ġ arena) and adds the derivative of that rule along the tangents
// applied to its first-order grad ḡ: for a scalar node ṗ_i ḡ, for a tensor op its curvature rule.
void dual_sweep(Tape& tape, NodeId last, std::span<const double> tangents, std::span<const double> grads) {
  const std::span<double> grad_tangents = tape.grads();
  std::fill(grad_tangents.begin(), grad_tangents.end(), 0.0);
  const SecondOrderArenas arenas{tangents, grads, grad_tangents};
  for (NodeId n = last + 1; n-- > 0;) {
    const Op op = tape.op(n);
    if (is_leaf(op)) continue;
    if (op == Op::Tensor) {
      const TensorRecord& r = tape.tensor_record(n);
      r.info->backward(tape, r);
      r.info->curvature(tape, r, arenas);
      continue;
    }
    const Slot s = tape.offset(n);
    const double g = grads[s], g_dot = grad_tangents[s];
    const OperandSlots args = tape.arg_slots(n);
    const OperandPartials partials = tape.partials(n);
    // Only products, quotients, powers and functions have partials that move: the rest
    // (sums, the most common node) pass ġ back by their partials alone.
    const bool curved =
        g != 0.0 && (op == Op::Mul || op == Op::Dot || op == Op::Div || op == Op::Pow || function_of(op));
    for (std::size_t i = 0; i < args.size(); ++i) {
      grad_tangents[args[i]] += partials[i] * g_dot + (curved ? partial_tangent(tape, n, i, tangents) * g : 0.0);
    }
  }
}

// One reverse sweep from `loss` and its grads kept, for any number of products H v; the
// tape's grads are put back to them when it goes.
class SecondOrder {
 public:
  SecondOrder(Tape& tape, const Var& loss, std::span<const TensorVar> params, std::string_view what)
      : tape_(tape), params_(params.begin(), params.end()), what_(what) {
    if (&Tape::of(loss, what) != &tape) throw Error(std::string(what) + ": the loss belongs to another tape");
    last_ = tape.node_of(loss.slot());
    check_second_order_rules(tape, last_, what);
    for (const TensorVar& p : params) size_ += p.size();
    tape.backward(loss);
    grads_.assign(tape.grads().begin(), tape.grads().end());
  }
  ~SecondOrder() { std::copy(grads_.begin(), grads_.end(), tape_.grads().begin()); }
  SecondOrder(const SecondOrder&) = delete;
  SecondOrder& operator=(const SecondOrder&) = delete;

  std::size_t size() const { return size_; }

  // H v into `out` (size() values each).
  void product(std::span<const double> v, std::span<double> out) {
    if (v.size() != size_) {
      throw Error(std::string(what_) + ": " + std::to_string(v.size()) + " direction values for " +
                  std::to_string(size_) + " parameter elements");
    }
    std::vector<LeafTangent> direction;
    for (std::size_t p = 0, at = 0; p < params_.size(); at += params_[p++].size()) {
      direction.emplace_back(params_[p],
                             std::vector<double>(v.begin() + static_cast<std::ptrdiff_t>(at),
                                                 v.begin() + static_cast<std::ptrdiff_t>(at + params_[p].size())));
    }
    detail::tangent_sweep(tape_, last_, direction, what_, tangents_);
    dual_sweep(tape_, last_, tangents_, grads_);
    const std::span<const double> grad_tangents = tape_.grads();
    for (std::size_t p = 0, at = 0; p < params_.size(); at += params_[p++].size()) {
      const auto first = grad_tangents.begin() + params_[p].offset();
      std::copy(first, first + static_cast<std::ptrdiff_t>(params_[p].size()),
                out.begin() + static_cast<std::ptrdiff_t>(at));
    }
  }

 private:
  Tape& tape_;
  std::vector<TensorVar> params_;
  std::string_view what_;
  NodeId last_ = 0;
  std::size_t size_ = 0;
  // ḡ and the tangents of the last product: per thread, their capacity kept for the next
  // call, so a loop of products on one tape does not allocate (nor fault in fresh pages).
  struct Buffers {
    std::vector<double> grads, tangents;
  };
  static Buffers& buffers() {
    thread_local Buffers b;
    return b;
  }
  std::vector<double>& grads_ = buffers().grads;
  std::vector<double>& tangents_ = buffers().tangents;
};

// The one element of a float64 loss tensor.
const Var& loss_element(const TensorVar& loss, std::string_view what) {
  if (loss.size() != 1 || loss.dtype() != DType::f64) {
    throw Error(std::string(what) + ": the loss must be one float64 value, got a " +
                std::string(dtype_name(loss.dtype())) + " tensor of shape " + loss.shape().str());
  }
  return loss.first();
}

}  // namespace

std::vector<double> hvp(Tape& tape, const Var& loss, std::span<const TensorVar> params, std::span<const double> v) {
  SecondOrder second_order(tape, loss, params, "hvp");
  std::vector<double> out(second_order.size());
  second_order.product(v, out);
  return out;
}
std::vector<double> hvp(Tape& tape, const TensorVar& loss, std::span<const TensorVar> params,
                        std::span<const double> v) {
  return hvp(tape, loss_element(loss, "hvp"), params, v);
}

std::vector<double> hessian(Tape& tape, const Var& loss, std::span<const TensorVar> params) {
  std::size_t n = 0;
  for (const TensorVar& p : params) n += p.size();
  if (n > max_hessian_size) {
    throw Error("hessian: " + std::to_string(n) + " parameter elements, more than max_hessian_size (" +
                std::to_string(max_hessian_size) + "); take Hessian-vector products with hvp");
  }
  SecondOrder second_order(tape, loss, params, "hessian");
  std::vector<double> h(n * n), unit(n, 0.0), column(n);
  for (std::size_t j = 0; j < n; ++j) {
    unit[j] = 1.0;
    second_order.product(unit, column);
    unit[j] = 0.0;
    for (std::size_t i = 0; i < n; ++i) h[i * n + j] = column[i];
  }
  return h;
}
std::vector<double> hessian(Tape& tape, const TensorVar& loss, std::span<const TensorVar> params) {
  return hessian(tape, loss_element(loss, "hessian"), params);
}

}  // namespace gradpath
