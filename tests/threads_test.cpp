// SPDX-License-Identifier: MIT
// Threads: many tapes building, sweeping and resetting at once (scalar and tensor ops),
// each thread's grads equal to a single-threaded run; run under ThreadSanitizer in CI.
#include <catch2/catch.hpp>
#include <cmath>
#include <span>
#include <thread>
#include <vector>

#include "autodiff/gradcheck.hpp"
#include "autodiff/tensor.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/pool.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;

namespace {

constexpr int thread_count = 4;
constexpr std::size_t image_size = 36, filter_size = 18, dense_size = 24, scalar_size = 2;

// The point thread `i` evaluates at: image (1, 1, 6, 6), filter (2, 1, 3, 3), dense
// weights (3, 8) (out, in), then the two scalars p and q.
std::vector<double> point_of(int i) {
  std::vector<double> x;
  for (std::size_t k = 0; k < image_size + filter_size + dense_size; ++k) {
    x.push_back(std::sin(0.7 * static_cast<double>(k) + 0.3 * i));
  }
  x.push_back(0.4 + 0.1 * i);
  x.push_back(-0.3 + 0.05 * i);
  return x;
}

// A small CNN loss plus a scalar term, from scalar leaves laid out as point_of() lays
// them out. Every op kind the tape has: scalar nodes, fused tensor nodes (conv2d, GEMM
// in dense), pooling, the n-ary sums of conv2d_mac, and a loss.
Var network(std::span<const Var> leaves, int label) {
  const TensorVar x = stack(leaves.subspan(0, image_size), Shape{1, 1, 6, 6});
  const TensorVar w = stack(leaves.subspan(image_size, filter_size), Shape{2, 1, 3, 3});
  const TensorVar v = stack(leaves.subspan(image_size + filter_size, dense_size), Shape{3, 8});
  const Var p = leaves[leaves.size() - 2], q = leaves[leaves.size() - 1];
  const TensorVar fused = ops::relu(ops::conv2d(x, w));
  const TensorVar mac = ops::conv2d_mac(x, w);
  const TensorVar pooled = ops::max_pool2d(ops::add(fused, mac), {.kernel = 2});
  const TensorVar logits = ops::dense(ops::flatten(pooled).reshape(Shape{1, 8}), v);
  const std::vector<int> labels{label};
  const Var loss = ops::softmax_cross_entropy(logits, labels)[0];
  return loss + sin(p) * q + exp(p * q);
}

// The scalar term's grads by hand: d/dp (sin p q + e^(pq)) and d/dq.
double hand_dp(double p, double q) { return std::cos(p) * q + q * std::exp(p * q); }
double hand_dq(double p, double q) { return std::sin(p) + p * std::exp(p * q); }

struct Run {
  double loss = 0.0;
  std::vector<double> grads;
};

// Builds, sweeps and resets `steps` times on one tape; the last step's loss and grads.
Run run(int i, int steps) {
  const std::vector<double> point = point_of(i);
  Tape tape;
  std::vector<Var> leaves;
  for (const double value : point) leaves.push_back(tape.param(value));
  Run r;
  for (int step = 0; step < steps; ++step) {
    tape.reset();
    const Var loss = network(leaves, i % 3);
    tape.backward(loss);
    r.loss = loss.value();
    r.grads.clear();
    for (const Var& leaf : leaves) r.grads.push_back(leaf.grad());
  }
  return r;
}

}  // namespace

TEST_CASE("tapes on several threads give the single-threaded grads", "[threads]") {
  std::vector<Run> expected;
  for (int i = 0; i < thread_count; ++i) expected.push_back(run(i, 1));

  std::vector<Run> got(thread_count);
  std::vector<std::thread> pool;
  for (int i = 0; i < thread_count; ++i) pool.emplace_back([i, &got] { got[i] = run(i, 20); });
  for (std::thread& t : pool) t.join();

  for (int i = 0; i < thread_count; ++i) {
    INFO("thread " << i);
    CHECK(got[i].loss == Approx(expected[i].loss).epsilon(1e-12));
    REQUIRE(got[i].grads.size() == expected[i].grads.size());
    for (std::size_t k = 0; k < got[i].grads.size(); ++k) {
      INFO("leaf " << k);
      CHECK(got[i].grads[k] == Approx(expected[i].grads[k]).epsilon(1e-12).margin(1e-15));
    }
    const std::vector<double> point = point_of(i);
    const double p = point[point.size() - 2], q = point[point.size() - 1];
    CHECK(got[i].grads[got[i].grads.size() - 2] == Approx(hand_dp(p, q)).epsilon(1e-12));
    CHECK(got[i].grads[got[i].grads.size() - 1] == Approx(hand_dq(p, q)).epsilon(1e-12));
  }
}

TEST_CASE("finite-difference checks running on several threads at once", "[threads]") {
  // Each thread's gradcheck resets its own tape for every one of its 162 evaluations.
  std::vector<GradcheckResult> results(thread_count);
  std::vector<std::thread> pool;
  for (int i = 0; i < thread_count; ++i) {
    pool.emplace_back([i, &results] {
      const std::vector<double> point = point_of(i);
      results[i] = gradcheck([i](Tape&, std::span<const Var> leaves) { return network(leaves, i % 3); }, point);
    });
  }
  for (std::thread& t : pool) t.join();
  for (int i = 0; i < thread_count; ++i) {
    INFO("thread " << i << "\n" << results[i].report());
    CHECK(results[i].ok);
    CHECK(results[i].analytic.size() == image_size + filter_size + dense_size + scalar_size);
  }
}

TEST_CASE("tapes made and destroyed on several threads at once", "[threads]") {
  // The one shared table, of live tapes, is written whenever a tape is made or destroyed;
  // a Var outliving its tape must still be caught while other threads churn the table.
  constexpr int rounds = 500;
  std::vector<int> caught(thread_count, 0);
  std::vector<double> sums(thread_count, 0.0);
  std::vector<std::thread> pool;
  for (int i = 0; i < thread_count; ++i) {
    pool.emplace_back([i, &caught, &sums] {
      for (int round = 0; round < rounds; ++round) {
        Var stale;
        {
          Tape tape;
          stale = tape.input(1.0 + i) * 3.0;
          sums[i] += stale.value();
        }
        try {
          (void)stale.value();
        } catch (const Error&) {
          ++caught[i];
        }
      }
    });
  }
  for (std::thread& t : pool) t.join();
  for (int i = 0; i < thread_count; ++i) {
    CHECK(caught[i] == rounds);
    CHECK(sums[i] == Approx(rounds * 3.0 * (1.0 + i)));
  }
  Var stale;
  std::thread([&stale] {
    Tape tape;
    stale = tape.input(2.0) * 3.0;
  }).join();
  CHECK_THROWS_WITH(stale.value(), Catch::Contains("value: the Var's tape was destroyed"));
}
