// SPDX-License-Identifier: MIT
// The seed note's two networks: every dL/dw_i against the hand rule, conv2d_mac against conv2d.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <random>
#include <vector>

#include "autodiff/tensor.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/pool.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;

namespace {

// One random point: image a1..a25, filter w1..w9, dense weights v1..v4 and bias, target.
struct Point {
  std::vector<double> a, w, v;
  double b, t;
};
Point random_point(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  auto draw = [&](std::size_t n) {
    std::vector<double> x(n);
    for (double& e : x) e = u(rng);
    return x;
  };
  Point p{draw(25), draw(9), draw(4), u(rng), u(rng)};
  return p;
}

// z_k = sum_i w_i a_{j(k,i)} for a 3x3 window whose top-left input is `start` (0-based).
std::size_t tap(std::size_t start, std::size_t i) { return start + (i / 3) * 5 + i % 3; }
double window_sum(const Point& p, std::size_t start) {
  double z = 0.0;
  for (std::size_t i = 0; i < 9; ++i) z += p.w[i] * p.a[tap(start, i)];
  return z;
}

// The network head on a 2x2 feature map: flatten -> dense(v, b) -> y -> L = (y - t)^2 / 2.
struct Head {
  TensorVar y, loss;
};
Head dense_head(const TensorVar& features, const TensorVar& v, const Var& b, double t) {
  const TensorVar y = ops::dense(ops::flatten(features), v, b, "y");
  return {y, ops::half_squared_error(y, t, "L")};
}

enum class Conv { mac, fused };
enum class Pool { max, avg };

// Builds a network on a fresh tape, runs backward, returns y and dL/dw1..dL/dw9.
struct Result {
  double y;
  std::array<double, 9> dw;
};
template <typename Features>
Result run(const Point& p, Features features) {
  Tape tape;
  const TensorVar a = tape.input(p.a, Shape{5, 5}, "a");
  const TensorVar w = tape.param(p.w, Shape{3, 3}, "w");
  const TensorVar v = tape.param(p.v, Shape{4}, "v");
  const Var b = tape.param(p.b, "b");
  const Head head = dense_head(features(a, w), v, b, p.t);
  tape.backward(head.loss.first());
  Result r{head.y.values()[0], {}};
  for (std::size_t i = 0; i < 9; ++i) r.dw[i] = w[i].grad();
  return r;
}

TensorVar conv(Conv kind, const TensorVar& a, const TensorVar& w, std::size_t stride, std::string_view name) {
  return kind == Conv::mac ? ops::conv2d_mac(a, w, {.stride = stride}, name)
                           : ops::conv2d(a, w, {.stride = stride}, name);
}

}  // namespace

TEST_CASE("seed network (a): stride-2 conv -> z1..z4 -> dense -> y -> L, dL/dw_i by hand", "[seed][conv2d]") {
  std::mt19937_64 rng(2024);
  const std::size_t starts[] = {0, 2, 10, 12};  // z1 at a1, z2 at a3, z3 at a11, z4 at a13
  for (int trial = 0; trial < 5; ++trial) {
    const Point p = random_point(rng);
    // By hand: z_k, y, dL/dz_k = (y - t) v_k, dL/dw_i = sum_k a_{j(k,i)} dL/dz_k.
    double y = p.b;
    for (std::size_t k = 0; k < 4; ++k) y += p.v[k] * window_sum(p, starts[k]);
    const auto mac = run(p, [](const TensorVar& a, const TensorVar& w) { return conv(Conv::mac, a, w, 2, "z"); });
    const auto fused = run(p, [](const TensorVar& a, const TensorVar& w) { return conv(Conv::fused, a, w, 2, "z"); });
    CHECK(mac.y == Approx(y).epsilon(1e-12));
    CHECK(fused.y == Approx(y).epsilon(1e-12));
    for (std::size_t i = 0; i < 9; ++i) {
      double hand = 0.0;
      for (std::size_t k = 0; k < 4; ++k) hand += p.a[tap(starts[k], i)] * (y - p.t) * p.v[k];
      INFO("trial " << trial << ": dL/dw" << i + 1);
      CHECK(mac.dw[i] == Approx(hand).epsilon(1e-12).margin(1e-14));
      CHECK(fused.dw[i] == Approx(hand).epsilon(1e-12).margin(1e-14));
    }
  }
}

TEST_CASE("seed network (b): conv -> O1..O9 -> 2x2 pooling -> Z1..Z4 -> dense -> y -> L", "[seed][pool]") {
  std::mt19937_64 rng(77);
  const Pool pool = GENERATE(Pool::max, Pool::avg);
  for (int trial = 0; trial < 5; ++trial) {
    const Point p = random_point(rng);
    // By hand: O (3x3, stride 1), Z_m over the 2x2 window at (m / 2, m % 2) of O.
    std::array<double, 9> o{};
    for (std::size_t q = 0; q < 9; ++q) o[q] = window_sum(p, (q / 3) * 5 + q % 3);
    std::array<double, 4> z{};
    std::array<std::array<std::size_t, 4>, 4> windows{};
    for (std::size_t m = 0; m < 4; ++m) {
      const std::size_t top_left = (m / 2) * 3 + m % 2;
      windows[m] = {top_left, top_left + 1, top_left + 3, top_left + 4};
      double best = o[windows[m][0]], total = 0.0;
      for (std::size_t q : windows[m]) {
        best = std::max(best, o[q]);
        total += o[q];
      }
      z[m] = pool == Pool::max ? best : total / 4.0;
    }
    double y = p.b;
    for (std::size_t m = 0; m < 4; ++m) y += p.v[m] * z[m];
    // dL/dZ_m = (y - t) v_m; max: the window's largest O gets it all; avg: each O gets 1/4.
    std::array<double, 9> d_o{};
    for (std::size_t m = 0; m < 4; ++m) {
      const double dz = (y - p.t) * p.v[m];
      for (std::size_t q : windows[m]) {
        if (pool == Pool::avg)
          d_o[q] += dz / 4.0;
        else if (o[q] == z[m])
          d_o[q] += dz;
      }
    }

    auto network = [pool](Conv kind) {
      return [kind, pool](const TensorVar& a, const TensorVar& w) {
        const TensorVar out = conv(kind, a, w, 1, "O");
        const ops::Pool2dOptions opt{.kernel = 2, .stride = 1};
        return pool == Pool::max ? ops::max_pool2d(out, opt, "Z") : ops::avg_pool2d(out, opt, "Z");
      };
    };
    const auto mac = run(p, network(Conv::mac));
    const auto fused = run(p, network(Conv::fused));
    CHECK(mac.y == Approx(y).epsilon(1e-12));
    CHECK(fused.y == Approx(y).epsilon(1e-12));
    for (std::size_t i = 0; i < 9; ++i) {
      double hand = 0.0;
      for (std::size_t q = 0; q < 9; ++q) hand += p.a[tap((q / 3) * 5 + q % 3, i)] * d_o[q];
      INFO("trial " << trial << ": dL/dw" << i + 1);
      CHECK(mac.dw[i] == Approx(hand).epsilon(1e-12).margin(1e-14));
      CHECK(fused.dw[i] == Approx(hand).epsilon(1e-12).margin(1e-14));
    }
  }
}
