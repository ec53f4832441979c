// SPDX-License-Identifier: MIT
// Graphs of float64 leaves for the forward-mode and second-order tests: record one, and
// its outputs' central differences along a direction, to hold jvp and hvp against.
#pragma once

#include <catch2/catch.hpp>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/second_order.hpp"
#include "autodiff/tensor.hpp"
#include "ops/scalar.hpp"

namespace gradpath::test {

struct Leaf {
  std::vector<double> values;
  Shape shape;
};
// Builds the output (any shape) from one param leaf tensor per Leaf.
using Graph = std::function<TensorVar(Tape& tape, std::span<const TensorVar> leaves)>;

// A rank-0 leaf: one scalar.
inline Leaf scalar(double x) { return {{x}, Shape{}}; }

// The scalar ops both rules are checked over, by name: every binary op (and a square, a
// negated product), and every unary op and constant form; the table's functions separately.
using BinaryScalarOp = std::function<Var(const Var&, const Var&)>;
using UnaryScalarOp = std::function<Var(const Var&)>;
inline const std::vector<std::pair<std::string, BinaryScalarOp>>& binary_scalar_ops() {
  static const std::vector<std::pair<std::string, BinaryScalarOp>> ops{
      {"add", [](const Var& a, const Var& b) { return a + b; }},
      {"sub", [](const Var& a, const Var& b) { return a - b; }},
      {"mul", [](const Var& a, const Var& b) { return a * b; }},
      {"div", [](const Var& a, const Var& b) { return a / b; }},
      {"pow", [](const Var& a, const Var& b) { return pow(a, b); }},
      {"max", [](const Var& a, const Var& b) { return max(a, b); }},
      {"min", [](const Var& a, const Var& b) { return min(a, b); }},
      {"sum",
       [](const Var& a, const Var& b) {
         return sum({a, b, a});
       }},
      {"square", [](const Var& a, const Var&) { return a * a; }},
      {"dot",  // pairs a·b, b·a and a·a: a slot met twice in one pair as well
       [](const Var& a, const Var& b) {
         return dot({a, b, a}, {b, a, a});
       }},
      {"neg", [](const Var& a, const Var& b) { return -(a * b); }},
  };
  return ops;
}
// Names starting "a^" are powers of the operand: defined for a > 0 only.
inline const std::vector<std::pair<std::string, UnaryScalarOp>>& unary_scalar_ops() {
  static const std::vector<std::pair<std::string, UnaryScalarOp>> ops{
      {"neg", [](const Var& a) { return -a; }},
      {"a + c", [](const Var& a) { return a + 2.0; }},
      {"c - a", [](const Var& a) { return 2.0 - a; }},
      {"a * c", [](const Var& a) { return a * 3.0; }},
      {"a / c", [](const Var& a) { return a / 3.0; }},
      {"c / a", [](const Var& a) { return 3.0 / a; }},
      {"a^c", [](const Var& a) { return pow(a, 2.5); }},
      {"a^1", [](const Var& a) { return pow(a, 1.0); }},
      {"c^a", [](const Var& a) { return pow(1.7, a); }},
      {"leaky_relu slope 0.2", [](const Var& a) { return leaky_relu(a, 0.2); }},
      {"elu alpha 0.5", [](const Var& a) { return elu(a, 0.5); }},
  };
  return ops;
}

inline std::vector<TensorVar> record_leaves(Tape& tape, const std::vector<Leaf>& leaves) {
  std::vector<TensorVar> out;
  for (const Leaf& leaf : leaves) out.push_back(tape.param(leaf.values, leaf.shape));
  return out;
}

// The leaves, each moved by s · direction.
inline std::vector<Leaf> moved(std::vector<Leaf> leaves, const std::vector<std::vector<double>>& direction, double s) {
  for (std::size_t l = 0; l < leaves.size(); ++l)
    for (std::size_t i = 0; i < leaves[l].values.size(); ++i) leaves[l].values[i] += s * direction[l][i];
  return leaves;
}

// (up − down) / 2h, element by element: a central difference of step h.
inline std::vector<double> central(const std::vector<double>& up, const std::vector<double>& down, double h) {
  std::vector<double> out(up.size());
  for (std::size_t i = 0; i < up.size(); ++i) out[i] = (up[i] - down[i]) / (2 * h);
  return out;
}

// The output's values with every leaf moved by s · direction.
inline std::vector<double> values_at(const Graph& f, const std::vector<Leaf>& leaves,
                                     const std::vector<std::vector<double>>& direction, double s) {
  Tape tape;
  const std::vector<TensorVar> vars = record_leaves(tape, moved(leaves, direction, s));
  const TensorVar y = f(tape, vars);
  return {y.values().begin(), y.values().end()};
}

// (f(x + h d) − f(x − h d)) / 2h for every output element.
inline std::vector<double> central_difference(const Graph& f, const std::vector<Leaf>& leaves,
                                              const std::vector<std::vector<double>>& direction, double h = 1e-6) {
  return central(values_at(f, leaves, direction, h), values_at(f, leaves, direction, -h), h);
}

inline std::vector<double> uniform(std::mt19937& rng, std::size_t n, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> out(n);
  for (double& x : out) x = u(rng);
  return out;
}

// One random tangent per leaf.
inline std::vector<std::vector<double>> random_direction(std::mt19937& rng, const std::vector<Leaf>& leaves) {
  std::vector<std::vector<double>> out;
  for (const Leaf& leaf : leaves) out.push_back(uniform(rng, leaf.values.size(), -1.0, 1.0));
  return out;
}

inline std::vector<LeafTangent> seeds(std::span<const TensorVar> vars,
                                      const std::vector<std::vector<double>>& direction) {
  std::vector<LeafTangent> out;
  for (std::size_t l = 0; l < vars.size(); ++l) out.emplace_back(vars[l], direction[l]);
  return out;
}

// The gradient of a scalar graph with respect to every leaf, concatenated, with every
// leaf moved by s · direction.
inline std::vector<double> gradient_at(const Graph& f, const std::vector<Leaf>& leaves,
                                       const std::vector<std::vector<double>>& direction, double s) {
  Tape tape;
  const std::vector<TensorVar> vars = record_leaves(tape, moved(leaves, direction, s));
  tape.backward(f(tape, vars));
  std::vector<double> out;
  for (const TensorVar& v : vars) out.insert(out.end(), v.grads().begin(), v.grads().end());
  return out;
}

// H d by central differences of the gradient: (∇f(x + h d) − ∇f(x − h d)) / 2h.
inline std::vector<double> gradient_difference(const Graph& f, const std::vector<Leaf>& leaves,
                                               const std::vector<std::vector<double>>& direction, double h = 1e-5) {
  return central(gradient_at(f, leaves, direction, h), gradient_at(f, leaves, direction, -h), h);
}

// Each element of `got` (an exact jvp or hvp) against `want` (central differences).
inline void check_each_close(const std::vector<double>& got, const std::vector<double>& want, const char* element,
                             double epsilon, double margin) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO(element << " " << i);
    CHECK(got[i] == Approx(want[i]).epsilon(epsilon).margin(margin));
  }
}

inline std::vector<double> concatenated(const std::vector<std::vector<double>>& parts) {
  std::vector<double> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace gradpath::test
