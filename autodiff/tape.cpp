// SPDX-License-Identifier: MIT
// The tape's vocabulary and its columns read back: op and dtype names, the slots and
// operands of a node, the node owning a slot, set_value, reset, and Var's lookups.
// The rest of Tape is defined by seam: registry.cpp (identity, epochs, Tape::of),
// records.cpp (leaves and records), memory.cpp (growth and the memory limit),
// sweep.cpp (backward), names.cpp (names and scopes), anomaly.cpp (anomaly mode).
#include "autodiff/tape.hpp"

#include <algorithm>
#include <string>

#include "autodiff/functions.hpp"

namespace gradpath {

std::string_view op_name(Op op) {
  if (const std::optional<FnId> f = function_of(op)) return function_info(*f).name;
  switch (op) {
    case Op::Input:
      return "input";
    case Op::Param:
      return "param";
    case Op::Add:
      return "add";
    case Op::Sub:
      return "sub";
    case Op::Mul:
      return "mul";
    case Op::Div:
      return "div";
    case Op::Neg:
      return "neg";
    case Op::Pow:
      return "pow";
    case Op::Max:
      return "max";
    case Op::Min:
      return "min";
    case Op::Sum:
      return "sum";
    case Op::Dot:
      return "dot";
    case Op::Copy:
      return "copy";
    case Op::Tensor:
      return "tensor";
    default:
      return "?";
  }
}

std::string_view dtype_name(DType dtype) { return dtype == DType::f32 ? "float32" : "float64"; }

std::uint32_t Tape::size(NodeId n) const {
  const std::size_t end = n + 1 < nodes_.size() ? offset(n + 1) : values_.size();
  return static_cast<std::uint32_t>(end - offset(n));
}

NodeId Tape::node_of(Slot s) const {
  if (s >= values_.size()) throw Error("node_of: slot " + std::to_string(s) + " is not on the tape");
  const std::span<const NodeSpan> spans = nodes_.column<node_span>();
  auto it = std::upper_bound(spans.begin(), spans.end(), s, [](Slot slot, NodeSpan n) { return slot < n.offset; });
  return static_cast<NodeId>(it - spans.begin() - 1);
}

void Tape::set_value(const Var& leaf, double value) {
  check(leaf, "set_value");
  const NodeId n = node_of(leaf.slot_);
  if (!is_leaf(op(n))) {
    throw Error("set_value: node " + std::to_string(n) + " ('" + name(n) + "') is a " + std::string(op_name(op(n))) +
                " node, not an input or parameter");
  }
  if (find_tensor(n) != nullptr) {
    throw Error("set_value: node " + std::to_string(n) + " ('" + name(n) +
                "') is a float32 leaf tensor; write tape.values_f32() at its offset instead");
  }
  values_[leaf.slot_] = value;
}

// ---- reset -------------------------------------------------------------------------------

void Tape::reset() {
  next_epoch();
  const NodeId keep = keep_nodes_;
  nodes_.resize(keep);
  args_.resize(keep ? nodes_.at<node_span>(keep - 1).arg_end : 0);
  values_.resize(keep_slots_);
  grads_.clear();
  grads_f32_.clear();
  const auto first_dropped = tensors_from(keep);
  // The float arena grows in node order too: it keeps what the kept f32 nodes own.
  const auto first_dropped_f32 =
      std::find_if(first_dropped, tensors_.cend(), [](const TensorRecord& r) { return r.dtype == DType::f32; });
  if (first_dropped_f32 != tensors_.end()) values_f32_.resize(first_dropped_f32->output);
  if (first_dropped != tensors_.end()) {
    tensor_args_.resize(first_dropped->arg_begin);
    saved_.resize(first_dropped->saved_begin);
    tensors_.erase(first_dropped, tensors_.end());
  }
  names_.drop_from(keep);
  std::erase_if(constants_, [keep](const ScalarConstant& c) { return c.node >= keep; });
  anomaly_next_ = std::min(anomaly_next_, keep);
}

NodeId Var::node() const { return Tape::of(*this, "node").node_of(slot_); }
std::string Var::name() const { return Tape::of(*this, "name").slot_name(slot_); }

Var& Var::named(std::string_view name) {
  Tape& t = Tape::of(*this, "named");
  const NodeId n = t.node_of(slot_);
  if (t.size(n) != 1) throw Error("named: '" + std::string(name) + "' would name one element of a tensor node");
  t.set_name(n, name);
  return *this;
}

}  // namespace gradpath
