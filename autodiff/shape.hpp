// SPDX-License-Identifier: MIT
// Shape: the dimensions of a row-major tensor (rank 0 to 6; NCHW for images).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace gradpath {

class Shape {
 public:
  static constexpr std::size_t max_rank = 6;

  Shape() = default;  // rank 0: a scalar
  Shape(std::initializer_list<std::size_t> dims);
  template <typename Range>
  static Shape of(const Range& dims) {
    Shape s;
    for (auto d : dims) s.push_back(static_cast<std::size_t>(d));
    return s;
  }

  std::size_t rank() const { return rank_; }
  std::size_t operator[](std::size_t axis) const { return dims_[axis]; }
  std::size_t size() const;  // number of elements (1 for rank 0)
  void push_back(std::size_t dim);
  std::string str() const;  // "[2, 3]"

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (std::size_t i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }

 private:
  std::array<std::uint32_t, max_rank> dims_{};
  std::uint8_t rank_ = 0;
};

}  // namespace gradpath
