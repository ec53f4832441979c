// SPDX-License-Identifier: MIT
// Recording: scalar and tensor leaves, scalar records, tensor records with their operands
// and saved data, the lookup of a node's tensor record, and a tensor op's partials.
#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "autodiff/tape.hpp"
#include "autodiff/tensor.hpp"

namespace gradpath {

namespace detail {
void throw_wrong_options(const TensorRecord& record, const OptionsType& wanted) {
  const std::string op(record.info != nullptr ? record.info->name : "tensor op");
  const OptionsType* held = record.options.type();
  throw Error("options: node " + std::to_string(record.node) + " is a " + op + ", which recorded " +
              (held != nullptr ? "the options of " + std::string(held->op) : std::string("no options")) +
              "; read as the options of " + std::string(wanted.op));
}
}  // namespace detail

namespace {
template <typename T>
void check_leaf_values(std::span<const T> values, const Shape& shape, std::string_view name, bool is_param) {
  if (values.size() != shape.size()) {
    throw Error(std::string(is_param ? "param" : "input") + " '" + std::string(name) +
                "': " + std::to_string(values.size()) + " values for shape " + shape.str() + " (" +
                std::to_string(shape.size()) + " elements)");
  }
  if (values.empty()) throw Error(std::string(is_param ? "param" : "input") + ": empty tensor of shape " + shape.str());
}

// Debug builds fill a tensor node's fresh outputs with NaN, so a forward kernel that
// reads one before writing it, or leaves one unwritten, fails every test that reads it;
// release builds leave them for the kernel to write.
template <typename T>
void poison_unwritten([[maybe_unused]] T* values, [[maybe_unused]] std::size_t n) {
#ifndef NDEBUG
  std::fill_n(values, n, std::numeric_limits<T>::quiet_NaN());
#endif
}

// A leaf tensor node's rule: nothing to propagate.
void leaf_backward(Tape&, const TensorRecord&) {}
constexpr TensorOpInfo input_f32_info{"input", &leaf_backward};
constexpr TensorOpInfo param_f32_info{"param", &leaf_backward};
}  // namespace

// ---- leaves ------------------------------------------------------------------------

Var Tape::leaf(Op op, double value, std::string_view name) {
  value = leaf_value(value);
  const Slot s = push_scalar(op, value);
  if (op == Op::Param) keep_through_last_node();
  if (!name.empty()) set_name(static_cast<NodeId>(nodes_.size() - 1), name);
  return var_at(s);
}

// One scalar leaf node per element, grown for all of them at once.
TensorVar Tape::leaf_tensor(Op op, std::span<const double> values, const Shape& shape, std::string_view name) {
  check_leaf_values(values, shape, name, op == Op::Param);
  if (nodes_.available() < values.size()) grow(op_name(op), values.size(), 0, values.size());
  const auto first_node = static_cast<NodeId>(nodes_.size());
  const auto first = static_cast<Slot>(values_.size());
  for (const double value : values) append_scalar(op, leaf_value(value));
  if (op == Op::Param) keep_through_last_node();
  if (!name.empty()) {
    if (shape.rank() == 0) {
      set_name(first_node, name);
    } else {
      set_range_name(first_node, static_cast<NodeId>(values.size()), name, shape);
    }
  }
  return TensorVar(var_at(first), shape);
}

Var Tape::input(double value, std::string_view name) { return leaf(Op::Input, value, name); }
Var Tape::param(double value, std::string_view name) { return leaf(Op::Param, value, name); }

// Values of either type are rounded straight into the float arena: nothing is allocated
// once the arena has room, so a training loop feeding f32 batches stops allocating too.
template <typename V>
TensorVar Tape::leaf_f32(Op op, std::span<const V> values, const Shape& shape, std::string_view name) {
  check_leaf_values(values, shape, name, op == Op::Param);
  if (values_f32_.size() + values.size() >= max_slots) {
    throw CapacityError(std::string(op_name(op)) + ": the float32 arena is full (2^32 elements)");
  }
  // Every growth (and its memory limit check) first, so a refusal leaves the tape as it was.
  reserve_tensor_side(op_name(op), 0, 0);
  reserve_f32(op_name(op), values.size());
  TensorRecord r;
  r.node = static_cast<NodeId>(nodes_.size());
  const Slot s = push_scalar(op, 0.0);
  r.info = op == Op::Param ? &param_f32_info : &input_f32_info;
  r.shape = shape;
  r.arg_begin = r.arg_end = static_cast<std::uint32_t>(tensor_args_.size());
  r.saved_begin = r.saved_end = static_cast<std::uint32_t>(saved_.size());
  r.dtype = DType::f32;
  r.output = static_cast<Slot>(values_f32_.size());
  for (V v : values) values_f32_.append(static_cast<float>(leaf_value(static_cast<double>(v))));
  tensors_.push_back(r);
  if (op == Op::Param) keep_through_last_node();
  if (!name.empty()) set_name(r.node, name);
  return TensorVar::float32(var_at(s), r.output, shape);
}

TensorVar Tape::input(std::span<const double> values, const Shape& shape, std::string_view name, DType dtype) {
  if (dtype == DType::f32) return leaf_f32(Op::Input, values, shape, name);
  return leaf_tensor(Op::Input, values, shape, name);
}
TensorVar Tape::param(std::span<const double> values, const Shape& shape, std::string_view name, DType dtype) {
  if (dtype == DType::f32) return leaf_f32(Op::Param, values, shape, name);
  return leaf_tensor(Op::Param, values, shape, name);
}
TensorVar Tape::input(std::span<const float> values, const Shape& shape, std::string_view name) {
  return leaf_f32(Op::Input, values, shape, name);
}
TensorVar Tape::param(std::span<const float> values, const Shape& shape, std::string_view name) {
  return leaf_f32(Op::Param, values, shape, name);
}

// An input, marked so that tensor ops compute no grad for it.
TensorVar Tape::constant(std::span<const double> values, const Shape& shape, std::string_view name, DType dtype) {
  const TensorVar x = input(values, shape, name, dtype);
  return dtype == DType::f32 ? TensorVar::float32(x.first(), x.offset(), shape, false)
                             : TensorVar(x.first(), shape, false);
}
TensorVar Tape::constant(std::span<const float> values, const Shape& shape, std::string_view name) {
  const TensorVar x = input(values, shape, name);
  return TensorVar::float32(x.first(), x.offset(), shape, false);
}

void Tape::keep_through_last_node() {
  keep_nodes_ = static_cast<NodeId>(nodes_.size());
  keep_slots_ = static_cast<Slot>(values_.size());
}

// ---- scalar and tensor records -------------------------------------------------------

// Note [Dot pairs]: a dot product z = Σ x_k·y_k has 2n operands whose partials are each
// other's values (∂z/∂x_k = y_k). Its record keeps one operand entry per pair: x_k's slot in
// the slot column and y_k's in the partial column (pair_bits), 12 bytes a pair where the
// operands written out would take 24, and the partials are read from the value arena when
// needed: by the sweep, and by everything else through arg_slots() and partials(), which
// give the operands and partials written out. So close() and record() refuse Op::Dot: an
// operand list pushed by hand is not pairs.
void Tape::refuse_dot_by_operands() {
  drop_pending_operands();
  throw Error("dot: a dot product's operands are pairs; record it with dot(x, y), not with push_arg and close");
}

Var Tape::close_slow(Op op, double value) {
  const Slot s = push_scalar(op, value);
  if (anomaly_) check_values(static_cast<NodeId>(nodes_.size() - 1));
  return Var(index_, s, epoch_);
}

Var Tape::record(Op op, double value, std::span<const Slot> args, std::span<const double> partials) {
  if (args.size() != partials.size()) {
    throw Error(std::string(op_name(op)) + ": " + std::to_string(args.size()) + " operands but " +
                std::to_string(partials.size()) + " partials");
  }
  if (op == Op::Dot) refuse_dot_by_operands();
  room_args(args.size(), op);
  for (std::size_t i = 0; i < args.size(); ++i) args_.append(args[i], partials[i]);
  return close(op, value);
}

NodeId Tape::record_tensor(const TensorOpInfo& info, const Shape& shape, std::span<const TensorArg> args,
                           const OpOptions& options, std::size_t saved_size, DType dtype) {
  const std::size_t n = shape.size();
  const bool f32 = dtype == DType::f32;
  if (n == 0) throw Error(std::string(info.name) + ": empty tensor of shape " + shape.str());
  if (n >= max_slots - (f32 ? values_f32_.size() : values_.size())) {
    throw CapacityError(std::string(info.name) + ": the tape is full (2^32 " + (f32 ? "float32 elements)" : "slots)"));
  }
  if (anomaly_) check_values(static_cast<NodeId>(nodes_.size()));
  reserve_tensor_side(info.name, args.size(), saved_size);
  if (f32) reserve_f32(info.name, n);
  const std::size_t slots = f32 ? 1 : n;  // a float32 node keeps one placeholder slot (value 0)
  if (nodes_.available() == 0 || values_.available() < slots - 1 + nodes_.available()) {
    grow(info.name, 1, 0, slots);
  }
  TensorRecord r;
  r.node = static_cast<NodeId>(nodes_.size());
  r.info = &info;
  r.shape = shape;
  r.arg_begin = static_cast<std::uint32_t>(tensor_args_.size());
  tensor_args_.insert(tensor_args_.end(), args.begin(), args.end());
  r.arg_end = static_cast<std::uint32_t>(tensor_args_.size());
  r.saved_begin = static_cast<std::uint32_t>(saved_.size());
  saved_.resize(saved_.size() + saved_size);
  r.saved_end = static_cast<std::uint32_t>(saved_.size());
  r.options = options;
  r.dtype = dtype;
  const auto offset = static_cast<Slot>(values_.size());
  // The op's forward kernel writes every output value next, so they are not zeroed first
  // (a float32 node's placeholder slot is, as no kernel writes it).
  double* slot_values = values_.data() + values_.extend(slots);
  nodes_.append(Op::Tensor, {offset, static_cast<std::uint32_t>(args_.size())});
  r.output = f32 ? static_cast<Slot>(values_f32_.size()) : offset;
  if (f32) {
    slot_values[0] = 0.0;
    poison_unwritten(values_f32_.data() + values_f32_.extend(n), n);
  } else {
    poison_unwritten(slot_values, n);
  }
  tensors_.push_back(r);
  return r.node;
}

// ---- reading tensor records ----------------------------------------------------------

std::vector<TensorRecord>::const_iterator Tape::tensors_from(NodeId n) const {
  return std::lower_bound(tensors_.begin(), tensors_.end(), n,
                          [](const TensorRecord& r, NodeId id) { return r.node < id; });
}

const TensorRecord* Tape::find_tensor(NodeId n) const {
  const auto it = tensors_from(n);
  return it != tensors_.end() && it->node == n ? &*it : nullptr;
}

const TensorRecord& Tape::tensor_record(NodeId n) const {
  if (const TensorRecord* r = find_tensor(n)) return *r;
  throw Error("tensor_record: node " + std::to_string(n) + " is not a tensor node");
}

std::span<const TensorArg> Tape::tensor_args(const TensorRecord& r) const {
  return std::span(tensor_args_).subspan(r.arg_begin, r.arg_end - r.arg_begin);
}
std::span<double> Tape::saved(const TensorRecord& r) {
  return std::span(saved_).subspan(r.saved_begin, r.saved_end - r.saved_begin);
}
std::span<const double> Tape::saved(const TensorRecord& r) const {
  return std::span(saved_).subspan(r.saved_begin, r.saved_end - r.saved_begin);
}

std::vector<double> Tape::tensor_partials(NodeId n, std::size_t element) {
  const TensorRecord& r = tensor_record(n);
  const auto args = tensor_args(r);
  if (r.dtype == DType::f32 ||
      std::any_of(args.begin(), args.end(), [](const TensorArg& a) { return a.dtype == DType::f32; })) {
    throw Error("tensor_partials: " + std::string(r.info->name) + " node " + std::to_string(n) +
                " involves float32; check gradients in double");
  }
  if (element >= r.shape.size()) {
    throw Error("tensor_partials: element " + std::to_string(element) + " is out of range for " +
                std::string(r.info->name) + " output " + r.shape.str());
  }
  // Only the output and operand ranges are touched: save them, run the rule on zeros
  // seeded with a unit vector, read the operand grads, put the saved grads back. The
  // partials are the op's own, a constant operand's too: the rule runs as if every
  // operand needed its grad.
  std::vector<std::pair<Slot, std::size_t>> ranges{{offset(n), r.shape.size()}};
  for (const TensorArg& a : args) ranges.emplace_back(a.offset, a.shape.size());
  const bool had_grads = has_grads();
  if (!had_grads) grads_.assign(values_.size(), 0.0);
  std::vector<double> kept;
  for (auto [first, count] : ranges) kept.insert(kept.end(), grads_.begin() + first, grads_.begin() + first + count);
  for (auto [first, count] : ranges) std::fill_n(grads_.begin() + first, count, 0.0);
  grads_[offset(n) + element] = 1.0;
  const auto stored_args = std::span(tensor_args_).subspan(r.arg_begin, args.size());
  std::vector<bool> needed;
  for (TensorArg& a : stored_args) needed.push_back(std::exchange(a.needs_grad, true));
  r.info->backward(*this, r);
  for (std::size_t i = 0; i < stored_args.size(); ++i) stored_args[i].needs_grad = needed[i];
  std::vector<double> partials;
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    partials.insert(partials.end(), grads_.begin() + ranges[i].first,
                    grads_.begin() + ranges[i].first + ranges[i].second);
  }
  std::size_t at = 0;
  for (auto [first, count] : ranges) {
    std::copy_n(kept.begin() + at, count, grads_.begin() + first);
    at += count;
  }
  if (!had_grads) grads_.clear();
  return partials;
}

// Sound because a rule writes only grads_, which is mutable, and the above restores them.
std::vector<double> Tape::tensor_partials(NodeId n, std::size_t element) const {
  return const_cast<Tape&>(*this).tensor_partials(n, element);
}

}  // namespace gradpath
