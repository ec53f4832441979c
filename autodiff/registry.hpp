// SPDX-License-Identifier: MIT
// The live-tape table: how a Var finds its tape and tells that the tape is gone.
#pragma once

#include <atomic>
#include <cstdint>

namespace gradpath {

class Tape;

namespace detail {
inline constexpr std::uint32_t max_live_tapes = 1u << 16;
// The index of an empty (default-constructed) Var: one entry past the tapes', never
// given to a tape, so its epoch stays 0 and no Var's epoch matches it. Every index a
// Var can hold is then in the table, and the hot path needs no bounds check.
inline constexpr std::uint32_t empty_var_index = max_live_tapes;
// Live tapes by index: the tape and its current epoch (0: no tape). The epoch is written
// by its tape when made, reset or destroyed; a Var compares it before reading the
// pointer, so it never reads another thread's tape that reuses a destroyed one's index.
struct LiveTape {
  std::atomic<std::uint64_t> epoch{0};
  std::atomic<Tape*> tape{nullptr};
};
extern LiveTape live_tapes[max_live_tapes + 1];
// Sets the serial the last tape got and returns the one it replaces, so a test can
// reach the end of the 32-bit serials without making 2^32 tapes. Not for anything else.
std::uint32_t set_last_tape_serial(std::uint32_t serial);
}  // namespace detail

}  // namespace gradpath
