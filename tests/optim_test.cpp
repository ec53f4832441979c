// SPDX-License-Identifier: MIT
// Optimisers against hand-written updates, their misuse errors, and the initialisers.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "autodiff/tensor.hpp"
#include "ops/nn.hpp"
#include "ops/optim.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;

namespace {

// L = sum_i c_i w_i^2 / 2 + w_0 w_1, recorded with scalar ops so the test does not lean
// on the tensor ops; its grad by hand is g_i = c_i w_i + [i == 0] w_1 + [i == 1] w_0.
const std::vector<double> c = {1.0, 3.0, -0.5};

Var loss(const TensorVar& w) {
  std::vector<Var> terms;
  for (std::size_t i = 0; i < 3; ++i) terms.push_back(w[i] * w[i] * (c[i] / 2));
  terms.push_back(w[0] * w[1]);
  return gradpath::sum(terms);
}

std::vector<double> hand_grad(const std::vector<double>& w) {
  std::vector<double> g(3);
  for (std::size_t i = 0; i < 3; ++i) g[i] = c[i] * w[i];
  g[0] += w[1];
  g[1] += w[0];
  return g;
}

}  // namespace

TEST_CASE("sgd_step: w_i* = w_i - alpha dL/dw_i", "[optim]") {
  Tape tape;
  const std::vector<double> w0 = {0.4, -0.7, 1.2};
  const TensorVar w = tape.param(w0, Shape{3}, "w");
  const Var b = tape.param(0.3, "b");
  tape.backward(loss(w) + b * b);
  ops::sgd_step(w, 0.1);
  ops::sgd_step(b, 0.1);
  const std::vector<double> g = hand_grad(w0);
  for (std::size_t i = 0; i < 3; ++i) CHECK(w[i].value() == Approx(w0[i] - 0.1 * g[i]));
  CHECK(b.value() == Approx(0.3 - 0.1 * 2 * 0.3));
}

TEST_CASE("sgd_step refuses a non-leaf or a tape without grads, and writes nothing", "[optim][errors]") {
  Tape tape;
  const TensorVar w = tape.param(std::vector<double>{1.0, 2.0}, Shape{2}, "w");
  CHECK_THROWS_WITH(
      ops::sgd_step(w, 0.1),
      Catch::Contains("sgd_step: backward() has not run on this tape since it was last changed (parameter [2])"));
  const Var one = tape.input(1.0, "one");
  const Var p = (w[0] + one).named("p");
  const TensorVar mixed = stack(std::vector<Var>{w[1], p}, Shape{2});  // a copy node per element
  tape.backward(p);
  CHECK_THROWS_WITH(ops::sgd_step(mixed, 0.1), Catch::Contains("sgd_step: element 0"));
  CHECK_THROWS_WITH(ops::sgd_step(mixed, 0.1),
                    Catch::Contains("of the parameter [2] is a copy node, not an input or parameter"));
  CHECK_THROWS_WITH(
      ops::sgd_step(p, 0.1),
      Catch::Contains("sgd_step: element 0 ('p') of the parameter [] is a add node, not an input or parameter"));
  CHECK(w[0].value() == 1.0);
  CHECK(w[1].value() == 2.0);
  tape.reset();
  CHECK_THROWS_WITH(ops::sgd_step(p, 0.1), Catch::Contains("sgd_step: the Var (slot"));
}

TEST_CASE("Sgd with momentum matches a hand-written update over 3 steps", "[optim]") {
  const double lr = 0.05, momentum = 0.9;
  Tape tape;
  std::vector<double> expected = {0.4, -0.7, 1.2};
  const TensorVar w = tape.param(expected, Shape{3}, "w");
  ops::Sgd sgd({w}, {.lr = lr, .momentum = momentum});
  std::vector<double> velocity(3, 0.0);
  for (int step = 0; step < 3; ++step) {
    tape.reset();
    tape.backward(loss(w));
    sgd.step();
    const std::vector<double> g = hand_grad(expected);
    for (std::size_t i = 0; i < 3; ++i) {
      velocity[i] = momentum * velocity[i] + g[i];
      expected[i] -= lr * velocity[i];
    }
    INFO("step " << step + 1);
    for (std::size_t i = 0; i < 3; ++i) CHECK(w[i].value() == Approx(expected[i]).epsilon(1e-12));
  }
}

