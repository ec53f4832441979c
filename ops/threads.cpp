// SPDX-License-Identifier: MIT
// A persistent pool: workers sleep on a condition variable between loops, so a loop
// costs one wake-up and allocates nothing.
#include "ops/threads.hpp"

#include <cblas.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "autodiff/tape.hpp"

namespace gradpath {

namespace {

// Below this many multiply-adds (or element moves) a loop stays on the calling thread:
// waking a worker costs some microseconds, as much as this work.
constexpr std::size_t min_parallel_work = 1 << 16;

class Pool {
 public:
  // OpenBLAS stays on one thread: its threaded GEMM splits the matrices by the thread
  // count, and the last bits of the results change with it (tests/num_threads_test.cpp).
  Pool() {
    openblas_set_num_threads(1);
    resize(std::max(std::thread::hardware_concurrency(), 1u));
  }
  ~Pool() { resize(1); }

  std::size_t size() const { return workers_.size() + 1; }

  void resize(std::size_t n) {
    const std::lock_guard busy(busy_);
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& w : workers_) w.join();
    workers_.clear();
    stopping_ = false;
    // A new worker waits for the next loop, not the last one.
    for (std::size_t t = 1; t < n; ++t) workers_.emplace_back([this, t, seen = generation_] { work(t, seen); });
  }

  void run(std::size_t count, std::size_t work_per_index, ops::detail::IndexFn body) {
    std::unique_lock busy(busy_, std::try_to_lock);
    if (!busy.owns_lock() || workers_.empty() || count < 2 || count * work_per_index < min_parallel_work) {
      for (std::size_t i = 0; i < count; ++i) body(i);
      return;
    }
    {
      const std::lock_guard lock(mutex_);
      body_ = &body;
      count_ = count;
      pending_ = workers_.size();
      ++generation_;
    }
    wake_.notify_all();
    run_block(0, body);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
  }

 private:
  // Block t of size() contiguous blocks of [0, count_).
  void run_block(std::size_t t, ops::detail::IndexFn body) const {
    const std::size_t n = size();
    for (std::size_t i = count_ * t / n; i < count_ * (t + 1) / n; ++i) body(i);
  }

  void work(std::size_t t, std::size_t seen) {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      const ops::detail::IndexFn body = *body_;
      lock.unlock();
      run_block(t, body);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex busy_;  // held by the thread running a loop (or resizing)
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const ops::detail::IndexFn* body_ = nullptr;
  std::size_t count_ = 0, pending_ = 0, generation_ = 0;
  bool stopping_ = false;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void set_num_threads(std::size_t n) {
  if (n == 0 || n > 1024) throw Error("set_num_threads: " + std::to_string(n) + " threads; expected 1 to 1024");
  pool().resize(n);
}

std::size_t num_threads() { return pool().size(); }

namespace ops::detail {
void parallel_for(std::size_t count, std::size_t work_per_index, IndexFn body) {
  pool().run(count, work_per_index, body);
}
}  // namespace ops::detail

}  // namespace gradpath
