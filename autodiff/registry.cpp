// SPDX-License-Identifier: MIT
// The live-tape registry: indices and serials for tapes as they are made and destroyed,
// epochs and the reset history, and the slow paths of Tape::of that name a bad Var.
#include "autodiff/registry.hpp"

#include <algorithm>
#include <iterator>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/tape.hpp"

namespace gradpath {

namespace detail {
LiveTape live_tapes[max_live_tapes + 1];
}  // namespace detail

namespace {
// Guards only the allocation of live_tapes indices, never a tape's own data.
std::mutex registry_mutex;
std::vector<std::uint32_t> free_indices;
std::uint32_t next_index = 0;
std::uint32_t last_serial = 0;
}  // namespace

namespace detail {
std::uint32_t set_last_tape_serial(std::uint32_t serial) {
  std::lock_guard lock(registry_mutex);
  return std::exchange(last_serial, serial);
}
}  // namespace detail

Tape::Tape() {
  std::lock_guard lock(registry_mutex);
  // A Var tells its tape by index and serial: were serials to wrap, a Var of a destroyed
  // tape could read the new tape that reuses its index, so the last serial is the last tape.
  if (last_serial == 0xFFFFFFFFu) {
    throw Error("Tape: this process already made 2^32 - 1 tapes; a new one could be mistaken for a destroyed one");
  }
  if (!free_indices.empty()) {
    index_ = free_indices.back();
    free_indices.pop_back();
  } else if (next_index < detail::max_live_tapes) {
    index_ = next_index++;
  } else {
    throw Error("Tape: more than " + std::to_string(detail::max_live_tapes) + " tapes alive at once");
  }
  serial_ = ++last_serial;
  epoch_ = std::uint64_t{serial_} << 32;
  detail::live_tapes[index_].tape.store(this, std::memory_order_relaxed);
  detail::live_tapes[index_].epoch.store(epoch_, std::memory_order_release);  // publishes the pointer
}

Tape::~Tape() {
  std::lock_guard lock(registry_mutex);
  detail::live_tapes[index_].epoch.store(0, std::memory_order_release);
  detail::live_tapes[index_].tape.store(nullptr, std::memory_order_relaxed);
  free_indices.push_back(index_);
}

// Note [Reset epochs]: resets keep the nodes through the last parameter. That prefix
// only grows, so a Var made before reset r survives every later reset exactly when
// its slot is below what reset r kept. A Var made of a slot already in the prefix
// survives every reset: it carries every_reset instead of its epoch's reset count, so
// parameters pass the one compare of the hot path in every epoch.
//
// Note [Owning a list]: owns_all() tests the AND and the OR of the epochs instead of each
// epoch. Every epoch is now (N) or N | every_reset exactly when both pass: the high words
// of AND and OR are N's serial only when every high word is; the low word of each epoch
// holds every bit of the AND's, so when the AND's is N's reset count r, each is at least
// r, and a Var of this tape carries a count of at most r or every_reset.
void Tape::check(const Var& v, std::string_view what) const {
  if (usable(v.epoch_, epoch_)) return;
  const auto made_in = static_cast<std::uint32_t>(v.epoch_);
  if ((v.epoch_ >> 32) != serial_ || made_in > static_cast<std::uint32_t>(epoch_)) throw_stale(v, what);
  auto it = std::upper_bound(keep_history_.begin(), keep_history_.end(), made_in,
                             [](std::uint32_t r, const KeepChange& k) { return r < k.from_reset; });
  if (it == keep_history_.begin() || v.slot_ >= std::prev(it)->kept_slots) throw_stale(v, what);
}

void Tape::next_epoch() {
  const auto resets = static_cast<std::uint32_t>(epoch_);
  if (resets + 1 == every_reset) throw Error("reset: the tape was reset 2^32 - 2 times; make a new Tape");
  if (keep_history_.empty() || keep_history_.back().kept_slots != keep_slots_) {
    keep_history_.push_back({resets, keep_slots_});
  }
  ++epoch_;
  detail::live_tapes[index_].epoch.store(epoch_, std::memory_order_release);
}

Tape& Tape::of_slow(const Var& v, std::string_view what) {
  if (v.tape_index_ >= detail::max_live_tapes) {
    throw Error(std::string(what) + ": the Var is empty (default-constructed, never assigned from a tape)");
  }
  const detail::LiveTape& live = detail::live_tapes[v.tape_index_];
  if ((live.epoch.load(std::memory_order_acquire) >> 32) != (v.epoch_ >> 32)) {
    throw Error(std::string(what) + ": the Var's tape was destroyed");
  }
  Tape* t = live.tape.load(std::memory_order_relaxed);
  t->check(v, what);
  return *t;
}

Tape& Tape::of_slow(const Var& a, const Var& b, std::string_view what) {
  Tape& t = of(a, what);
  t.check_second(a, b, what);
  return t;
}

void Tape::check_second(const Var& a, const Var& b, std::string_view what) const {
  if (b.tape_index_ != a.tape_index_ || (b.epoch_ >> 32) != (a.epoch_ >> 32)) {
    of(b, what);  // a dead or empty operand gets its own message first
    throw Error(std::string(what) + ": operands are on different tapes");
  }
  check(b, what);
}

void Tape::throw_stale(const Var& v, std::string_view what) const {
  throw Error(std::string(what) + ": the Var (slot " + std::to_string(v.slot_) +
              ") was recorded before Tape::reset() dropped it; rebuild it on the current tape");
}

}  // namespace gradpath
