// SPDX-License-Identifier: MIT
// Optimisers (the seed note's SGD step, SGD with momentum, Adam), learning-rate schedules
// and seeded initialisers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "autodiff/tensor.hpp"

namespace gradpath::ops {

// The seed note's update w_i* = w_i - alpha dL/dw_i on every element, written in place
// (an f32 parameter stays f32; the update is computed in double). An Error when
// backward() has not run since the tape last changed, or when an element is not a leaf;
// nothing is written then. Rebuild the graph afterwards.
void sgd_step(const TensorVar& param, double alpha);
void sgd_step(const Var& param, double alpha);

// PyTorch's SGD: v = momentum v + g, w -= lr v (v starts at 0, so the first step is
// w -= lr g; momentum 0 is plain SGD).
struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
};
class Sgd {
 public:
  explicit Sgd(std::vector<TensorVar> params, SgdOptions options = {});
  void step();  // after backward(); the same checks as sgd_step
  // The learning rate of the next steps (a schedule's value); the velocity is kept. An
  // Error for a negative or non-finite rate.
  void set_lr(double lr);
  double lr() const { return options_.lr; }

 private:
  std::vector<TensorVar> params_;
  SgdOptions options_;
  std::vector<std::vector<double>> velocity_;
};

// Adam as in PyTorch: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
// w -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) at step t = 1, 2, ...
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};
class Adam {
 public:
  explicit Adam(std::vector<TensorVar> params, AdamOptions options = {});
  void step();
  std::size_t steps() const { return t_; }
  // The learning rate of the next steps; the moments and the step count are kept.
  void set_lr(double lr);
  double lr() const { return options_.lr; }

 private:
  std::vector<TensorVar> params_;
  AdamOptions options_;
  std::vector<std::vector<double>> m_, v_;
  std::size_t t_ = 0;
};

// Learning-rate schedules: the rate for epoch (or step) t = 0, 1, 2, ..., to hand to an
// optimiser's set_lr at the start of each:
//   ops::Adam adam(params, {.lr = 4e-3});
//   const ops::CosineLr schedule(4e-3, epochs);
//   for (std::size_t e = 0; e < epochs; ++e) { adam.set_lr(schedule(e)); ... }
// Step decay (PyTorch's StepLR): base * gamma^floor(t / step_size).
class StepLr {
 public:
  StepLr(double base, std::size_t step_size, double gamma);
  double operator()(std::size_t t) const;

 private:
  double base_, gamma_;
  std::size_t step_size_;
};
// Cosine annealing over `period` (PyTorch's CosineAnnealingLR, no restarts):
// min + (base - min) (1 + cos(pi t / period)) / 2 for t <= period, then min.
class CosineLr {
 public:
  CosineLr(double base, std::size_t period, double min = 0.0);
  double operator()(std::size_t t) const;

 private:
  double base_, min_;
  std::size_t period_;
};

// Fan-in and fan-out of a weight shape, as PyTorch counts them:
//   dense W (out, in): in, out;  a single unit W (in): in, 1;
//   conv W (C_out, C_in, kh, kw): C_in kh kw, C_out kh kw (any trailing kernel axes).
struct Fans {
  std::size_t in = 1, out = 1;
};
Fans fans(const Shape& weight_shape);
// Values for a weight of `shape`, reproducible from `seed` (std::mt19937_64), as double
// or float (T = float gives the double draws rounded: tape.param(he_normal<float>(s, 1), s)
// is an f32 parameter).
// He (Kaiming) normal, for relu layers: N(0, 2 / fan_in).
template <typename T = double>
std::vector<T> he_normal(const Shape& shape, std::uint64_t seed);
// Xavier (Glorot) uniform, for tanh/sigmoid layers: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
template <typename T = double>
std::vector<T> xavier_uniform(const Shape& shape, std::uint64_t seed);

}  // namespace gradpath::ops
