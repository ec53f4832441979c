// SPDX-License-Identifier: MIT
#include "autodiff/tensor.hpp"

#include <utility>

namespace gradpath {

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

TensorVar leaf_tensor(Tape& tape, std::span<const double> values, const Shape& shape, std::string_view name,
                      bool is_param) {
  check_leaf_values(values, shape, name, is_param);
  const auto first_node = static_cast<NodeId>(tape.node_count());
  Var first;
  for (std::size_t i = 0; i < values.size(); ++i) {
    Var v = is_param ? tape.param(values[i]) : tape.input(values[i]);
    if (i == 0) first = v;
  }
  if (!name.empty()) {
    if (shape.rank() == 0) {
      tape.set_name(first_node, name);
    } else {
      tape.set_range_name(first_node, static_cast<NodeId>(values.size()), name);
    }
  }
  return TensorVar(first, shape);
}

// A leaf tensor node's rule: nothing to propagate.
void leaf_backward(Tape&, const TensorRecord&) {}
constexpr TensorOpInfo input_f32_info{"input", &leaf_backward};
constexpr TensorOpInfo param_f32_info{"param", &leaf_backward};
}  // namespace

// Values of either type are rounded straight into the float arena: nothing is allocated
// once the arena has room, so a training loop feeding f32 batches stops allocating too.
template <typename V>
TensorVar Tape::leaf_f32(Op op, std::span<const V> values, const Shape& shape, std::string_view name) {
  check_leaf_values(values, shape, name, op == Op::Param);
  if (values_f32_.size() + values.size() >= 0xFFFFFFFFu) {
    throw CapacityError(std::string(op_name(op)) + ": the float32 arena is full (2^32 elements)");
  }
  // Every growth (and its memory limit check) first, so a refusal leaves the tape as it was.
  reserve_tensor_side(op_name(op), 0, 0);
  reserve_f32(op_name(op), values.size());
  TensorRecord r;
  r.node = static_cast<NodeId>(op_.size());
  const Slot s = push_scalar(op, 0.0);
  r.info = op == Op::Param ? &param_f32_info : &input_f32_info;
  r.shape = shape;
  r.arg_begin = r.arg_end = static_cast<std::uint32_t>(tensor_args_.size());
  r.saved_begin = r.saved_end = static_cast<std::uint32_t>(saved_.size());
  r.dtype = DType::f32;
  r.output = static_cast<Slot>(values_f32_.size());
  for (V v : values) values_f32_.push_back(static_cast<float>(leaf_value(static_cast<double>(v))));
  tensors_.push_back(r);
  if (op == Op::Param) keep_through_last_node();
  if (!name.empty()) set_name(r.node, name);
  return TensorVar::float32(var_at(s), r.output, shape);
}

TensorVar Tape::input(std::span<const double> values, const Shape& shape, std::string_view name, DType dtype) {
  if (dtype == DType::f32) return leaf_f32(Op::Input, values, shape, name);
  return leaf_tensor(*this, values, shape, name, false);
}
TensorVar Tape::param(std::span<const double> values, const Shape& shape, std::string_view name, DType dtype) {
  if (dtype == DType::f32) return leaf_f32(Op::Param, values, shape, name);
  return leaf_tensor(*this, values, shape, name, true);
}
TensorVar Tape::input(std::span<const float> values, const Shape& shape, std::string_view name) {
  return leaf_f32(Op::Input, values, shape, name);
}
TensorVar Tape::param(std::span<const float> values, const Shape& shape, std::string_view name) {
  return leaf_f32(Op::Param, values, shape, name);
}

void Tape::backward(const TensorVar& root) {
  if (&Tape::of(root.first(), "backward") != this) throw Error("backward: the root tensor belongs to a different tape");
  if (root.size() != 1) {
    throw Error("backward: the root must hold one value, got a tensor of shape " + root.shape().str());
  }
  if (root.dtype() == DType::f64) return backward(root.first());
  clear_grads();
  grads_f32_[root.offset()] = 1.0f;
  sweep(node_of(root.first().slot()));
}

TensorVar TensorVar::float32(const Var& node, Slot offset, const Shape& shape) {
  Tape& t = Tape::of(node, "tensor");
  if (shape.size() == 0) throw Error("tensor: empty shape " + shape.str());
  if (offset > t.values_f32().size() || shape.size() > t.values_f32().size() - offset) {
    throw Error("tensor: float32 shape " + shape.str() + " from element " + std::to_string(offset) +
                " runs past the end of the float32 arena");
  }
  TensorVar t32;
  t32.first_ = node;
  t32.shape_ = shape;
  t32.offset_ = offset;
  t32.dtype_ = DType::f32;
  t32.size_ = shape.size();
  return t32;
}

TensorVar::TensorVar(const Var& first, const Shape& shape)
    : first_(first), shape_(shape), offset_(first.slot()), size_(shape.size()) {
  Tape& t = Tape::of(first, "tensor");
  if (shape.size() == 0) throw Error("tensor: empty shape " + shape.str());
  if (shape.size() > t.slot_count() - first.slot()) {
    throw Error("tensor: shape " + shape.str() + " from slot " + std::to_string(first.slot()) +
                " runs past the end of the tape");
  }
}

