// SPDX-License-Identifier: MIT
// The tape's memory: the bytes each group of columns holds (memory()), how the columns
// and arenas grow, the 2^32 ceilings of 32-bit indices, and the memory limit.
#include <algorithm>
#include <new>
#include <string>
#include <vector>

#include "autodiff/tape.hpp"

namespace gradpath {

namespace {
// Runs `allocate`; running out of memory becomes an Error naming the op, as passing the
// memory limit does, so a caller catching gradpath::Error sees both.
template <typename F>
void or_error(std::string_view what, F allocate) {
  try {
    allocate();
  } catch (const std::bad_alloc&) {
    throw CapacityError(std::string(what) + ": out of memory growing the tape (Tape::set_memory_limit caps it)");
  }
}

template <typename T>  // a std::vector
TapeBytes bytes_of(const std::vector<T>& c) {
  return {c.size() * sizeof(T), c.capacity() * sizeof(T)};
}
template <typename... Ts>
TapeBytes bytes_of(const detail::Columns<Ts...>& c) {
  constexpr std::size_t element = detail::Columns<Ts...>::element_bytes;
  return {c.size() * element, c.capacity() * element};
}
// Only a string too long for its inline buffer owns heap bytes.
TapeBytes bytes_of(const std::string& s) {
  if (s.capacity() <= std::string().capacity()) return {};
  return {s.size() + 1, s.capacity() + 1};
}
TapeBytes& operator+=(TapeBytes& a, TapeBytes b) {
  a.used += b.used;
  a.reserved += b.reserved;
  return a;
}

// What detail::Column::reserve grows to when `needed` elements must fit.
std::size_t grown_capacity(std::size_t capacity, std::size_t needed) {
  return needed <= capacity ? capacity : std::max({needed, 2 * capacity, std::size_t{64}});
}
}  // namespace

// ---- what the tape holds ---------------------------------------------------------------

TapeBytes TapeMemory::total() const {
  TapeBytes sum;
  for (TapeBytes b : {values, grads, partials, arg_slots, nodes, names, tensors, constants}) sum += b;
  return sum;
}

TapeBytes Tape::Names::bytes() const {
  TapeBytes b = bytes_of(ranges);
  for (const Range& r : ranges) b += bytes_of(r.base);
  for (const auto& [stem, by_digits] : by_stem) {
    for (const auto& [digits, firsts] : by_digits) b += bytes_of(firsts);
  }
  b += bytes_of(scope_paths);
  for (const std::string& p : scope_paths) b += bytes_of(p);
  b += bytes_of(scope_runs);
  b += bytes_of(scope_stack);
  return b;
}

TapeMemory Tape::memory() const {
  TapeMemory m;
  m.values = bytes_of(values_);
  m.values += bytes_of(values_f32_);
  m.grads = bytes_of(grads_);
  m.grads += bytes_of(grads_f32_);
  m.partials = {args_.size() * sizeof(double), args_.capacity() * sizeof(double)};
  m.arg_slots = {args_.size() * sizeof(Slot), args_.capacity() * sizeof(Slot)};
  m.nodes = bytes_of(nodes_);
  m.names = names_.bytes();
  m.tensors = bytes_of(tensors_);
  m.tensors += bytes_of(tensor_args_);
  m.tensors += bytes_of(saved_);
  m.constants = bytes_of(constants_);
  return m;
}

void Tape::check_memory_limit(std::string_view what, std::size_t extra) const {
  if (memory_limit_ == 0 || extra == 0) return;
  const std::size_t needed = memory().total().reserved + extra;
  if (needed > memory_limit_) {
    throw CapacityError("tape memory limit: recording " + std::string(what) + " needs " + std::to_string(needed) +
                        " bytes, the limit is " + std::to_string(memory_limit_) + " bytes (Tape::set_memory_limit)");
  }
}

// ---- growth ------------------------------------------------------------------------------

void Tape::reserve(std::size_t nodes, std::size_t args) {
  const auto more = [](std::size_t want, std::size_t have) { return want > have ? want - have : 0; };
  grow("reserve", more(nodes, nodes_.capacity()), more(args, args_.capacity()), 0);
}

void Tape::grow(std::string_view what, std::size_t nodes, std::size_t args, std::size_t slots) {
  if (slots + 1 > max_slots - values_.size())
    throw CapacityError(std::string(what) + ": the tape is full (2^32 slots)");
  if (args > max_offset - args_.size()) throw CapacityError(std::string(what) + ": the tape is full (2^32 operands)");
  std::size_t node_capacity = grown_capacity(nodes_.capacity(), nodes_.size() + nodes);
  const std::size_t arg_capacity = std::min(grown_capacity(args_.capacity(), args_.size() + args), max_offset);
  // Every free node record needs a free value slot (see room_node); the tape never
  // holds more slots than a Slot can index, so near the end it grows fewer records.
  const std::size_t free_slots = max_slots - 1 - values_.size() - slots;
  node_capacity = std::min(node_capacity, nodes_.size() + nodes + free_slots);
  const std::size_t value_capacity = std::min(
      grown_capacity(values_.capacity(), values_.size() + slots + (node_capacity - nodes_.size() - nodes)), max_slots);
  check_memory_limit(what, (node_capacity - nodes_.capacity()) * decltype(nodes_)::element_bytes +
                               (arg_capacity - args_.capacity()) * decltype(args_)::element_bytes +
                               (value_capacity - values_.capacity()) * sizeof(double));
  // The groups room_node and room_args test (nodes_, args_) grow last, and a group's
  // capacity changes only once all its arrays have grown: if an allocation fails, they
  // still say there is no room, and nothing is written.
  or_error(what, [&] {
    values_.reserve(value_capacity);
    nodes_.reserve(node_capacity);
    args_.reserve(arg_capacity);
  });
}

void Tape::grow_for_node(Op op) {
  try {
    grow(op_name(op), 1, 0, 1);
  } catch (...) {
    drop_pending_operands();  // the operands pushed for this node go with it
    throw;
  }
}

void Tape::reserve_tensor_side(std::string_view what, std::size_t args, std::size_t saved) {
  const auto grown = [](const auto& v, std::size_t n) {
    return v.size() + n <= v.capacity() ? v.capacity() : std::max(v.size() + n, 2 * v.capacity());
  };
  if (args > max_offset - tensor_args_.size() || saved > max_offset - saved_.size()) {
    throw CapacityError(std::string(what) + ": the tape is full (2^32 tensor operands or saved values)");
  }
  const std::size_t record_capacity = grown(tensors_, 1), arg_capacity = grown(tensor_args_, args),
                    saved_capacity = grown(saved_, saved);
  check_memory_limit(what, (record_capacity - tensors_.capacity()) * sizeof(TensorRecord) +
                               (arg_capacity - tensor_args_.capacity()) * sizeof(TensorArg) +
                               (saved_capacity - saved_.capacity()) * sizeof(double));
  or_error(what, [&] {
    tensors_.reserve(record_capacity);
    tensor_args_.reserve(arg_capacity);
    saved_.reserve(saved_capacity);
  });
}

void Tape::reserve_f32(std::string_view what, std::size_t n) {
  if (values_f32_.capacity() - values_f32_.size() >= n) return;
  const std::size_t capacity = std::max(values_f32_.size() + n, 2 * values_f32_.capacity());
  check_memory_limit(what, (capacity - values_f32_.capacity()) * sizeof(float));
  or_error(what, [&] { values_f32_.reserve(capacity); });
}

void Tape::assign_zero_grads(std::string_view what) {
  const auto shortfall = [](const auto& grads, std::size_t n) {
    return grads.capacity() < n ? (n - grads.capacity()) * sizeof(grads[0]) : 0;
  };
  check_memory_limit(what, shortfall(grads_, values_.size()) + shortfall(grads_f32_, values_f32_.size()));
  or_error(what, [&] {
    grads_.assign(values_.size(), 0.0);
    grads_f32_.assign(values_f32_.size(), 0.0f);
  });
}

}  // namespace gradpath
