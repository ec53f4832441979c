// SPDX-License-Identifier: MIT
#include "autodiff/shape.hpp"

#include "autodiff/tape.hpp"

namespace gradpath {

Shape::Shape(std::initializer_list<std::size_t> dims) {
  for (auto d : dims) push_back(d);
}

std::size_t Shape::size() const {
  std::size_t n = 1;
  for (std::size_t i = 0; i < rank_; ++i) n *= dims_[i];
  return n;
}

void Shape::push_back(std::size_t dim) {
  if (rank_ == max_rank) throw Error("shape: rank above " + std::to_string(max_rank) + " is not supported");
  if (dim > 0xFFFFFFFFu) throw Error("shape: dimension " + std::to_string(dim) + " is too large");
  dims_[rank_++] = static_cast<std::uint32_t>(dim);
}

std::string Shape::str() const {
  std::string s = "[";
  for (std::size_t i = 0; i < rank_; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

}  // namespace gradpath
