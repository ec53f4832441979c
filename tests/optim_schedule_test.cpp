// SPDX-License-Identifier: MIT
// Learning-rate schedules against their formulas, and set_lr: an optimiser's next step
// uses the new rate and keeps its velocity or moments.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "autodiff/tensor.hpp"
#include "ops/optim.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;

namespace {

const double pi = std::acos(-1.0);

// L = sum_i w_i^3 / 3, so dL/dw_i = w_i^2: a grad that changes from step to step.
void backward_cubes(Tape& tape, const TensorVar& w) {
  tape.reset();
  std::vector<Var> terms;
  for (std::size_t i = 0; i < w.size(); ++i) terms.push_back(w[i] * w[i] * w[i] * (1.0 / 3.0));
  tape.backward(gradpath::sum(terms));
}

}  // namespace

TEST_CASE("StepLr: base * gamma^floor(t / step_size)", "[optim][schedule]") {
  const ops::StepLr every_two(0.1, 2, 0.5);
  CHECK(every_two(0) == 0.1);
  CHECK(every_two(1) == 0.1);
  CHECK(every_two(2) == 0.05);
  CHECK(every_two(3) == 0.05);
  CHECK(every_two(4) == 0.025);
  CHECK(every_two(9) == Approx(0.1 / 16));
  // One step per epoch is exactly base * pow(gamma, epoch): Fashion-MNIST's decay.
  const ops::StepLr per_epoch(4e-3, 1, 0.5);
  for (std::size_t e = 0; e < 6; ++e) CHECK(per_epoch(e) == 4e-3 * std::pow(0.5, static_cast<double>(e)));
}

TEST_CASE("CosineLr: min + (base - min)(1 + cos(pi t / period)) / 2, then min", "[optim][schedule]") {
  const ops::CosineLr to_zero(1.0, 4);
  CHECK(to_zero(0) == 1.0);
  CHECK(to_zero(1) == Approx((1 + std::cos(pi / 4)) / 2));
  CHECK(to_zero(2) == Approx(0.5));
  CHECK(to_zero(3) == Approx((1 + std::cos(3 * pi / 4)) / 2));
  CHECK(to_zero(4) == 0.0);
  CHECK(to_zero(100) == 0.0);
  const ops::CosineLr to_min(0.3, 10, 0.1);
  CHECK(to_min(0) == Approx(0.3));
  CHECK(to_min(5) == Approx(0.2));
  CHECK(to_min(7) == Approx(0.1 + 0.2 * (1 + std::cos(0.7 * pi)) / 2));
  CHECK(to_min(10) == 0.1);
  for (std::size_t t = 1; t <= 10; ++t) CHECK(to_min(t) <= to_min(t - 1));  // never rises
}

TEST_CASE("schedules refuse nonsense settings", "[optim][schedule][errors]") {
  CHECK_THROWS_WITH(ops::StepLr(0.1, 0, 0.5), "StepLr: step_size must be >= 1, got 0");
  CHECK_THROWS_WITH(ops::StepLr(0.1, 1, 1.5), "StepLr: gamma must be in [0, 1], got 1.5");
  CHECK_THROWS_WITH(ops::StepLr(-0.1, 1, 0.5), "StepLr: base must be finite and >= 0, got -0.1");
  CHECK_THROWS_WITH(ops::CosineLr(0.1, 0), "CosineLr: period must be >= 1, got 0");
  CHECK_THROWS_WITH(ops::CosineLr(0.1, 5, 0.2), "CosineLr: min must be in [0, base], got 0.2");
}

TEST_CASE("Sgd::set_lr: the next step uses the new rate and keeps the velocity", "[optim][schedule]") {
  Tape tape;
  const TensorVar w = tape.param(std::vector<double>{0.5, -1.0}, Shape{2}, "w");
  ops::Sgd sgd({w}, {.lr = 0.1, .momentum = 0.9});
  CHECK(sgd.lr() == 0.1);
  std::vector<double> expect = {0.5, -1.0}, velocity = {0.0, 0.0};
  for (const double lr : {0.1, 0.02, 0.3}) {
    sgd.set_lr(lr);
    CHECK(sgd.lr() == lr);
    backward_cubes(tape, w);
    sgd.step();
    for (std::size_t i = 0; i < 2; ++i) {
      velocity[i] = 0.9 * velocity[i] + expect[i] * expect[i];
      expect[i] -= lr * velocity[i];
      CHECK(w.values()[i] == Approx(expect[i]).epsilon(1e-14));
    }
  }
}

TEST_CASE("Adam::set_lr: the next step uses the new rate and keeps the moments", "[optim][schedule]") {
  Tape tape;
  const TensorVar w = tape.param(std::vector<double>{0.5, -1.0}, Shape{2}, "w");
  ops::Adam adam({w}, {.lr = 0.05});
  CHECK(adam.lr() == 0.05);
  const ops::CosineLr schedule(0.05, 3, 0.01);
  std::vector<double> expect = {0.5, -1.0}, m = {0.0, 0.0}, v = {0.0, 0.0};
  for (std::size_t t = 0; t < 4; ++t) {
    adam.set_lr(schedule(t));
    backward_cubes(tape, w);
    adam.step();
    const double c1 = 1 - std::pow(0.9, t + 1.0), c2 = 1 - std::pow(0.999, t + 1.0);
    for (std::size_t i = 0; i < 2; ++i) {
      const double g = expect[i] * expect[i];
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      expect[i] -= schedule(t) * (m[i] / c1) / (std::sqrt(v[i] / c2) + 1e-8);
      CHECK(w.values()[i] == Approx(expect[i]).epsilon(1e-14));
    }
  }
  CHECK(adam.steps() == 4);
  CHECK(adam.lr() == 0.01);
}

TEST_CASE("set_lr refuses a negative or non-finite rate and keeps the old one", "[optim][schedule][errors]") {
  Tape tape;
  const TensorVar w = tape.param(std::vector<double>{0.5}, Shape{1}, "w");
  ops::Sgd sgd({w}, {.lr = 0.1});
  ops::Adam adam({w}, {.lr = 0.2});
  CHECK_THROWS_WITH(sgd.set_lr(-1.0), "Sgd::set_lr: lr must be finite and >= 0, got -1");
  CHECK_THROWS_WITH(adam.set_lr(std::nan("")), "Adam::set_lr: lr must be finite and >= 0, got nan");
  CHECK(sgd.lr() == 0.1);
  CHECK(adam.lr() == 0.2);
}
