// SPDX-License-Identifier: MIT
// Scalar ops on Vars. Each computes its value and, right beside it, the local partials
// d out / d operand it stores on the tape; the reverse sweep needs nothing else.
#pragma once

#include <cmath>
#include <initializer_list>
#include <span>
#include <utility>

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
  return detail::unary(Op::Div, "div", a, [c](double x) { return std::pair{c / x, -c / (x * x)}; });
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

// ---- elementary functions -------------------------------------------------------------
inline Var exp(const Var& a) {
  return detail::unary(Op::Exp, "exp", a, [](double x) {
    const double e = std::exp(x);
    return std::pair{e, e};
  });
}
// log of a negative number is NaN (value and partial), log(0) is -inf with partial +inf.
inline Var log(const Var& a) {
  return detail::unary(Op::Log, "log", a, [](double x) { return std::pair{std::log(x), 1.0 / x}; });
}
// sqrt of a negative number is NaN; sqrt(0) has partial +inf.
inline Var sqrt(const Var& a) {
  return detail::unary(Op::Sqrt, "sqrt", a, [](double x) {
    const double r = std::sqrt(x);
    return std::pair{r, 0.5 / r};
  });
}
inline Var pow(const Var& a, double p) {
  return detail::unary(Op::Pow, "pow", a, [p](double x) {
    return std::pair{std::pow(x, p), p == 0.0 ? 0.0 : p * std::pow(x, p - 1.0)};
  });
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
  return detail::unary(Op::Pow, "pow", b, [c](double y) {
    const double v = std::pow(c, y);
    return std::pair{v, c == 0.0 ? 0.0 : v * std::log(c)};
  });
}
inline Var tanh(const Var& a) {
  return detail::unary(Op::Tanh, "tanh", a, [](double x) {
    const double t = std::tanh(x);
    return std::pair{t, 1.0 - t * t};
  });
}
// Written so that neither branch overflows for large |x|.
inline Var sigmoid(const Var& a) {
  return detail::unary(Op::Sigmoid, "sigmoid", a, [](double x) {
    const double s = x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
    return std::pair{s, s * (1.0 - s)};
  });
}
// relu'(0) is taken as 0, as PyTorch does.
inline Var relu(const Var& a) {
  return detail::unary(Op::Relu, "relu", a, [](double x) { return std::pair{x > 0 ? x : 0.0, x > 0 ? 1.0 : 0.0}; });
}
// abs'(0) is taken as 0 (the subgradient PyTorch uses).
inline Var abs(const Var& a) {
  return detail::unary(Op::Abs, "abs", a, [](double x) {
    return std::pair{std::abs(x), x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0)};
  });
}
inline Var sin(const Var& a) {
  return detail::unary(Op::Sin, "sin", a, [](double x) { return std::pair{std::sin(x), std::cos(x)}; });
}
inline Var cos(const Var& a) {
  return detail::unary(Op::Cos, "cos", a, [](double x) { return std::pair{std::cos(x), -std::sin(x)}; });
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
  double total = 0.0;
  for (const Var& term : terms) {
    if (!t.owns(term)) [[unlikely]]
      Tape::of(term, terms.front(), "sum");  // raises the Error, or passes a Var kept by reset()
    total += t.value(term.slot());
  }
  t.push_args(terms, 1.0);  // only once every term is valid
  return t.close(Op::Sum, total);
}
inline Var sum(std::initializer_list<Var> terms) { return sum(std::span(terms.begin(), terms.size())); }

inline void backward(const Var& root) { root.tape().backward(root); }

}  // namespace gradpath
