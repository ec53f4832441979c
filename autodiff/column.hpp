// SPDX-License-Identifier: MIT
// Columns: the growable arrays behind the tape's hot columns (node records, operands, values).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <span>
#include <tuple>
#include <type_traits>

namespace gradpath::detail {

// One or more arrays of trivially copyable values that grow together under ONE count and
// ONE capacity (a struct of arrays): a node's op and span, an operand's slot and partial.
// Recording makes room for everything a node appends with one capacity check (room) and
// then appends with plain stores at one index, so the hot path loads and stores a single
// count per group, not an end pointer per array. Growth doubles and keeps its capacity
// through clear() and resize() down.
template <typename... Ts>
class Columns {
  static_assert((std::is_trivially_copyable_v<Ts> && ...));
  template <std::size_t I>
  using Type = std::tuple_element_t<I, std::tuple<Ts...>>;

 public:
  Columns() = default;
  Columns(const Columns&) = delete;
  Columns& operator=(const Columns&) = delete;
  ~Columns() {
    std::apply([](auto*... arrays) { (std::free(arrays), ...); }, arrays_);
  }

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  std::size_t available() const { return capacity_ - size_; }
  // Bytes per element across the arrays (for the tape's memory report).
  static constexpr std::size_t element_bytes = (sizeof(Ts) + ...);

  template <std::size_t I>
  Type<I>* data() {
    return std::get<I>(arrays_);
  }
  template <std::size_t I>
  const Type<I>* data() const {
    return std::get<I>(arrays_);
  }
  template <std::size_t I>
  Type<I>& at(std::size_t i) {
    return std::get<I>(arrays_)[i];
  }
  template <std::size_t I>
  const Type<I>& at(std::size_t i) const {
    return std::get<I>(arrays_)[i];
  }
  template <std::size_t I>
  std::span<const Type<I>> column() const {
    return {std::get<I>(arrays_), size_};
  }

  // Ensures the next `n` append() calls fit.
  void room(std::size_t n) {
    if (capacity_ - size_ < n) [[unlikely]]
      grow(size_ + n);
  }
  // Only after room(): appends one element to every array, without a capacity check.
  void append(Ts... values) {
    append_at(size_, std::index_sequence_for<Ts...>{}, values...);
    ++size_;
  }
  // Appends n elements for the caller to write; returns their first index.
  std::size_t extend(std::size_t n) {
    room(n);
    const std::size_t first = size_;
    size_ += n;
    return first;
  }
  void reserve(std::size_t n) {
    if (n > capacity_) grow(n);
  }
  // New elements are zero (value-initialised), as std::vector::resize makes them.
  void resize(std::size_t n) {
    reserve(n);
    if (n > size_) std::apply([&](auto*... arrays) { (std::fill(arrays + size_, arrays + n, Ts{}), ...); }, arrays_);
    size_ = n;
  }
  void clear() { size_ = 0; }

  // A single array reads like a std::vector.
  auto* data() requires(sizeof...(Ts) == 1) { return data<0>(); }
  const auto* data() const requires(sizeof...(Ts) == 1) { return data<0>(); }
  auto& operator[](std::size_t i) requires(sizeof...(Ts) == 1) { return at<0>(i); }
  const auto& operator[](std::size_t i) const requires(sizeof...(Ts) == 1) { return at<0>(i); }
  auto begin() const requires(sizeof...(Ts) == 1) { return data<0>(); }
  auto end() const requires(sizeof...(Ts) == 1) { return data<0>() + size_; }

 private:
  template <std::size_t... I>
  void append_at(std::size_t i, std::index_sequence<I...>, Ts... values) {
    ((std::get<I>(arrays_)[i] = values), ...);
  }
  // Each array is reallocated in turn; the capacity changes only once all have grown, so
  // a failed allocation leaves the group as it was (its arrays merely larger).
  void grow(std::size_t min_capacity) {
    const std::size_t capacity = std::max({min_capacity, 2 * capacity_, std::size_t{64}});
    std::apply([&](auto*&... arrays) { (reallocate(arrays, capacity), ...); }, arrays_);
    capacity_ = capacity;
  }
  template <typename T>
  static void reallocate(T*& array, std::size_t capacity) {
    T* p = static_cast<T*>(std::realloc(static_cast<void*>(array), capacity * sizeof(T)));
    if (p == nullptr) throw std::bad_alloc();
    array = p;
  }

  std::tuple<Ts*...> arrays_{};
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

template <typename T>
using Column = Columns<T>;

}  // namespace gradpath::detail
