// SPDX-License-Identifier: MIT
// Anomaly mode: the checks on values and grads, and the messages that locate a NaN or inf.
#include "autodiff/anomaly.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace gradpath {

// Note [Anomaly mode]: when it is off the tape pays one predictable branch per record
// (in close() and record_tensor()) and one per run of scalar nodes in the sweep, which
// picks the unchecked sweep_scalars. When on, values are checked one node behind the
// recording (check_values), because a tensor op fills its values after record_tensor
// returns and names are given after recording; backward checks the rest before it sweeps,
// then every grad the sweep or a tensor rule writes.

namespace {
std::string number(double x) {
  if (std::isnan(x)) return "nan";  // printf shows the sign bit: "-nan"
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

std::string quoted(const std::string& name) { return name.empty() ? std::string() : " '" + name + "'"; }

std::string index_of(const Shape& shape, std::size_t flat) {
  std::string out = "]";
  for (std::size_t axis = shape.rank(); axis-- > 0;) {
    out.insert(0, (axis ? ", " : "") + std::to_string(flat % shape[axis]));
    flat /= shape[axis];
  }
  return "[" + out;
}

// "log (node 12, 'h', scope 'net')": the op, the node, its name and scope when it has them.
std::string describe(const Tape& tape, NodeId n) {
  const std::string op(tape.op(n) == Op::Tensor ? tape.tensor_record(n).info->name : op_name(tape.op(n)));
  std::string out = op + " (node " + std::to_string(n);
  if (const std::string name = tape.name(n); !name.empty()) out += ", '" + name + "'";
  if (const std::string scope = tape.scope(n); !scope.empty()) out += ", scope '" + scope + "'";
  return out + ")";
}

// "operand 0 'x' = 0": at most the first few operands of an n-ary node.
std::string scalar_operands(const Tape& tape, NodeId n) {
  constexpr std::size_t shown = 6;
  const OperandSlots args = tape.arg_slots(n);
  std::string out;
  for (std::size_t i = 0; i < std::min(args.size(), shown); ++i) {
    out += (i ? ", operand " : " from operand ") + std::to_string(i) + quoted(tape.slot_name(args[i])) + " = " +
           number(tape.value(args[i]));
  }
  if (args.size() > shown) out += ", ... (" + std::to_string(args.size()) + " operands)";
  return out;
}

// Element k of a tensor operand: its value, and its name (float32 elements have none).
double element_value(const Tape& tape, const TensorArg& arg, std::size_t k) {
  const std::size_t at = arg.offset + k;
  return arg.dtype == DType::f32 ? double{tape.values_f32()[at]} : tape.value(static_cast<Slot>(at));
}
std::string element_name(const Tape& tape, const TensorArg& arg, std::size_t k) {
  return arg.dtype == DType::f32 ? std::string() : tape.slot_name(arg.offset + static_cast<Slot>(k));
}

// An operand of the tensor node's shape shows its element at `element`, any other its shape.
std::string tensor_operands(const Tape& tape, const TensorRecord& r, std::size_t element) {
  const std::span<const TensorArg> args = tape.tensor_args(r);
  std::string out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const TensorArg& arg = args[i];
    out += (i ? ", operand " : " from operand ") + std::to_string(i) + " " + arg.shape.str();
    if (arg.shape == r.shape) {
      out += quoted(element_name(tape, arg, element)) + " = " + number(element_value(tape, arg, element));
    }
  }
  return out;
}
}  // namespace

void Tape::set_anomaly_detection(bool on) {
  if (on && !anomaly_) anomaly_next_ = static_cast<NodeId>(nodes_.size());
  anomaly_ = on;
}

void Tape::check_values(NodeId end) {
  auto record = tensors_from(anomaly_next_);
  for (NodeId n = anomaly_next_; n < end; ++n) {
    while (record != tensors_.end() && record->node < n) ++record;
    const bool f32 = record != tensors_.end() && record->node == n && record->dtype == DType::f32;
    // The node's values as a TensorArg, so float32 ones are read from their arena.
    const TensorArg own{f32 ? record->output : offset(n), f32 ? record->shape : Shape{size(n)},
                        f32 ? DType::f32 : DType::f64};
    std::size_t element = 0;
    while (element < own.shape.size() && std::isfinite(element_value(*this, own, element))) ++element;
    if (element == own.shape.size()) continue;
    anomaly_next_ = end;  // report each anomaly once
    const std::string value = number(element_value(*this, own, element));
    if (op(n) != Op::Tensor && !f32) {
      throw Error("anomaly: " + describe(*this, n) + (is_leaf(op(n)) ? " holds " : " produced ") + value +
                  scalar_operands(*this, n));
    }
    const TensorRecord& r = tensor_record(n);
    throw Error("anomaly: " + describe(*this, n) + " of shape " + r.shape.str() +
                (is_leaf(op(n)) ? " holds " : " produced ") + value + " at element " + index_of(r.shape, element) +
                quoted(element_name(*this, own, element)) + tensor_operands(*this, r, element));
  }
  anomaly_next_ = std::max(anomaly_next_, end);
}

void Tape::throw_grad_anomaly(NodeId n, std::uint32_t i, double grad) const {
  const Slot arg = arg_slots(n)[i];
  throw Error("anomaly: backward of " + describe(*this, n) + " made the grad of operand " + std::to_string(i) +
              quoted(slot_name(arg)) + " (node " + std::to_string(node_of(arg)) + ") " + number(grads_[arg]) +
              ": partial " + number(partials(n)[i]) + " times grad " + number(grad) + "; operand value " +
              number(values_[arg]));
}

void Tape::check_grads(const TensorRecord& r) const {
  const std::span<const TensorArg> args = tensor_args(r);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const TensorArg& arg = args[i];
    for (std::size_t k = 0; k < arg.shape.size(); ++k) {
      const std::size_t at = arg.offset + k;
      const double grad = arg.dtype == DType::f32 ? double{grads_f32_[at]} : grads_[at];
      if (std::isfinite(grad)) continue;
      throw Error("anomaly: backward of " + describe(*this, r.node) + " of shape " + r.shape.str() +
                  " made the grad of operand " + std::to_string(i) + " " + arg.shape.str() + " at element " +
                  index_of(arg.shape, k) + quoted(element_name(*this, arg, k)) + " " + number(grad) +
                  "; operand value " + number(element_value(*this, arg, k)));
    }
  }
}

}  // namespace gradpath
