// SPDX-License-Identifier: MIT
// Optimiser steps over leaf tensors, and seeded weight initialisers.
#include "ops/optim.hpp"

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <utility>

#include "ops/tensor.hpp"

namespace gradpath::ops {

namespace {

// Raises unless every element of `param` is a leaf and backward has run since the tape
// last changed; the optimisers check all parameters before they write any.
void check_step(const TensorVar& param, std::string_view op) {
  const Tape& tape = Tape::of(param.first(), op);
  if (!tape.has_grads()) {
    throw Error(std::string(op) + ": backward() has not run on this tape since it was last changed (parameter " +
                param.shape().str() + ")");
  }
  if (param.dtype() == DType::f32) {  // one tensor node
    const NodeId n = tape.node_of(param.first().slot());
    if (!is_leaf(tape.op(n))) {
      throw Error(std::string(op) + ": the float32 parameter " + param.shape().str() + " ('" + tape.name(n) +
                  "') is a " + std::string(tape.tensor_record(n).info->name) + " node, not an input or parameter");
    }
    return;
  }
  // A leaf tensor is a run of one-slot leaf nodes: walk the nodes from the first element's
  // instead of searching for the node of every element.
  const NodeId first = tape.node_of(param.offset());
  for (std::size_t i = 0; i < param.size(); ++i) {
    const auto slot = param.offset() + static_cast<Slot>(i);
    const auto run = static_cast<NodeId>(first + i);
    if (run < tape.node_count() && tape.offset(run) == slot && is_leaf(tape.op(run))) continue;
    throw Error(std::string(op) + ": element " + std::to_string(i) + " ('" + tape.slot_name(slot) +
                "') of the parameter " + param.shape().str() + " is a " +
                std::string(op_name(tape.op(tape.node_of(slot)))) + " node, not an input or parameter");
  }
}

// w_i -= step(g_i, i) for every element i of `param`, computed in double and stored in
// the parameter's dtype. After check_step: the leaves are written directly, as
// Tape::set_value would.
template <typename Step>
void update_each(const TensorVar& param, Step step) {
  Tape& tape = param.tape();
  detail::dispatch(param.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* w = detail::values<T>(tape) + param.offset();
    const T* g = detail::grads<T>(tape) + param.offset();
    for (std::size_t i = 0; i < param.size(); ++i) w[i] = static_cast<T>(w[i] - step(static_cast<double>(g[i]), i));
  });
}

void check_all(const std::vector<TensorVar>& params, std::string_view op) {
  for (const TensorVar& p : params) check_step(p, op);
}

std::vector<std::vector<double>> zeros_like(const std::vector<TensorVar>& params) {
  std::vector<std::vector<double>> buffers;
  for (const TensorVar& p : params) buffers.emplace_back(p.size(), 0.0);
  return buffers;
}

// An Error "<what> must be <rule>, got <value>" unless ok.
void require(bool ok, std::string_view what, std::string_view rule, double value) {
  if (ok) return;
  char number[32];
  std::snprintf(number, sizeof number, "%g", value);
  throw Error(std::string(what) + " must be " + std::string(rule) + ", got " + number);
}

}  // namespace

void sgd_step(const TensorVar& param, double alpha) {
  check_step(param, "sgd_step");
  update_each(param, [&](double g, std::size_t) { return alpha * g; });
}

void sgd_step(const Var& param, double alpha) {
  Tape::of(param, "sgd_step");
  sgd_step(TensorVar(param, Shape{}), alpha);
}

Sgd::Sgd(std::vector<TensorVar> params, SgdOptions options)
    : params_(std::move(params)), options_(options), velocity_(zeros_like(params_)) {
  require(options.lr >= 0, "Sgd: lr", ">= 0", options.lr);
  require(options.momentum >= 0 && options.momentum < 1, "Sgd: momentum", "in [0, 1)", options.momentum);
}

void Sgd::step() {
  check_all(params_, "Sgd::step");
  for (std::size_t p = 0; p < params_.size(); ++p) {
    update_each(params_[p], [&](double g, std::size_t i) {
      double& v = velocity_[p][i];
      v = options_.momentum * v + g;
      return options_.lr * v;
    });
  }
}

