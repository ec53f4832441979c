// SPDX-License-Identifier: MIT
// Shape: the dimensions of a row-major tensor (rank 0 to 6; NCHW for images).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

namespace gradpath {

// a * b, or nothing when the product does not fit in std::size_t: every product of
// sizes that user input can make large goes through here before anything is allocated.
inline std::optional<std::size_t> checked_mul(std::size_t a, std::size_t b) {
  std::size_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
  return product;
}

// Elements a tape can hold in one arena (its slots are 32-bit indices).
inline constexpr std::size_t max_tape_elements = 0xFFFFFFFEu;

class Shape {
 public:
  static constexpr std::size_t max_rank = 6;
  static constexpr std::size_t max_dim = 0xFFFFFFFFu;  // dimensions are stored in 32 bits

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
  // Number of elements (1 for rank 0); an Error when it does not fit in std::size_t, so
  // a shape whose count would wrap can never pass a size comparison (reshape).
  std::size_t size() const;
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

// The element count of an output with these dimensions, when each fits a Shape and the
// count fits a tape; nothing otherwise. Ops check the sizes they compute from options
// (a padding, a stride) with this before they allocate or record anything.
std::optional<std::size_t> tape_sized(std::initializer_list<std::size_t> dims);

}  // namespace gradpath
