// SPDX-License-Identifier: MIT
// The table of elementary functions: its entries are consistent, and every function's
// derivative and second derivative agree with finite differences, as a scalar op and as a
// tensor op (f64 and f32); tensor max and min.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "autodiff/functions.hpp"
#include "autodiff/tensor.hpp"
#include "check_gradients.hpp"
#include "graph/branches.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;
using gradpath::test::check_gradients;
using gradpath::test::weighted_sum;

namespace {

// Points on both sides of every kink (none at it), inside every function's domain.
std::vector<double> points(const FunctionInfo& f) {
  if (f.name == "log" || f.name == "sqrt") return {0.2, 0.7, 1.3, 2.9};
  return {-2.3, -0.9, -0.35, 0.3, 0.8, 2.1};
}
// The parameters to try: the default, and one that differs from it.
std::vector<std::optional<double>> parameters(const FunctionInfo& f) {
  if (!f.has_parameter()) return {std::nullopt};
  return {std::nullopt, 0.3, 1.7};
}

double central(const std::function<double(double)>& g, double x, double h = 1e-6) {
  return (g(x + h) - g(x - h)) / (2 * h);
}

}  // namespace

TEST_CASE("functions: names and spellings are unique across the table", "[functions]") {
  std::set<std::string_view> words;
  for (const FunctionInfo& f : functions) {
    INFO(f.name);
    CHECK(words.insert(f.name).second);
    for (const std::string_view w : f.spellings) {
      INFO(w);
      CHECK(words.insert(w).second);
    }
    CHECK(function_named(f.name) == &f);
    CHECK(function_spelled(f.name) == &f);
    for (const std::string_view w : f.spellings) CHECK(function_spelled(w) == &f);
    CHECK(f.symbol.find('%') != std::string_view::npos);
    CHECK((f.symbol.find('$') != std::string_view::npos) == f.has_parameter());
  }
  CHECK(words.size() > functions.size());
  // Only a listed spelling may differ in case: a node called Exp stays a name.
  CHECK(function_spelled("Exp") == nullptr);
  CHECK(function_spelled("SIGMOID") == nullptr);
  CHECK(function_spelled("ln")->name == "log");
  CHECK(function_spelled("σ")->name == "sigmoid");
}

TEST_CASE("functions: op codes round-trip through op_name and function_of", "[functions]") {
  for (const FunctionInfo& f : functions) {
    const Op op = function_op(f.id);
    CHECK(op_name(op) == f.name);
    REQUIRE(function_of(op).has_value());
    CHECK(*function_of(op) == f.id);
  }
  for (const Op op :
       {Op::Input, Op::Param, Op::Add, Op::Mul, Op::Pow, Op::Max, Op::Min, Op::Sum, Op::Copy, Op::Tensor}) {
    CHECK_FALSE(function_of(op).has_value());
  }
  CHECK(op_name(Op::Max) == "max");
  CHECK(fn::id_of<fn::Sigmoid> == function_named("sigmoid")->id);
  CHECK(static_cast<std::size_t>(fn::id_of<fn::Silu>) == fn::count - 1);
}

TEST_CASE("functions: values at points known in closed form", "[functions]") {
  auto value = [](std::string_view name, double x, std::optional<double> p = std::nullopt) {
    const FunctionInfo& f = *function_named(name);
    return f.value(x, p.value_or(f.parameter.fallback));
  };
  // Φ(1) = 0.841344746068543 (normal tables); tanh-GELU(1) = 0.5·(1 + tanh(√(2/π)·1.044715)).
  CHECK(value("gelu", 1.0) == Approx(0.841344746068543).epsilon(1e-12));
  CHECK(value("gelu", -1.0) == Approx(-(1 - 0.841344746068543)).epsilon(1e-12));
  CHECK(value("gelu_tanh", 1.0) == Approx(0.5 * (1 + std::tanh(0.7978845608028654 * 1.044715))).epsilon(1e-12));
  CHECK(value("softplus", 0.0) == Approx(std::log(2.0)).epsilon(1e-15));
  CHECK(value("softplus", 800.0) == Approx(800.0).epsilon(1e-15));  // no overflow
  CHECK(value("softplus", -800.0) >= 0.0);
  CHECK(value("softplus", -30.0) == Approx(std::exp(-30.0)).epsilon(1e-12));  // no digits lost
  CHECK(value("silu", 1.0) == Approx(1.0 / (1.0 + std::exp(-1.0))).epsilon(1e-15));
  CHECK(value("elu", -1.0) == Approx(std::exp(-1.0) - 1.0).epsilon(1e-15));
  CHECK(value("elu", -1.0, 2.0) == Approx(2.0 * (std::exp(-1.0) - 1.0)).epsilon(1e-15));
  CHECK(value("elu", 1.5, 2.0) == 1.5);
  CHECK(value("leaky_relu", -2.0) == Approx(-0.02).epsilon(1e-15));
  CHECK(value("leaky_relu", -2.0, 0.2) == Approx(-0.4).epsilon(1e-15));
  CHECK(value("leaky_relu", 3.0, 0.2) == 3.0);
  CHECK(value("sigmoid", -800.0) == 0.0);
  CHECK(value("sigmoid", 800.0) == 1.0);
}