Adam::Adam(std::vector<TensorVar> params, AdamOptions options)
    : params_(std::move(params)), options_(options), m_(zeros_like(params_)), v_(zeros_like(params_)) {
  require(options.lr >= 0, "Adam: lr", ">= 0", options.lr);
  require(options.beta1 >= 0 && options.beta1 < 1, "Adam: beta1", "in [0, 1)", options.beta1);
  require(options.beta2 >= 0 && options.beta2 < 1, "Adam: beta2", "in [0, 1)", options.beta2);
  require(options.eps > 0, "Adam: eps", "> 0", options.eps);
}

void Sgd::set_lr(double lr) {
  require(lr >= 0 && std::isfinite(lr), "Sgd::set_lr: lr", "finite and >= 0", lr);
  options_.lr = lr;
}

void Adam::set_lr(double lr) {
  require(lr >= 0 && std::isfinite(lr), "Adam::set_lr: lr", "finite and >= 0", lr);
  options_.lr = lr;
}

StepLr::StepLr(double base, std::size_t step_size, double gamma) : base_(base), gamma_(gamma), step_size_(step_size) {
  require(base >= 0 && std::isfinite(base), "StepLr: base", "finite and >= 0", base);
  require(step_size > 0, "StepLr: step_size", ">= 1", static_cast<double>(step_size));
  require(gamma >= 0 && gamma <= 1, "StepLr: gamma", "in [0, 1]", gamma);
}

// base * gamma^k as a double power, so StepLr(lr, 1, d)(e) is exactly lr * pow(d, e).
double StepLr::operator()(std::size_t t) const {
  const std::size_t decays = t / step_size_;  // whole steps only
  return base_ * std::pow(gamma_, static_cast<double>(decays));
}

CosineLr::CosineLr(double base, std::size_t period, double min) : base_(base), min_(min), period_(period) {
  require(base >= 0 && std::isfinite(base), "CosineLr: base", "finite and >= 0", base);
  require(period > 0, "CosineLr: period", ">= 1", static_cast<double>(period));
  require(min >= 0 && min <= base, "CosineLr: min", "in [0, base]", min);
}

double CosineLr::operator()(std::size_t t) const {
  if (t >= period_) return min_;
  const double pi = std::acos(-1.0);
  return min_ + (base_ - min_) * (1.0 + std::cos(pi * static_cast<double>(t) / static_cast<double>(period_))) / 2.0;
}

void Adam::step() {
  check_all(params_, "Adam::step");
  ++t_;
  const double t = static_cast<double>(t_);
  const double correction1 = 1.0 - std::pow(options_.beta1, t), correction2 = 1.0 - std::pow(options_.beta2, t);
  for (std::size_t p = 0; p < params_.size(); ++p) {
    update_each(params_[p], [&](double g, std::size_t i) {
      double &m = m_[p][i], &v = v_[p][i];
      m = options_.beta1 * m + (1.0 - options_.beta1) * g;
      v = options_.beta2 * v + (1.0 - options_.beta2) * g * g;
      return options_.lr * (m / correction1) / (std::sqrt(v / correction2) + options_.eps);
    });
  }
}

Fans fans(const Shape& weight_shape) {
  if (weight_shape.rank() == 0) return {};
  if (weight_shape.rank() == 1) return {weight_shape[0], 1};
  std::size_t receptive = 1;
  for (std::size_t i = 2; i < weight_shape.rank(); ++i) receptive *= weight_shape[i];
  return {weight_shape[1] * receptive, weight_shape[0] * receptive};
}

// Draws in double for either T, so float values are the double ones rounded.
template <typename T>
std::vector<T> he_normal(const Shape& shape, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(0.0, std::sqrt(2.0 / static_cast<double>(fans(shape).in)));
  std::vector<T> values(shape.size());
  for (T& x : values) x = static_cast<T>(dist(rng));
  return values;
}

template <typename T>
std::vector<T> xavier_uniform(const Shape& shape, std::uint64_t seed) {
  const Fans f = fans(shape);
  const double a = std::sqrt(6.0 / static_cast<double>(f.in + f.out));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-a, a);
  std::vector<T> values(shape.size());
  for (T& x : values) x = static_cast<T>(dist(rng));
  return values;
}

template std::vector<double> he_normal<double>(const Shape&, std::uint64_t);
template std::vector<float> he_normal<float>(const Shape&, std::uint64_t);
template std::vector<double> xavier_uniform<double>(const Shape&, std::uint64_t);
template std::vector<float> xavier_uniform<float>(const Shape&, std::uint64_t);

}  // namespace gradpath::ops
