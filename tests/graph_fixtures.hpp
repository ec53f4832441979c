// SPDX-License-Identifier: MIT
// Graphs the graph tests share: the seed network, random scalar DAGs, a tiny tensor op.
#pragma once

#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "autodiff/tensor.hpp"
#include "ops/scalar.hpp"

namespace gradpath::test {

// Index (0-based, row-major in the 5x5 image) of the input under filter tap i for
// output k of a stride-2 convolution: output k's window starts at row 2*(k/2), col 2*(k%2).
inline int input_under_tap(int k, int i) { return (2 * (k / 2) + i / 3) * 5 + 2 * (k % 2) + i % 3; }

// The seed note's network from scalar ops, at a random point: z_k = sum_i w_i a_j(k,i)
// (scope "conv"), y = sum_k v_k z_k + b (scope "dense"), L = (y - t)^2 / 2 (scope "loss").
struct SeedNet {
  explicit SeedNet(unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    for (auto& x : image) x = uniform(rng);
    for (auto& x : filter) x = uniform(rng);
    for (auto& x : dense) x = uniform(rng);
    bias = uniform(rng);
    target = uniform(rng);
    a = tape.input(image, Shape{5, 5}, "a");
    w = tape.param(filter, Shape{3, 3}, "w");
    v = tape.param(dense, Shape{4}, "v");
    b = tape.param(bias, "b");
    t = tape.input(target, "t");
    {
      ScopeGuard scope(tape, "conv");
      for (int k = 0; k < 4; ++k) {
        for (int i = 0; i < 9; ++i) product[k][i] = w[i] * a[input_under_tap(k, i)];
        z[k] = sum(std::span<const Var>(product[k])).named("z" + std::to_string(k + 1));
      }
    }
    {
      ScopeGuard scope(tape, "dense");
      for (int k = 0; k < 4; ++k) vz[k] = v[k] * z[k];
      y = sum({vz[0], vz[1], vz[2], vz[3], b}).named("y");
    }
    ScopeGuard scope(tape, "loss");
    diff = y - t;
    square = pow(diff, 2.0);
    L = (square * 0.5).named("L");
  }

  // By hand: z_k, y and dL/dz_k = (y - t) v_k.
  double z_hand(int k) const {
    double s = 0;
    for (int i = 0; i < 9; ++i) s += filter[i] * image[input_under_tap(k, i)];
    return s;
  }
  double dL_dz_hand(int k) const {
    double y_hand = bias;
    for (int j = 0; j < 4; ++j) y_hand += dense[j] * z_hand(j);
    return (y_hand - target) * dense[k];
  }

  std::array<double, 25> image{};
  std::array<double, 9> filter{};
  std::array<double, 4> dense{};
  double bias = 0, target = 0;
  Tape tape;
  TensorVar a, w, v;
  Var b, t;
  std::array<std::array<Var, 9>, 4> product;
  std::array<Var, 4> z, vz;
  Var y, diff, square, L;
};

// A random scalar DAG: `leaves` inputs, then `ops` nodes, each a random op from
// ops/scalar.hpp on random earlier nodes (so fan-out, x*x and shared subexpressions
// all occur), and a root summing the last three. A node whose value leaves [-4, 4] is
// passed through tanh, so every partial stays finite and no grad is ever skipped.
inline Var random_dag(Tape& tape, std::mt19937& rng, int leaves, int ops, std::vector<Var>& inputs) {
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<Var> nodes;
  for (int i = 0; i < leaves; ++i) nodes.push_back(tape.input(uniform(rng), "x" + std::to_string(i + 1)));
  inputs = nodes;
  auto pick = [&] { return nodes[std::uniform_int_distribution<std::size_t>(0, nodes.size() - 1)(rng)]; };
  for (int n = 0; n < ops; ++n) {
    const Var p = pick(), q = pick();
    Var out;
    switch (std::uniform_int_distribution<int>(0, 13)(rng)) {
      case 0:
        out = p + q;
        break;
      case 1:
        out = p - q;
        break;
      case 2:
        out = p * q;
        break;
      case 3:
        out = p / (2.0 + cos(q));
        break;
      case 4:
        out = tanh(p);
        break;
      case 5:
        out = sin(p) * 1.5;
        break;
      case 6:
        out = sigmoid(p);
        break;
      case 7:
        out = exp(p * 0.5);
        break;
      case 8:
        out = pow(p, 2.0);
        break;
      case 9:
        out = p * p;
        break;
      case 10:
        out = sum({p, q, pick()});
        break;
      case 11:
        out = max(p, q);
        break;
      case 12:
        out = min(p, q) + 0.5;
        break;
      default:
        out = sqrt(p * p + 1.0);
        break;
    }
    if (std::abs(out.value()) > 4.0) out = tanh(out);
    nodes.push_back(out);
  }
  const std::size_t n = nodes.size();
  return sum({nodes[n - 1], nodes[n - 2], nodes[n - 3]});
}

// A test-local tensor op: out = 2 * in, elementwise.
inline void scale2_backward(Tape& tape, const TensorRecord& r) {
  const TensorArg in = tape.tensor_args(r).front();
  const Slot out = tape.offset(r.node);
  for (std::size_t i = 0; i < r.shape.size(); ++i) tape.grads()[in.offset + i] += 2.0 * tape.grads()[out + i];
}
inline const TensorOpInfo scale2_info{"scale2", scale2_backward};
inline TensorVar scale2(const TensorVar& x) {
  Tape& tape = x.tape();
  const TensorArg args[] = {x.arg()};
  const NodeId node = tape.record_tensor(scale2_info, x.shape(), args);
  auto out = tape.values().subspan(tape.offset(node), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = 2.0 * tape.value(x.offset() + static_cast<Slot>(i));
  return TensorVar(tape.var_at(tape.offset(node)), x.shape());
}

}  // namespace gradpath::test
