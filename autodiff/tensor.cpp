// SPDX-License-Identifier: MIT
// TensorVar, a row-major view of tensor values on a tape, and stack() of scalars.
#include "autodiff/tensor.hpp"

#include <utility>

namespace gradpath {

TensorVar TensorVar::float32(const Var& node, Slot offset, const Shape& shape, bool needs_grad) {
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
  t32.needs_grad_ = needs_grad;
  return t32;
}

TensorVar::TensorVar(const Var& first, const Shape& shape, bool needs_grad)
    : first_(first), shape_(shape), offset_(first.slot()), size_(shape.size()), needs_grad_(needs_grad) {
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
    t.set_range_name(first, last - first + 1, name, shape_);
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