TEST_CASE("Adam matches a hand-written PyTorch update over 3 steps", "[optim]") {
  const ops::AdamOptions o{.lr = 0.1, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6};
  Tape tape;
  std::vector<double> expected = {0.4, -0.7, 1.2};
  const TensorVar w = tape.param(std::span(expected).first(2), Shape{2}, "w");
  const TensorVar u = tape.param(std::span(expected).last(1), Shape{1}, "u");
  ops::Adam adam({w, u}, o);
  std::vector<double> m(3, 0.0), v(3, 0.0);
  for (int t = 1; t <= 3; ++t) {
    tape.reset();
    tape.backward(loss(stack(std::vector<Var>{w[0], w[1], u[0]}, Shape{3})));
    const std::vector<double> before = {w[0].value(), w[1].value(), u[0].value()};
    adam.step();
    const std::vector<double> g = hand_grad(expected);
    for (std::size_t i = 0; i < 3; ++i) {
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
      const double m_hat = m[i] / (1 - std::pow(o.beta1, t)), v_hat = v[i] / (1 - std::pow(o.beta2, t));
      expected[i] -= o.lr * m_hat / (std::sqrt(v_hat) + o.eps);
    }
    INFO("step " << t);
    CHECK(adam.steps() == static_cast<std::size_t>(t));
    if (t == 1) {
      // The first bias-corrected step moves every weight by lr against the sign of its grad.
      for (std::size_t i = 0; i < 3; ++i) CHECK(std::abs(expected[i] - before[i]) == Approx(o.lr).epsilon(1e-4));
    }
    CHECK(w[0].value() == Approx(expected[0]).epsilon(1e-12));
    CHECK(w[1].value() == Approx(expected[1]).epsilon(1e-12));
    CHECK(u[0].value() == Approx(expected[2]).epsilon(1e-12));
  }
}

TEST_CASE("optimiser options and misuse are checked", "[optim][errors]") {
  Tape tape;
  const TensorVar w = tape.param(std::vector<double>{1.0}, Shape{1});
  CHECK_THROWS_WITH(ops::Adam({w}, {.beta1 = 1.0}), Catch::Contains("Adam: beta1 must be in [0, 1), got 1"));
  CHECK_THROWS_WITH(ops::Adam({w}, {.eps = 0.0}), Catch::Contains("Adam: eps must be > 0, got 0"));
  CHECK_THROWS_WITH(ops::Sgd({w}, {.momentum = -0.1}), Catch::Contains("Sgd: momentum must be in [0, 1), got -0.1"));
  ops::Adam adam({w});
  CHECK_THROWS_WITH(adam.step(), Catch::Contains("Adam::step: backward() has not run"));
  CHECK(adam.steps() == 0);
}

TEST_CASE("a small network trains: dense + tanh + mse with Adam", "[optim][nn]") {
  // Fit y = x0 - 2 x1 on four points with one dense layer; the loss must fall by 100x.
  Tape tape;
  const TensorVar W = tape.param(ops::xavier_uniform(Shape{1, 2}, 7), Shape{1, 2}, "W");
  const TensorVar b = tape.param(std::vector<double>{0.0}, Shape{1}, "b");
  const std::vector<double> xs = {0.1, 0.2, -0.3, 0.4, 0.5, -0.6, -0.2, -0.1}, ys = {-0.3, -1.1, 1.7, 0.0};
  ops::Adam adam({W, b}, {.lr = 0.05});
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    tape.reset();
    const TensorVar y = ops::dense(tape.input(xs, Shape{4, 2}), W, b);
    const TensorVar L = ops::mse(y, tape.input(ys, Shape{4, 1}));
    backward(L);
    adam.step();
    (step == 0 ? first : last) = L[0].value();
  }
  CHECK(last < first / 100);
}

TEST_CASE("fans and initialisers", "[optim][init]") {
  CHECK(ops::fans(Shape{8, 5}).in == 5);
  CHECK(ops::fans(Shape{8, 5}).out == 8);
  CHECK(ops::fans(Shape{4}).in == 4);
  CHECK(ops::fans(Shape{4, 3, 3, 3}).in == 27);
  CHECK(ops::fans(Shape{4, 3, 3, 3}).out == 36);
  const Shape shape{200, 500};
  const std::vector<double> he = ops::he_normal(shape, 1), xavier = ops::xavier_uniform(shape, 1);
  REQUIRE(he.size() == shape.size());
  CHECK(ops::he_normal(shape, 1) == he);
  CHECK(ops::he_normal(shape, 2) != he);
  const auto stddev = [](const std::vector<double>& v) {
    double mean = 0, sq = 0;
    for (double x : v) mean += x / static_cast<double>(v.size());
    for (double x : v) sq += (x - mean) * (x - mean) / static_cast<double>(v.size());
    return std::sqrt(sq);
  };
  CHECK(stddev(he) == Approx(std::sqrt(2.0 / 500)).epsilon(0.02));
  const double a = std::sqrt(6.0 / 700);
  CHECK(stddev(xavier) == Approx(a / std::sqrt(3.0)).epsilon(0.02));
  double largest = 0;
  for (double x : xavier) largest = std::max(largest, std::abs(x));
  CHECK(largest <= a);
}
