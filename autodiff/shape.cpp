// SPDX-License-Identifier: MIT
#include "autodiff/shape.hpp"

#include "autodiff/error.hpp"

namespace gradpath {

Shape::Shape(std::initializer_list<std::size_t> dims) {
  for (auto d : dims) push_back(d);
}

std::size_t Shape::size() const {
  std::size_t n = 1;
  for (std::size_t i = 0; i < rank_; ++i) {
    const auto product = checked_mul(n, dims_[i]);
    if (!product) throw Error("shape " + str() + ": the element count does not fit in 64 bits");
    n = *product;
  }
  return n;
}

void Shape::push_back(std::size_t dim) {
  if (rank_ == max_rank) throw Error("shape: rank above " + std::to_string(max_rank) + " is not supported");
  if (dim > max_dim) throw Error("shape: dimension " + std::to_string(dim) + " is too large");
  dims_[rank_++] = static_cast<std::uint32_t>(dim);
}

std::optional<std::size_t> tape_sized(std::initializer_list<std::size_t> dims) {
  std::size_t n = 1;
  for (std::size_t d : dims) {
    const auto product = checked_mul(n, d);
    if (d > Shape::max_dim || !product || *product > max_tape_elements) return std::nullopt;
    n = *product;
  }
  return n;
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
