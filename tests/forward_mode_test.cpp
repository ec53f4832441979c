// SPDX-License-Identifier: MIT
// Forward mode (jvp) on the recorded tape: every scalar op and every tensor op with a
// tangent rule against central differences of its values, a few against hand formulas,
// and the Errors for an op without a rule and for float32.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "autodiff/functions.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/pool.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"
#include "second_order_fixtures.hpp"

using namespace gradpath;
using namespace gradpath::test;

namespace {

// jvp of f at `leaves` along a random direction equals the central difference.
void check_jvp(const Graph& f, const std::vector<Leaf>& leaves, unsigned seed = 1) {
  std::mt19937 rng(seed);
  const auto direction = random_direction(rng, leaves);
  Tape tape;
  const std::vector<TensorVar> vars = record_leaves(tape, leaves);
  const TensorVar y = f(tape, vars);
  const std::vector<double> tangent = jvp(tape, y, seeds(vars, direction));
  const std::vector<double> numeric = central_difference(f, leaves, direction);
  check_each_close(tangent, numeric, "output element", 1e-6, 1e-7);
}

// A scalar op of one or two Vars as a graph of rank-0 leaves.
Graph unary_scalar(const std::function<Var(const Var&)>& op) {
  return [op](Tape&, std::span<const TensorVar> l) {
    const Var y = op(l[0][0]);
    return TensorVar(y, Shape{});
  };
}
Graph binary_scalar(const std::function<Var(const Var&, const Var&)>& op) {
  return [op](Tape&, std::span<const TensorVar> l) {
    const Var y = op(l[0][0], l[1][0]);
    return TensorVar(y, Shape{});
  };
}

}  // namespace

TEST_CASE("jvp of a scalar graph is the hand directional derivative", "[forward]") {
  Tape tape;
  const Var x = tape.param(0.7, "x"), y = tape.param(-1.3, "y");
  const Var f = x * x * y + sin(y);  // df = (2xy) dx + (x^2 + cos y) dy
  const double dx = 0.4, dy = -2.0;
  CHECK(jvp(tape, f, {{x, dx}, {y, dy}}) == Approx(2 * 0.7 * -1.3 * dx + (0.49 + std::cos(-1.3)) * dy));
  CHECK(jvp(tape, f, {{x, 1.0}}) == Approx(2 * 0.7 * -1.3));
  CHECK(jvp(tape, f, {}) == 0.0);
}

TEST_CASE("jvp of every binary scalar op matches central differences", "[forward]") {
  for (const auto& entry : binary_scalar_ops()) {
    const std::string& name = entry.first;
    const auto& op = entry.second;
    INFO(name);
    check_jvp(binary_scalar(op), {scalar(1.3), scalar(0.6)});
  }
}

TEST_CASE("jvp of every unary scalar op and table function matches central differences", "[forward]") {
  for (const double x : {0.8, -0.7}) {
    for (const auto& entry : unary_scalar_ops()) {
      const std::string& name = entry.first;
      const auto& op = entry.second;
      if (name.starts_with("a^") && x < 0) continue;
      INFO(name << " at " << x);
      check_jvp(unary_scalar(op), {scalar(x)});
    }
    for (const FunctionInfo& f : functions) {
      if ((f.name == "log" || f.name == "sqrt") && x < 0) continue;
      INFO(f.name << " at " << x);
      check_jvp(unary_scalar([&f](const Var& a) { return apply_function(f.id, a); }), {scalar(x)});
    }
  }
}

TEST_CASE("jvp of the elementwise tensor ops matches central differences", "[forward]") {
  std::mt19937 rng(7);
  const Leaf a{uniform(rng, 6, 0.5, 1.5), Shape{2, 3}}, row{uniform(rng, 3, 0.5, 1.5), Shape{3}};
  const std::vector<std::pair<std::string, std::function<TensorVar(const TensorVar&, const TensorVar&)>>> ops{
      {"add", [](const TensorVar& x, const TensorVar& y) { return x + y; }},
      {"sub", [](const TensorVar& x, const TensorVar& y) { return x - y; }},
      {"mul", [](const TensorVar& x, const TensorVar& y) { return x * y; }},
      {"div", [](const TensorVar& x, const TensorVar& y) { return x / y; }},
      {"max", [](const TensorVar& x, const TensorVar& y) { return ops::max(x, y); }},
      {"min", [](const TensorVar& x, const TensorVar& y) { return ops::min(x, y); }},
      {"constant left", [](const TensorVar& x, const TensorVar&) { return 2.0 / x; }},
      {"constant right", [](const TensorVar& x, const TensorVar&) { return x - 0.5; }},
      {"neg", [](const TensorVar& x, const TensorVar&) { return -x; }},
      {"pow", [](const TensorVar& x, const TensorVar&) { return ops::pow(x, 2.5); }},
  };
  for (const auto& entry : ops) {
    const std::string& name = entry.first;
    const auto& op = entry.second;
    INFO(name);
    check_jvp([&op](Tape&, std::span<const TensorVar> l) { return op(l[0], l[1]); }, {a, row});
  }
  for (const FunctionInfo& f : functions) {
    INFO(f.name);
    const Leaf x{uniform(rng, 6, -1.5, 1.5), Shape{2, 3}};
    const bool positive_only = f.name == "log" || f.name == "sqrt";
    check_jvp([&f](Tape&, std::span<const TensorVar> l) { return ops::apply_function(f.id, l[0], 0.3); },
              {positive_only ? a : x});
  }
}