TEST_CASE("functions: derivative and second agree with finite differences", "[functions]") {
  for (const FunctionInfo& f : functions) {
    for (const std::optional<double> q : parameters(f)) {
      const double p = q.value_or(f.parameter.fallback);
      for (const double x : points(f)) {
        INFO(f.name << " at " << x << " with parameter " << p);
        const double y = f.value(x, p);
        const double d = f.derivative(x, y, p);
        CHECK(d == Approx(central([&](double t) { return f.value(t, p); }, x)).epsilon(1e-6).margin(1e-8));
        const double d2 = central([&](double t) { return f.derivative(t, f.value(t, p), p); }, x);
        CHECK(f.second(x, y, p) == Approx(d2).epsilon(1e-5).margin(1e-7));
      }
    }
  }
}

TEST_CASE("functions: a scalar op records the table's value and derivative", "[functions][scalar]") {
  for (const FunctionInfo& f : functions) {
    for (const std::optional<double> q : parameters(f)) {
      const double p = q.value_or(f.parameter.fallback);
      INFO(f.name << " with parameter " << p);
      check_gradients([&](Tape&, std::span<const Var> v) { return apply_function(f.id, v[0], q) * 1.5; },
                      {points(f)[0]});
      for (const double x : points(f)) {
        INFO("at " << x);
        Tape tape;
        const Var a = tape.param(x, "a");
        const Var y = apply_function(f.id, a, q);
        CHECK(tape.op(y.node()) == function_op(f.id));
        backward(y);
        CHECK(y.value() == Approx(f.value(x, p)).epsilon(1e-15));
        CHECK(a.grad() == Approx(central([&](double t) { return f.value(t, p); }, x)).epsilon(1e-6).margin(1e-8));
      }
    }
  }
}

TEST_CASE("functions: the named scalar wrappers are the table's functions", "[functions][scalar]") {
  Tape tape;
  const Var x = tape.param(-0.6, "x");
  const Var l = leaky_relu(x, 0.2) + elu(x, 0.5) + softplus(x) + gelu(x) + gelu_tanh(x) + silu(x);
  backward(l);
  double want = 0.0, grad = 0.0;
  const std::vector<std::pair<std::string_view, double>> used{{"leaky_relu", 0.2}, {"elu", 0.5},     {"softplus", 0},
                                                              {"gelu", 0},         {"gelu_tanh", 0}, {"silu", 0}};
  for (const auto& named : used) {
    const FunctionInfo& f = *function_named(named.first);
    const double p = named.second;
    want += f.value(-0.6, p);
    grad += central([&](double t) { return f.value(t, p); }, -0.6);
  }
  CHECK(l.value() == Approx(want).epsilon(1e-14));
  CHECK(x.grad() == Approx(grad).epsilon(1e-6));
}

TEST_CASE("functions: tensor ops, f64 gradients against finite differences", "[functions][tensor]") {
  for (const FunctionInfo& f : functions) {
    for (const std::optional<double> q : parameters(f)) {
      const double p = q.value_or(f.parameter.fallback);
      INFO(f.name << " with parameter " << p);
      const std::vector<double> x = points(f);
      const std::vector<double> weights{0.7, -1.3, 0.4, 2.0, -0.5, 1.1};
      check_gradients(
          [&](Tape&, std::span<const Var> leaves) {
            const TensorVar t = stack(leaves, Shape{2, x.size() / 2});
            const TensorVar out = ops::apply_function(f.id, t, q);
            CHECK(out.shape() == t.shape());
            return weighted_sum(out, weights);
          },
          std::span<const double>(x));
      Tape tape;
      const TensorVar t = tape.input(x, Shape{x.size()}, "z");
      const TensorVar out = ops::apply_function(f.id, t, q, "h");
      for (std::size_t i = 0; i < x.size(); ++i) CHECK(out.values()[i] == Approx(f.value(x[i], p)).epsilon(1e-15));
      // A kinked function is a switch per element, as relu is.
      CHECK(graph::switches(tape).size() == (f.kinked ? x.size() : 0));
    }
  }
}

