// SPDX-License-Identifier: MIT
// Column: the growable array behind the tape's hot columns (node records, operands, values).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <span>
#include <type_traits>

namespace gradpath::detail {

// Like std::vector for trivially copyable values, except that recording can make room
// for everything a node appends with one capacity check (room) and then append with a
// plain pointer bump (append). Growth doubles and keeps its capacity through clear().
template <typename T>
class Column {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  Column() = default;
  Column(const Column&) = delete;
  Column& operator=(const Column&) = delete;
  ~Column() { std::free(begin_); }

  std::size_t size() const { return static_cast<std::size_t>(end_ - begin_); }
  std::size_t capacity() const { return static_cast<std::size_t>(cap_ - begin_); }
  bool empty() const { return end_ == begin_; }
  std::size_t available() const { return static_cast<std::size_t>(cap_ - end_); }
  T* data() { return begin_; }
  const T* data() const { return begin_; }
  T* begin() { return begin_; }
  T* end() { return end_; }
  const T* begin() const { return begin_; }
  const T* end() const { return end_; }
  T& operator[](std::size_t i) { return begin_[i]; }
  const T& operator[](std::size_t i) const { return begin_[i]; }
  T& back() { return end_[-1]; }
  const T& back() const { return end_[-1]; }

  // Ensures the next `n` append() calls fit.
  void room(std::size_t n) {
    if (static_cast<std::size_t>(cap_ - end_) < n) [[unlikely]]
      grow(size() + n);
  }
  // Only after room(): appends without a capacity check.
  void append(T value) { *end_++ = value; }
  void push_back(T value) {
    room(1);
    append(value);
  }
  // Appends n elements for the caller to write; returns the first.
  T* extend(std::size_t n) {
    room(n);
    T* first = end_;
    end_ += n;
    return first;
  }
  void append(std::span<const T> values) {
    room(values.size());
    std::copy(values.begin(), values.end(), end_);
    end_ += values.size();
  }
  void reserve(std::size_t n) {
    if (n > capacity()) grow(n);
  }
  // New elements are zero (value-initialised), as std::vector::resize makes them.
  void resize(std::size_t n) {
    reserve(n);
    if (n > size()) std::fill(end_, begin_ + n, T{});
    end_ = begin_ + n;
  }
  void clear() { end_ = begin_; }

 private:
  void grow(std::size_t min_capacity) {
    const std::size_t n = size(), capacity = std::max({min_capacity, 2 * this->capacity(), std::size_t{64}});
    T* p = static_cast<T*>(std::realloc(static_cast<void*>(begin_), capacity * sizeof(T)));
    if (p == nullptr) throw std::bad_alloc();
    begin_ = p;
    end_ = p + n;
    cap_ = p + capacity;
  }

  T* begin_ = nullptr;
  T* end_ = nullptr;
  T* cap_ = nullptr;
};

}  // namespace gradpath::detail
