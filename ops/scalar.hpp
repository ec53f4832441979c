// SPDX-License-Identifier: MIT
// Scalar ops on Vars. Each computes its value and, right beside it, the local partials
// d out / d operand it stores on the tape; the reverse sweep needs nothing else.
#pragma once

#include <cmath>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "autodiff/functions.hpp"
#include "autodiff/tape.hpp"

namespace gradpath {

namespace detail {
// rule(x) returns {value, d value / d x}.
template <typename Rule>
inline Var unary(Op op, const char* what, const Var& a, Rule rule) {
  Tape& t = Tape::of(a, what);
  const auto [value, partial] = rule(t.value(a.slot()));
  return t.record(op, value, a.slot(), partial);
}
// rule(x, y) returns {value, d/dx, d/dy}.
template <typename Rule>
inline Var binary(Op op, const char* what, const Var& a, const Var& b, Rule rule) {
  Tape& t = Tape::of(a, b, what);
  const auto [value, da, db] = rule(t.value(a.slot()), t.value(b.slot()));
  return t.record(op, value, a.slot(), da, b.slot(), db);
}
struct Partials2 {
  double value, da, db;
};
}  // namespace detail

// ---- arithmetic ---------------------------------------------------------------------
inline Var operator+(const Var& a, const Var& b) {
  return detail::binary(Op::Add, "add", a, b, [](double x, double y) { return detail::Partials2{x + y, 1.0, 1.0}; });
}
inline Var operator+(const Var& a, double c) {
  return detail::unary(Op::Add, "add", a, [c](double x) { return std::pair{x + c, 1.0}; });
}
inline Var operator+(double c, const Var& a) { return a + c; }

inline Var operator-(const Var& a, const Var& b) {
  return detail::binary(Op::Sub, "sub", a, b, [](double x, double y) { return detail::Partials2{x - y, 1.0, -1.0}; });
}
inline Var operator-(const Var& a, double c) {
  return detail::unary(Op::Sub, "sub", a, [c](double x) { return std::pair{x - c, 1.0}; });
}
inline Var operator-(double c, const Var& a) {
  return detail::unary(Op::Sub, "sub", a, [c](double x) { return std::pair{c - x, -1.0}; });
}

inline Var operator*(const Var& a, const Var& b) {
  return detail::binary(Op::Mul, "mul", a, b, [](double x, double y) { return detail::Partials2{x * y, y, x}; });
}
inline Var operator*(const Var& a, double c) {
  return detail::unary(Op::Mul, "mul", a, [c](double x) { return std::pair{x * c, c}; });
}
inline Var operator*(double c, const Var& a) { return a * c; }

// Division by zero follows IEEE: the value and partials become inf or NaN.
inline Var operator/(const Var& a, const Var& b) {
  return detail::binary(Op::Div, "div", a, b, [](double x, double y) {
    return detail::Partials2{x / y, 1.0 / y, -x / (y * y)};
  });
}
inline Var operator/(const Var& a, double c) {
  return detail::unary(Op::Div, "div", a, [c](double x) { return std::pair{x / c, 1.0 / c}; });
}
inline Var operator/(double c, const Var& a) {
  Var y = detail::unary(Op::Div, "div", a, [c](double x) { return std::pair{c / x, -c / (x * x)}; });
  y.tape().note_constant(ConstantRole::numerator, c);  // tells c / x from x / c for second order
  return y;
}

inline Var operator-(const Var& a) {
  return detail::unary(Op::Neg, "neg", a, [](double x) { return std::pair{-x, -1.0}; });
}

inline Var& operator+=(Var& a, const Var& b) { return a = a + b; }
inline Var& operator-=(Var& a, const Var& b) { return a = a - b; }
inline Var& operator*=(Var& a, const Var& b) { return a = a * b; }
inline Var& operator/=(Var& a, const Var& b) { return a = a / b; }
inline Var& operator+=(Var& a, double c) { return a = a + c; }
inline Var& operator-=(Var& a, double c) { return a = a - c; }
inline Var& operator*=(Var& a, double c) { return a = a * c; }
inline Var& operator/=(Var& a, double c) { return a = a / c; }

// ---- elementary functions (autodiff/functions.hpp) --------------------------------------
namespace detail {
// Records F at a with parameter p: its value and, from the table, its derivative.
template <typename F>
inline Var function(const Var& a, double p = F::parameter.fallback) {
  Var out = unary(function_op(fn::id_of<F>), F::name.data(), a, [p](double x) {
    const double y = F::value(x, p);
    return std::pair{y, F::derivative(x, y, p)};
  });
  if constexpr (!F::parameter.name.empty()) out.tape().note_constant(ConstantRole::parameter, p);
  return out;
}
}  // namespace detail

// Any function of the table by its id (the model loader, tests over every function);
// p is its parameter, the function's default when none is given.
inline Var apply_function(FnId f, const Var& a, std::optional<double> p = std::nullopt) {
  const FunctionInfo& info = function_info(f);
  const double q = p.value_or(info.parameter.fallback);
  Var out = detail::unary(function_op(f), info.name.data(), a, [&info, q](double x) {
    const double y = info.value(x, q);
    return std::pair{y, info.derivative(x, y, q)};
  });
  if (info.has_parameter()) out.tape().note_constant(ConstantRole::parameter, q);
  return out;
}

inline Var exp(const Var& a) { return detail::function<fn::Exp>(a); }
inline Var log(const Var& a) { return detail::function<fn::Log>(a); }
inline Var sqrt(const Var& a) { return detail::function<fn::Sqrt>(a); }
inline Var tanh(const Var& a) { return detail::function<fn::Tanh>(a); }
inline Var sigmoid(const Var& a) { return detail::function<fn::Sigmoid>(a); }
inline Var relu(const Var& a) { return detail::function<fn::Relu>(a); }
inline Var abs(const Var& a) { return detail::function<fn::Abs>(a); }
inline Var sin(const Var& a) { return detail::function<fn::Sin>(a); }
inline Var cos(const Var& a) { return detail::function<fn::Cos>(a); }
inline Var leaky_relu(const Var& a, double slope = fn::LeakyRelu::parameter.fallback) {
  return detail::function<fn::LeakyRelu>(a, slope);
}
inline Var elu(const Var& a, double alpha = fn::Elu::parameter.fallback) { return detail::function<fn::Elu>(a, alpha); }
inline Var softplus(const Var& a) { return detail::function<fn::Softplus>(a); }
inline Var gelu(const Var& a) { return detail::function<fn::Gelu>(a); }
inline Var gelu_tanh(const Var& a) { return detail::function<fn::GeluTanh>(a); }
inline Var silu(const Var& a) { return detail::function<fn::Silu>(a); }

inline Var pow(const Var& a, double p) {
  Var y = detail::unary(Op::Pow, "pow", a, [p](double x) {
    return std::pair{std::pow(x, p), p == 0.0 ? 0.0 : p * std::pow(x, p - 1.0)};
  });
  y.tape().note_constant(ConstantRole::exponent, p);
  return y;
}
// d/dy x^y = x^y log x; at x == 0 it is taken as 0 (the limit from the right for y > 0),
// and it is NaN for x < 0, where x^y is real only for integer y.
inline Var pow(const Var& a, const Var& b) {
  return detail::binary(Op::Pow, "pow", a, b, [](double x, double y) {
    const double v = std::pow(x, y);
    const double dx = y == 0.0 ? 0.0 : y * std::pow(x, y - 1.0);
    return detail::Partials2{v, dx, x == 0.0 ? 0.0 : v * std::log(x)};
  });
}
inline Var pow(double c, const Var& b) {
  Var out = detail::unary(Op::Pow, "pow", b, [c](double y) {
    const double v = std::pow(c, y);
    return std::pair{v, c == 0.0 ? 0.0 : v * std::log(c)};
  });
  out.tape().note_constant(ConstantRole::base, c);
  return out;
}
// On a tie the whole gradient goes to the first operand.
inline Var max(const Var& a, const Var& b) {
  return detail::binary(Op::Max, "max", a, b, [](double x, double y) {
    return x >= y ? detail::Partials2{x, 1.0, 0.0} : detail::Partials2{y, 0.0, 1.0};
  });
}
inline Var min(const Var& a, const Var& b) {
  return detail::binary(Op::Min, "min", a, b, [](double x, double y) {
    return x <= y ? detail::Partials2{x, 1.0, 0.0} : detail::Partials2{y, 0.0, 1.0};
  });
}

// ---- n-ary sum: one node, many operands (z_k = sum_i w_i a_j is one node) -------------
inline Var sum(std::span<const Var> terms) {
  if (terms.empty()) throw Error("sum: no terms (an empty sum has no tape to live on)");
  Tape& t = Tape::of(terms.front(), "sum");
  if (!t.owns_all(terms)) [[unlikely]] {
    for (const Var& term : terms)
      Tape::of(term, terms.front(), "sum");  // raises the Error, or passes a Var kept by reset()
  }
  double total = 0.0;  // values read only once every term is valid
  for (const Var& term : terms) total += t.value(term.slot());
  t.push_args(terms, 1.0);
  return t.close(Op::Sum, total);
}
inline Var sum(std::initializer_list<Var> terms) { return sum(std::span(terms.begin(), terms.size())); }

// ---- dot product: Σ x_i·y_i recorded as one statement ----------------------------------
// One node with 2n operands (x0, y0, x1, y1, …) whose partials are the other factor's
// values (y0, x0, y1, x1, …): what an expression-template tape records for
// x0*y0 + x1*y1 + …, and what sum() over the products would give, in a third of the tape.
// The products are not nodes of their own: the graph shows the edge x_i -> dot with
// partial y_i, the checker reads "z = x1·y1 + …" from it. To see every product as a node
// (and walk paths through it), write the products with * and add them with sum().
inline Var dot(std::span<const Var> x, std::span<const Var> y) {
  if (x.size() != y.size()) {
    throw Error("dot: the two operand lists differ in length (" + std::to_string(x.size()) + " and " +
                std::to_string(y.size()) + "); each x_i needs its y_i");
  }
  if (x.empty()) throw Error("dot: no terms (an empty dot product has no tape to live on)");
  Tape& t = Tape::of(x.front(), "dot");
  if (!t.owns_all(x, y)) [[unlikely]] {
    for (std::size_t i = 0; i < x.size(); ++i) {
      Tape::of(x[i], x.front(), "dot");  // raises the Error, or passes a Var kept by reset()
      Tape::of(y[i], x.front(), "dot");
    }
  }
  return t.record_dot(x, y);  // values read only once every operand is valid
}
inline Var dot(std::initializer_list<Var> x, std::initializer_list<Var> y) {
  return dot(std::span(x.begin(), x.size()), std::span(y.begin(), y.size()));
}

inline void backward(const Var& root) { root.tape().backward(root); }

}  // namespace gradpath
