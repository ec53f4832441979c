// SPDX-License-Identifier: MIT
#include "autodiff/tensor.hpp"

#include <utility>

namespace gradpath {

namespace {
TensorVar leaf_tensor(Tape& tape, std::span<const double> values, const Shape& shape, std::string_view name,
                      bool is_param) {
  if (values.size() != shape.size()) {
    throw Error(std::string(is_param ? "param" : "input") + " '" + std::string(name) +
                "': " + std::to_string(values.size()) + " values for shape " + shape.str() + " (" +
                std::to_string(shape.size()) + " elements)");
  }
  if (values.empty()) throw Error(std::string(is_param ? "param" : "input") + ": empty tensor of shape " + shape.str());
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
}  // namespace

TensorVar Tape::input(std::span<const double> values, const Shape& shape, std::string_view name) {
  return leaf_tensor(*this, values, shape, name, false);
}
TensorVar Tape::param(std::span<const double> values, const Shape& shape, std::string_view name) {
  return leaf_tensor(*this, values, shape, name, true);
}

TensorVar::TensorVar(const Var& first, const Shape& shape) : first_(first), shape_(shape), size_(shape.size()) {
  Tape& t = Tape::of(first, "tensor");
  if (shape.size() == 0) throw Error("tensor: empty shape " + shape.str());
  if (first.slot() + shape.size() > t.slot_count()) {
    throw Error("tensor: shape " + shape.str() + " from slot " + std::to_string(first.slot()) +
                " runs past the end of the tape");
  }
}

void TensorVar::throw_out_of_range(std::size_t i) const {
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

std::span<const double> TensorVar::values() const {
  return std::as_const(Tape::of(first_, "values")).values().subspan(offset(), size());
}

std::span<const double> TensorVar::grads() const {
  const Tape& t = Tape::of(first_, "grads");
  if (!t.has_grads()) throw Error("grads: backward() has not run on this tape since it was last changed");
  return t.grads().subspan(offset(), size());
}

std::vector<Var> TensorVar::elements() const {
  const Tape& t = Tape::of(first_, "elements");
  std::vector<Var> out(size());
  for (std::size_t i = 0; i < size(); ++i) out[i] = t.var_at(offset() + static_cast<Slot>(i));
  return out;
}

TensorVar TensorVar::reshape(const Shape& shape) const {
  if (shape.size() != size()) {
    throw Error("reshape: cannot view shape " + shape_.str() + " (" + std::to_string(size()) + " elements) as " +
                shape.str() + " (" + std::to_string(shape.size()) + " elements)");
  }
  return TensorVar(first_, shape);
}

TensorVar& TensorVar::named(std::string_view name) {
  Tape& t = Tape::of(first_, "named");
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