void TensorVar::throw_bad_element(std::size_t i) const {
  if (dtype_ == DType::f32) {
    throw Error("element: the tensor " + shape_.str() +
                " is float32, its elements are not scalar Vars; cast it first: ops::cast(t, DType::f64)");
  }
  throw Error("element: index " + std::to_string(i) + " is out of range for shape " + shape_.str());
}

Var TensorVar::at(std::initializer_list<std::size_t> index) const {
  if (index.size() != rank()) {
    throw Error("element: " + std::to_string(index.size()) + " indices for shape " + shape_.str());
  }
  std::size_t flat = 0, axis = 0;
  for (std::size_t i : index) {
    if (i >= shape_[axis]) {
      throw Error("element: index " + std::to_string(i) + " on axis " + std::to_string(axis) +
                  " is out of range for shape " + shape_.str());
    }
    flat = flat * shape_[axis++] + i;
  }
  return (*this)[flat];
}

namespace {
// An Error unless `t` has the dtype an accessor reads.
void require_dtype(const TensorVar& t, DType want, std::string_view what, std::string_view other) {
  if (t.dtype() != want) {
    throw Error(std::string(what) + ": the tensor " + t.shape().str() + " is " + std::string(dtype_name(t.dtype())) +
                "; read it with " + std::string(other) + "()");
  }
}
const Tape& tape_with_grads(const TensorVar& t, std::string_view what) {
  const Tape& tape = Tape::of(t.first(), what);
  if (!tape.has_grads())
    throw Error(std::string(what) + ": backward() has not run on this tape since it was last changed");
  return tape;
}
}  // namespace

std::span<const double> TensorVar::values() const {
  require_dtype(*this, DType::f64, "values", "values_f32");
  return std::as_const(Tape::of(first_, "values")).values().subspan(offset(), size());
}

std::span<const double> TensorVar::grads() const {
  require_dtype(*this, DType::f64, "grads", "grads_f32");
  return tape_with_grads(*this, "grads").grads().subspan(offset(), size());
}

std::span<const float> TensorVar::values_f32() const {
  require_dtype(*this, DType::f32, "values_f32", "values");
  return std::as_const(Tape::of(first_, "values_f32")).values_f32().subspan(offset(), size());
}

std::span<const float> TensorVar::grads_f32() const {
  require_dtype(*this, DType::f32, "grads_f32", "grads");
  return tape_with_grads(*this, "grads_f32").grads_f32().subspan(offset(), size());
}

double TensorVar::item() const {
  if (size() != 1)
    throw Error("item: the tensor " + shape_.str() + " holds " + std::to_string(size()) + " values, not one");
  return dtype_ == DType::f32 ? double{values_f32()[0]} : values()[0];
}

std::vector<Var> TensorVar::elements() const {
  const Tape& t = Tape::of(first_, "elements");
  std::vector<Var> out(size());
  for (std::size_t i = 0; i < size(); ++i) out[i] = t.var_at(offset() + static_cast<Slot>(i));
  return out;
}

TensorVar TensorVar::reshape(const Shape& shape) const {
  std::size_t n = 0;
  try {
    n = shape.size();
  } catch (const Error& e) {  // a count past 64 bits: it must not wrap into a match
    throw Error(std::string("reshape: ") + e.what());
  }
  if (n != size()) {
    throw Error("reshape: cannot view shape " + shape_.str() + " (" + std::to_string(size()) + " elements) as " +
                shape.str() + " (" + std::to_string(n) + " elements)");
  }
  TensorVar view = *this;
  view.shape_ = shape;  // same size_
  return view;
}

TensorVar& TensorVar::named(std::string_view name) {
  Tape& t = Tape::of(first_, "named");
  if (dtype_ == DType::f32) {  // always one whole node
    t.set_name(t.node_of(first_.slot()), name);
    return *this;
  }
  const NodeId first = t.node_of(offset());
  const NodeId last = t.node_of(offset() + static_cast<Slot>(size()) - 1);
  if (first == last && t.size(first) == size()) {
    t.set_name(first, name);  // one node: a tensor node numbers its elements itself
  } else if (last - first + 1 == size()) {
    t.set_range_name(first, last - first + 1, name);
  } else {
    throw Error("named: tensor " + shape_.str() + " spans part of a tensor node; name the whole tensor instead");
  }
  return *this;
}

TensorVar stack(std::span<const Var> elements, const Shape& shape) {
  if (elements.size() != shape.size() || elements.empty()) {
    throw Error("stack: " + std::to_string(elements.size()) + " scalars for shape " + shape.str());
  }
  Tape& t = Tape::of(elements.front(), "stack");
  bool consecutive = true;
  for (std::size_t i = 0; i < elements.size(); ++i) {
    Tape::of(elements[i], elements.front(), "stack");
    const Slot s = elements[i].slot();
    consecutive = consecutive && s == elements.front().slot() + i && t.size(t.node_of(s)) == 1;
  }
  if (consecutive) return TensorVar(elements.front(), shape);
  Var first;
  for (std::size_t i = 0; i < elements.size(); ++i) {
    Var copy = t.record(Op::Copy, t.value(elements[i].slot()), elements[i].slot(), 1.0);
    if (i == 0) first = copy;
  }
  return TensorVar(first, shape);
}

}  // namespace gradpath
