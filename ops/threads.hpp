// SPDX-License-Identifier: MIT
// Threads for the work inside one op: gradpath's pool splits an op's batch across threads
// when the batch is large enough. Results do not depend on the thread count: each thread
// writes only what its own images own, and every sum runs in one fixed order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

namespace gradpath {

// The pool's threads (n >= 1; 1 runs everything on the calling thread), by default one
// per hardware thread. OpenBLAS always runs on one thread: its threaded GEMM gives results
// that differ in the last bits from one thread count to another. Process-wide: call it
// between training steps, not while another thread is recording.
void set_num_threads(std::size_t n);
std::size_t num_threads();

namespace ops::detail {

// A non-owning callable: a pointer and a trampoline, so a parallel loop allocates nothing.
class IndexFn {
 public:
  template <typename F>
  requires(std::is_invocable_v<F&, std::size_t> && !std::is_same_v<std::remove_cv_t<F>, IndexFn>) IndexFn(F& f)
      : object_(&f), call_([](void* o, std::size_t i) { (*static_cast<F*>(o))(i); }) {}
  void operator()(std::size_t i) const { call_(object_, i); }

 private:
  void* object_;
  void (*call_)(void*, std::size_t);
};

// Calls body(i) once for every i in [0, count): on the calling thread alone when the
// pool has one thread, when count * work_per_index is below the size that pays for a
// hand-off, or when the pool is busy (another thread's op, or a body calling back in);
// otherwise in contiguous blocks of i, one per pool thread. Returns when all are done.
// body(i) must touch only what index i owns and must not throw.
void parallel_for(std::size_t count, std::size_t work_per_index, IndexFn body);

// Calls body(begin, end) for the fixed chunks [0, chunk), [chunk, 2 chunk), ... of [0, n),
// split across the pool as parallel_for's indices: for an elementwise kernel, the same
// result at any thread count.
template <typename F>
void parallel_chunks(std::size_t n, std::size_t chunk, F body) {
  auto run = [&](std::size_t c) { body(c * chunk, std::min(n, (c + 1) * chunk)); };
  parallel_for((n + chunk - 1) / chunk, chunk, run);
}

}  // namespace ops::detail

}  // namespace gradpath