TEST_CASE("jvp of matmul, dense, reductions, views and transpose matches central differences", "[forward]") {
  std::mt19937 rng(3);
  const Leaf a{uniform(rng, 6, -1, 1), Shape{2, 3}}, b{uniform(rng, 12, -1, 1), Shape{3, 4}};
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::matmul(l[0], l[1]); }, {a, b});
  const Leaf batch_a{uniform(rng, 12, -1, 1), Shape{2, 2, 3}}, batch_b{uniform(rng, 24, -1, 1), Shape{2, 3, 4}};
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::matmul(l[0], l[1]); }, {batch_a, batch_b});
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::matmul(l[0], l[1]); }, {batch_a, b});
  const Leaf x{uniform(rng, 6, -1, 1), Shape{2, 3}}, w{uniform(rng, 12, -1, 1), Shape{4, 3}},
      bias{uniform(rng, 4, -1, 1), Shape{4}};
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::dense(l[0], l[1], l[2]); }, {x, w, bias});
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::sum(l[0]); }, {x});
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::mean(l[0], 1); }, {x});
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::sum(l[0], 0, ops::KeepDim::yes); }, {x});
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::transpose(ops::reshape(l[0], Shape{3, 2})); }, {x});
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::exp(ops::flatten(l[0])); }, {x});
}

TEST_CASE("jvp of softmax, log_softmax and the losses matches central differences", "[forward]") {
  std::mt19937 rng(5);
  const Leaf x{uniform(rng, 8, -2, 2), Shape{2, 4}}, t{uniform(rng, 8, -1, 1), Shape{2, 4}};
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::softmax(l[0]); }, {x});
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::log_softmax(l[0]); }, {x});
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::mse(l[0], l[1]); }, {x, t});
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::half_squared_error(l[0], l[1]); }, {x, t});
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::half_squared_error(l[0], 0.25); }, {x});
  const std::vector<int> labels{1, 3};
  check_jvp([&labels](Tape&, std::span<const TensorVar> l) { return ops::softmax_cross_entropy(l[0], labels); }, {x});
}

TEST_CASE("jvp of conv2d, conv2d_mac and the pools matches central differences", "[forward]") {
  std::mt19937 rng(11);
  const Leaf image{uniform(rng, 2 * 2 * 5 * 5, -1, 1), Shape{2, 2, 5, 5}},
      filter{uniform(rng, 3 * 2 * 3 * 3, -1, 1), Shape{3, 2, 3, 3}}, bias{uniform(rng, 3, -1, 1), Shape{3}};
  for (const ops::Conv2dOptions o : {ops::Conv2dOptions{1, 0}, ops::Conv2dOptions{2, 1}}) {
    INFO("stride " << o.stride << " padding " << o.padding);
    check_jvp([o](Tape&, std::span<const TensorVar> l) { return ops::conv2d(l[0], l[1], l[2], o); },
              {image, filter, bias});
    check_jvp([o](Tape&, std::span<const TensorVar> l) { return ops::conv2d_mac(l[0], l[1], l[2], o); },
              {image, filter, bias});
  }
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::max_pool2d(l[0]); }, {image});
  check_jvp([](Tape&, std::span<const TensorVar> l) { return ops::avg_pool2d(l[0], {3, 2, 1}); }, {image});
}

// An op recorded without a tangent rule: its values are x's, its backward adds nothing.
void untangled_backward(Tape&, const TensorRecord&) {}
constexpr TensorOpInfo untangled_info{"untangled", &untangled_backward};

TEST_CASE("jvp raises an Error naming an op without a tangent rule, float32 and non-leaf seeds", "[forward]") {
  const std::vector<double> values{1.0, 2.0};
  {
    Tape tape;
    const TensorVar x = tape.param(values, Shape{2}, "x");
    const TensorVar z = ops::exp(x);
    CHECK_THROWS_WITH(jvp(tape, z, {{z, {1.0, 1.0}}}), Catch::Contains("not a leaf"));
    CHECK_THROWS_WITH(jvp(tape, z, {{x, {1.0}}}), Catch::Contains("1 tangent values"));
    const TensorArg arg = x.arg();
    const TensorVar u = ops::detail::record(tape, untangled_info, x.shape(), std::span(&arg, 1), "u");
    CHECK_THROWS_WITH(jvp(tape, ops::sum(u), {{x, {1.0, 1.0}}}),
                      Catch::Contains("'untangled'") && Catch::Contains("no tangent rule"));
  }
  {
    Tape tape;
    const TensorVar x = tape.param(values, Shape{2}, "x");
    const TensorVar y = ops::cast(ops::cast(x, DType::f32), DType::f64);
    CHECK_THROWS_WITH(jvp(tape, y, {{x, {1.0, 1.0}}}), Catch::Contains("not supported in float32"));
  }
  Tape t32;
  const std::vector<float> v32{1.0f, 2.0f};
  const TensorVar w = t32.param(v32, Shape{2});
  CHECK_THROWS_WITH(jvp(t32, ops::exp(w), {}), Catch::Contains("not supported in float32"));
}

TEST_CASE("jvp of the tensor ops is their hand formula", "[forward]") {
  Tape tape;
  const std::vector<double> av{1.0, 2.0, 3.0, 4.0}, bv{0.5, -1.0, 2.0, 0.25};
  const TensorVar a = tape.param(av, Shape{2, 2}), b = tape.param(bv, Shape{2, 2});
  // d(AB) = dA B + A dB with dA = I, dB = 0: B itself.
  const std::vector<double> t = jvp(tape, ops::matmul(a, b), {{a, {1.0, 0.0, 0.0, 1.0}}});
  CHECK(t == bv);
  // d softmax along the all-ones tangent is 0 (softmax is shift invariant).
  for (double e : jvp(tape, ops::softmax(a), {{a, {1.0, 1.0, 1.0, 1.0}}})) CHECK(e == Approx(0.0).margin(1e-15));
}
