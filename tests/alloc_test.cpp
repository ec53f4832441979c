// SPDX-License-Identifier: MIT
// A steady training loop allocates nothing: this program replaces the global operator
// new and delete with counting versions, and after a warm-up step counts the allocations
// of further T1 training steps (reset, record, backward, optimiser step).
#include <atomic>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

#include "bench/t1_network.hpp"
#include "ops/threads.hpp"

namespace {
std::atomic<std::size_t> allocations{0};

void* counted_alloc(std::size_t size, std::size_t alignment) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  size = size == 0 ? 1 : size;
  if (alignment <= alignof(std::max_align_t)) return std::malloc(size);
  return std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}
void* counted_alloc_or_throw(std::size_t size, std::size_t alignment) {
  if (void* p = counted_alloc(size, alignment)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc_or_throw(n, 0); }
void* operator new[](std::size_t n) { return counted_alloc_or_throw(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_alloc_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted_alloc_or_throw(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

using namespace gradpath;

namespace {

// Allocations made by `steps` training steps after one warm-up step.
template <typename T, typename Optimiser, typename Options>
std::size_t steady_allocations(std::size_t threads, Options options, std::size_t steps) {
  set_num_threads(threads);
  Tape tape;
  const bench::T1Network<T> net(tape);
  Optimiser optimiser(net.params(), options);
  auto step = [&] {
    net.forward_backward();
    optimiser.step();
    tape.reset();
  };
  step();
  const std::size_t before = allocations.load();
  for (std::size_t i = 0; i < steps; ++i) step();
  const std::size_t made = allocations.load() - before;
  set_num_threads(1);
  return made;
}

}  // namespace

TEST_CASE("the counting operator new sees allocations", "[alloc]") {
  const std::size_t before = allocations.load();
  auto* p = new std::vector<double>(100);
  delete p;
  CHECK(allocations.load() - before == 2);  // the vector and its buffer
}

TEST_CASE("T1 training steps (float64 and float32) with Sgd allocate nothing after the first", "[alloc]") {
  for (std::size_t threads : {1, 2}) {
    INFO(threads << " threads");
    const ops::SgdOptions options{.lr = 0.01, .momentum = 0.9};
    CHECK(steady_allocations<double, ops::Sgd>(threads, options, 4) == 0);
    CHECK(steady_allocations<float, ops::Sgd>(threads, options, 4) == 0);
  }
}

TEST_CASE("T1 training steps (float64 and float32) with Adam allocate nothing after the first", "[alloc]") {
  for (std::size_t threads : {1, 2}) {
    INFO(threads << " threads");
    CHECK(steady_allocations<double, ops::Adam>(threads, ops::AdamOptions{.lr = 1e-3}, 4) == 0);
    CHECK(steady_allocations<float, ops::Adam>(threads, ops::AdamOptions{.lr = 1e-3}, 4) == 0);
  }
}