TEST_CASE("functions: tensor ops in float32 agree with float64 to 1e-4", "[functions][tensor][f32]") {
  for (const FunctionInfo& f : functions) {
    const std::optional<double> q = f.has_parameter() ? std::optional<double>{0.3} : std::nullopt;
    INFO(f.name);
    const std::vector<double> x = points(f);
    const std::vector<float> xf(x.begin(), x.end());
    const std::vector<double> weights{0.7, -1.3, 0.4, 2.0, -0.5, 1.1};
    Tape tape;
    const TensorVar a = tape.param(x, Shape{x.size()}, "a");
    const TensorVar af = tape.param(std::span<const float>(xf), Shape{x.size()}, "af");
    const TensorVar y = ops::apply_function(f.id, a, q);
    const TensorVar yf = ops::apply_function(f.id, af, q);
    REQUIRE(yf.dtype() == DType::f32);
    const TensorVar yf64 = ops::cast(yf, DType::f64);
    backward(weighted_sum(y, weights) + weighted_sum(yf64, weights));
    for (std::size_t i = 0; i < x.size(); ++i) {
      INFO("element " << i);
      CHECK(yf64.values()[i] == Approx(y.values()[i]).epsilon(1e-4).margin(1e-4));
      CHECK(af.grads_f32()[i] == Approx(a.grads()[i]).epsilon(1e-4).margin(1e-4));
    }
  }
}

TEST_CASE("functions: tensor sin and cos are the table's", "[functions][tensor]") {
  Tape tape;
  const TensorVar x = tape.param(std::vector<double>{0.3, -1.2}, Shape{2}, "x");
  const TensorVar s = ops::sin(x), c = ops::cos(x);
  CHECK(s.values()[1] == Approx(std::sin(-1.2)).epsilon(1e-15));
  CHECK(c.values()[0] == Approx(std::cos(0.3)).epsilon(1e-15));
  backward(ops::sum(ops::add(s, c)).first());
  CHECK(x.grads()[0] == Approx(std::cos(0.3) - std::sin(0.3)).epsilon(1e-14));
  CHECK(x.grads()[1] == Approx(std::cos(-1.2) - std::sin(-1.2)).epsilon(1e-14));
}

TEST_CASE("max and min: elementwise with broadcasting, ties to the first operand", "[ops][tensor]") {
  using BinaryOp = TensorVar (*)(const ops::Operand&, const ops::Operand&, std::string_view);
  for (const BinaryOp op : {BinaryOp{&ops::max}, BinaryOp{&ops::min}}) {
    // Values apart by far more than the finite-difference step: no tie moves under it.
    const std::vector<double> point{0.5, -1.0, 2.0, 0.1, -0.3, 1.2, 0.9, -0.6, 0.0};
    const std::vector<double> weights{0.7, -1.3, 0.4, 2.0, -0.5, 1.1};
    check_gradients(
        [&](Tape&, std::span<const Var> leaves) {
          const TensorVar a = stack(leaves.subspan(0, 6), Shape{2, 3});
          const TensorVar b = stack(leaves.subspan(6), Shape{3});
          return weighted_sum(op(a, b, {}), weights);
        },
        point);
  }
  Tape tape;
  const TensorVar a = tape.param(std::vector<double>{1.0, 2.0, -3.0}, Shape{3}, "a");
  const TensorVar b = tape.param(std::vector<double>{1.0, 5.0, -4.0}, Shape{3}, "b");
  const TensorVar hi = ops::max(a, b, "hi"), lo = ops::min(a, b, "lo");
  test::check_close(hi.values(), {1.0, 5.0, -3.0}, "max");
  test::check_close(lo.values(), {1.0, 2.0, -4.0}, "min");
  backward(ops::sum(ops::add(hi, ops::mul(lo, 10.0))).first());
  // Element 0 is a tie: max and min both give it to a.
  test::check_close(a.grads(), {11.0, 10.0, 1.0}, "da");
  test::check_close(b.grads(), {0.0, 1.0, 10.0}, "db");
  // Each output element is a switch between its operands, so the checker draws both.
  const std::vector<Switch> s = graph::switches(tape);
  REQUIRE(s.size() == 6);
  CHECK(s[0].node == hi.first().node());
  CHECK(graph::branch_taken(tape, s[0]) == 0);  // the tie: the first operand's branch
  CHECK(graph::branch_taken(tape, s[1]) == 1);  // b wins
  CHECK(graph::branch_taken(tape, s[4]) == 0);  // min: a = 2 is the smaller
  CHECK(graph::branch_taken(tape, s[5]) == 1);  // min: b = -4 is the smaller
}
