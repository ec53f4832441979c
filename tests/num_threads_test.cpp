// SPDX-License-Identifier: MIT
// set_num_threads: the pool runs every index once, and training gives bitwise the same
// parameters at 1, 2 and 3 threads (each thread writes only its own images).
#include <catch2/catch.hpp>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "bench/t1_network.hpp"
#include "ops/threads.hpp"

using namespace gradpath;

namespace {

// The T1 network's parameters after `steps` SGD steps at `threads` threads, in T.
template <typename T = double>
std::vector<double> trained_params(std::size_t threads, std::size_t steps) {
  set_num_threads(threads);
  Tape tape;
  const bench::T1Network<T> net(tape);
  ops::Sgd sgd(net.params(), {.lr = 0.05, .momentum = 0.9});
  for (std::size_t i = 0; i < steps; ++i) {
    tape.reset();
    net.forward_backward();
    sgd.step();
  }
  std::vector<double> out;
  for (const TensorVar& p : net.params()) {
    if constexpr (std::is_same_v<T, float>) {
      for (float v : p.values_f32()) out.push_back(v);
    } else {
      for (double v : p.values()) out.push_back(v);
    }
  }
  set_num_threads(1);
  return out;
}

}  // namespace

TEST_CASE("set_num_threads sets the count and rejects 0", "[threads]") {
  set_num_threads(2);
  CHECK(num_threads() == 2);
  set_num_threads(1);
  CHECK(num_threads() == 1);
  CHECK_THROWS_WITH(set_num_threads(0), "set_num_threads: 0 threads; expected 1 to 1024");
}

TEST_CASE("parallel_for runs every index exactly once at any thread count", "[threads]") {
  for (std::size_t threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (std::size_t count : {0, 1, 2, 5, 64, 1000}) {
      std::vector<int> runs(count, 0);
      auto body = [&](std::size_t i) { ++runs[i]; };
      ops::detail::parallel_for(count, 1 << 20, body);  // large enough to split
      CHECK(runs == std::vector<int>(count, 1));
    }
  }
  set_num_threads(1);
}

TEST_CASE("a parallel_for inside a parallel_for runs on its caller's thread", "[threads]") {
  set_num_threads(2);
  std::vector<int> runs(8 * 8, 0);
  auto outer = [&](std::size_t i) {
    auto inner = [&](std::size_t j) { ++runs[i * 8 + j]; };
    ops::detail::parallel_for(8, 1 << 20, inner);
  };
  ops::detail::parallel_for(8, 1 << 20, outer);
  CHECK(runs == std::vector<int>(64, 1));
  set_num_threads(1);
}

TEST_CASE("training the T1 network gives bitwise equal parameters at 1, 2 and 3 threads", "[threads]") {
  const std::vector<double> one = trained_params(1, 3);
  const std::vector<double> two = trained_params(2, 3);
  const std::vector<double> three = trained_params(3, 3);
  REQUIRE(one.size() == 8 * 9 + 8 + 10 * 1568 + 10);
  // Bitwise: == on doubles, no tolerance.
  CHECK(one == two);
  CHECK(one == three);
  // And the steps did train: the parameters moved from their initial values.
  CHECK(one != trained_params(1, 0));
}

TEST_CASE("training the T1 network in float32 gives bitwise equal parameters at 1, 2 and 3 threads", "[threads]") {
  // float32 runs the threaded kernels of its own dtype (pooling, relu, conv2d).
  const std::vector<double> one = trained_params<float>(1, 3);
  CHECK(one == trained_params<float>(2, 3));
  CHECK(one == trained_params<float>(3, 3));
  CHECK(one != trained_params<float>(1, 0));
}
