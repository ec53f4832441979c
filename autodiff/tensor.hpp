// SPDX-License-Identifier: MIT
// TensorVar: a handle to a row-major run of slots with a shape. The slots belong either
// to one tensor node (the output of a fused op) or to consecutive scalar nodes (a leaf
// tensor, stacked scalars, the outputs of conv2d_mac), so scalar and tensor graphs mix.
// A float32 tensor is always (a view of) one tensor node whose elements live in the
// tape's float arena: it mixes with f64 only through ops::cast, and its elements are
// not scalar Vars (check gradients in double).
#pragma once

#include <span>
#include <vector>

#include "autodiff/tape.hpp"

namespace gradpath {

class TensorVar {
 public:
  TensorVar() = default;
  // An f64 tensor: `first` is the Var of element 0; the tensor spans shape.size() slots from it.
  // needs_grad false: tensor ops compute no grad for it (a constant, Tape::constant).
  TensorVar(const Var& first, const Shape& shape, bool needs_grad = true);
  // An f32 tensor: `node` is the Var of the tensor node's own slot; the tensor spans
  // shape.size() elements of the float arena from `offset`.
  static TensorVar float32(const Var& node, Slot offset, const Shape& shape, bool needs_grad = true);

  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  std::size_t size() const { return size_; }
  std::size_t rank() const { return shape_.rank(); }
  Tape& tape() const { return first_.tape(); }
  // Element 0 in the arena of dtype(): a slot for f64, an index into values_f32() for f32.
  Slot offset() const { return offset_; }
  // f64: the Var of element 0. f32: the Var of the tensor node (its one slot holds 0).
  const Var& first() const { return first_; }
  TensorArg arg() const { return {offset_, shape_, dtype_, needs_grad_}; }
  // False for a constant and a tensor computed from constants alone (TensorArg::needs_grad).
  bool needs_grad() const { return needs_grad_; }

  // Element i (row-major) as a scalar Var; an Error names the shape when out of range,
  // and for a float32 tensor (cast it to f64 first: ops::cast(t, DType::f64)).
  Var operator[](std::size_t i) const {
    const Tape& t = Tape::of(first_, "element");
    if (i >= size_ || dtype_ != DType::f64) [[unlikely]]
      throw_bad_element(i);
    return t.var_at(first_.slot() + static_cast<Slot>(i));
  }
  Var at(std::initializer_list<std::size_t> index) const;

  // Values and grads (zeros before backward) of an f64 tensor; an Error for f32. The
  // spans point into the tape's arenas and dangle once they move: values() after the next
  // record or reset(), grads() after the next backward() too. Copy what you keep, or call
  // the accessor again.
  std::span<const double> values() const;
  std::span<const double> grads() const;
  // The same for an f32 tensor; an Error for f64.
  std::span<const float> values_f32() const;
  std::span<const float> grads_f32() const;
  // The value of a one-element tensor of either dtype, as a double (a loss).
  double item() const;
  std::vector<Var> elements() const;
  // Same slots, another shape of the same size (a view: no node is recorded).
  TensorVar reshape(const Shape& shape) const;
  // Names the elements name1 ... nameN: the tensor's node when it is one tensor node,
  // otherwise the run of scalar nodes it spans.
  TensorVar& named(std::string_view name);

 private:
  [[noreturn]] void throw_bad_element(std::size_t i) const;

  Var first_;
  Shape shape_;
  Slot offset_ = 0;
  DType dtype_ = DType::f64;
  std::size_t size_ = 1;  // shape_.size(), kept for the element access of hot loops
  bool needs_grad_ = true;
};

// Scalars as one tensor: a view when they already sit in consecutive slots of whole
// scalar nodes, otherwise one copy node per element (partial 1), consecutive.
TensorVar stack(std::span<const Var> elements, const Shape& shape);

}  // namespace gradpath
