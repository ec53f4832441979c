// SPDX-License-Identifier: MIT
// The reverse sweep: backward from a scalar or one-element tensor root, zeroing the grads
// before it, and the loop over tape order that runs scalar partials and tensor rules.
#include <cmath>
#include <iterator>

#include "autodiff/tape.hpp"
#include "autodiff/tensor.hpp"

namespace gradpath {

// Note [Tape order]: nodes are recorded after their operands, so walking ids downward
// visits every node after all of its consumers: one loop, no recursion, no counting.
void Tape::backward(const Var& root) {
  if (&of(root, "backward") != this) throw Error("backward: the root Var belongs to a different tape");
  const NodeId last = node_of(root.slot_);
  if (op(last) == Op::Tensor && tensor_record(last).dtype == DType::f32) {
    throw Error("backward: the root is the slot of a float32 tensor node; pass the TensorVar itself");
  }
  clear_grads();
  grads_[root.slot_] = 1.0;
  sweep(last);
}

void Tape::backward(const TensorVar& root) {
  if (&Tape::of(root.first(), "backward") != this) throw Error("backward: the root tensor belongs to a different tape");
  if (root.size() != 1) {
    throw Error("backward: the root must hold one value, got a tensor of shape " + root.shape().str());
  }
  if (!root.needs_grad()) {
    throw Error("backward: the root " + root.shape().str() +
                " was computed from constants alone (Tape::constant); no grad flows to anything");
  }
  if (root.dtype() == DType::f64) return backward(root.first());
  clear_grads();
  grads_f32_[root.offset()] = 1.0f;
  sweep(node_of(root.first().slot()));
}

void Tape::clear_grads() {
  if (anomaly_) check_values(static_cast<NodeId>(nodes_.size()));
  assign_zero_grads("backward");
}

void Tape::sweep(NodeId last) {
  auto tensor = tensors_from(last + 1);
  // Runs of scalar nodes sweep in a tight loop; each tensor node between them applies its rule.
  for (NodeId end = last + 1;;) {
    const NodeId first = tensor == tensors_.begin() ? 0 : std::prev(tensor)->node + 1;
    if (anomaly_) [[unlikely]] {
      sweep_scalars<true>(first, end);
    } else {
      sweep_scalars<false>(first, end);
    }
    if (first == 0) return;
    --tensor;
    tensor->info->backward(*this, *tensor);
    if (anomaly_) check_grads(*tensor);
    end = tensor->node;
  }
}

// Scalar nodes [first, end) from the last down: grad[arg] += partial * grad[node]; a dot
// product's pairs send each factor the other's value times grad[node] (Note [Dot pairs] in
// records.cpp). A tensor node has no scalar operands, so node n's span always starts where
// node n - 1's ends, and node 0's at 0.
template <bool checked>
void Tape::sweep_scalars(NodeId first, NodeId end) {
  if (first == end) return;
  double* grads = grads_.data();
  const double* values = values_.data();
  const Op* ops = nodes_.data<node_op>();
  const NodeSpan* nodes = nodes_.data<node_span>();
  const Slot* arg_slots = args_.data<arg_slot>();
  const double* partials = args_.data<arg_partial>();
  std::uint32_t arg_end = nodes[end - 1].arg_end;
  const auto sweep_node = [&](NodeId n, std::uint32_t arg_begin) {
    const std::uint32_t count = arg_end - arg_begin;
    arg_end = arg_begin;
    if (count == 0) return;  // a leaf: nothing to pass back, and its grad need not be read
    const double g = grads[nodes[n].offset];
    if (g != 0.0) {  // when nothing flows back, skip the operands
      // One counter over both operand arrays: the loop is the sweep's whole cost.
      const Slot* slots = arg_slots + arg_begin;
      const double* partial = partials + arg_begin;
      if (ops[n] == Op::Dot) {
        for (std::uint32_t i = 0; i < count; ++i) {
          const Slot x = slots[i], y = detail::pair_slot(partial[i]);
          const double x_value = values[x], y_value = values[y];
          grads[x] += y_value * g;
          grads[y] += x_value * g;
          if constexpr (checked) {
            if (!std::isfinite(grads[x])) throw_grad_anomaly(n, 2 * i, g);
            if (!std::isfinite(grads[y])) throw_grad_anomaly(n, 2 * i + 1, g);
          }
        }
      } else {
        for (std::uint32_t i = 0; i < count; ++i) {
          grads[slots[i]] += partial[i] * g;
          if constexpr (checked) {
            if (!std::isfinite(grads[slots[i]])) throw_grad_anomaly(n, i, g);
          }
        }
      }
    }
  };
  for (NodeId n = end - 1; n > first; --n) sweep_node(n, nodes[n - 1].arg_end);
  sweep_node(first, first ? nodes[first - 1].arg_end : 0);
}

}  // namespace gradpath
