// SPDX-License-Identifier: MIT
// TensorVar: a handle to a row-major run of slots with a shape. The slots belong either
// to one tensor node (the output of a fused op) or to consecutive scalar nodes (a leaf
// tensor, stacked scalars, the outputs of conv2d_mac), so scalar and tensor graphs mix.
#pragma once

#include <span>
#include <vector>

#include "autodiff/tape.hpp"

namespace gradpath {

class TensorVar {
 public:
  TensorVar() = default;
  // `first` is the Var of element 0; the tensor spans shape.size() slots from it.
  TensorVar(const Var& first, const Shape& shape);

  const Shape& shape() const { return shape_; }
  std::size_t size() const { return size_; }
  std::size_t rank() const { return shape_.rank(); }
  Tape& tape() const { return first_.tape(); }
  Slot offset() const { return first_.slot(); }
  const Var& first() const { return first_; }
  TensorArg arg() const { return {first_.slot(), shape_}; }

  // Element i (row-major) as a scalar Var; an Error names the shape when out of range.
  Var operator[](std::size_t i) const {
    const Tape& t = Tape::of(first_, "element");
    if (i >= size_) [[unlikely]]
      throw_out_of_range(i);
    return t.var_at(first_.slot() + static_cast<Slot>(i));
  }
  Var at(std::initializer_list<std::size_t> index) const;

  std::span<const double> values() const;
  std::span<const double> grads() const;  // zeros before backward
  std::vector<Var> elements() const;
  // Same slots, another shape of the same size (a view: no node is recorded).
  TensorVar reshape(const Shape& shape) const;
  // Names the elements name1 ... nameN: the tensor's node when it is one tensor node,
  // otherwise the run of scalar nodes it spans.
  TensorVar& named(std::string_view name);

 private:
  [[noreturn]] void throw_out_of_range(std::size_t i) const;

  Var first_;
  Shape shape_;
  std::size_t size_ = 1;  // shape_.size(), kept for the element access of hot loops
};

// Scalars as one tensor: a view when they already sit in consecutive slots of whole
// scalar nodes, otherwise one copy node per element (partial 1), consecutive.
TensorVar stack(std::span<const Var> elements, const Shape& shape);

}  // namespace gradpath
