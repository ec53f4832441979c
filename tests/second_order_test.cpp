// SPDX-License-Identifier: MIT
// Hessian-vector products and Hessians by forward-over-reverse: every scalar op and every
// tensor op with a curvature rule against central differences of the gradient, hand
// formulas, the seed network's Hessian in w (an outer product), a tanh/sigmoid MLP, the
// grads hvp leaves and its Errors.
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

// hvp of the scalar graph f at `leaves` along a random direction equals the central
// difference of its gradient.
void check_hvp(const Graph& f, const std::vector<Leaf>& leaves, unsigned seed = 1) {
  std::mt19937 rng(seed);
  const auto direction = random_direction(rng, leaves);
  Tape tape;
  const std::vector<TensorVar> vars = record_leaves(tape, leaves);
  const TensorVar loss = f(tape, vars);
  const std::vector<double> product = hvp(tape, loss, vars, concatenated(direction));
  const std::vector<double> numeric = gradient_difference(f, leaves, direction);
  check_each_close(product, numeric, "parameter element", 1e-5, 1e-6);
}

// A loss around a scalar op z: sin(z) + z·z·a, so both the op's own curvature and the
// grad-tangent passed through it count.
Graph around_scalar(const std::function<Var(const Var&, const Var&)>& op) {
  return [op](Tape&, std::span<const TensorVar> l) {
    const Var z = op(l[0][0], l[1][0]);
    const Var loss = sin(z) + z * z * l[0][0];
    return TensorVar(loss, Shape{});
  };
}
// The same around a tensor op: the sum of sin(z) + z² over its elements.
Graph around_tensor(const std::function<TensorVar(std::span<const TensorVar>)>& op) {
  return [op](Tape&, std::span<const TensorVar> l) {
    const TensorVar z = op(l);
    return ops::sum(ops::sin(z) + z * z);
  };
}

}  // namespace

TEST_CASE("hvp of a scalar function is the hand Hessian times v", "[second_order]") {
  Tape tape;
  const Var x = tape.param(0.7, "x"), y = tape.param(-1.3, "y");
  const Var f = x * x * y + exp(x * y);  // H = [[2y + y² e, 2x + e + xy e], [., x² e]], e = e^{xy}
  const double e = std::exp(0.7 * -1.3);
  const double hxx = 2 * -1.3 + 1.69 * e, hxy = 2 * 0.7 + e + 0.7 * -1.3 * e, hyy = 0.49 * e;
  const std::vector<TensorVar> params{TensorVar(x, Shape{}), TensorVar(y, Shape{})};
  const std::vector<double> v{0.3, -2.0};
  const std::vector<double> hv = hvp(tape, f, params, v);
  CHECK(hv[0] == Approx(hxx * 0.3 + hxy * -2.0));
  CHECK(hv[1] == Approx(hxy * 0.3 + hyy * -2.0));
  const std::vector<double> h = hessian(tape, f, params);
  REQUIRE(h.size() == 4);
  CHECK(h[0] == Approx(hxx));
  CHECK(h[1] == Approx(hxy));
  CHECK(h[2] == Approx(hxy));
  CHECK(h[3] == Approx(hyy));
}

TEST_CASE("hvp of every binary scalar op matches differences of the gradient", "[second_order]") {
  for (const auto& entry : binary_scalar_ops()) {
    const std::string& name = entry.first;
    const auto& op = entry.second;
    INFO(name);
    check_hvp(around_scalar(op), {scalar(1.3), scalar(0.6)});
  }
}

TEST_CASE("hvp of every unary scalar op, constant forms and table functions matches differences of the gradient",
          "[second_order]") {
  for (const double x : {0.8, -0.7}) {
    for (const auto& entry : unary_scalar_ops()) {
      const std::string& name = entry.first;
      const auto& op = entry.second;
      if (name.starts_with("a^") && x < 0) continue;
      INFO(name << " at " << x);
      check_hvp(around_scalar([&op](const Var& a, const Var&) { return op(a); }), {scalar(x), scalar(0.4)});
    }
    for (const FunctionInfo& f : functions) {
      if ((f.name == "log" || f.name == "sqrt") && x < 0) continue;
      INFO(f.name << " at " << x);
      check_hvp(around_scalar([&f](const Var& a, const Var&) { return apply_function(f.id, a, 0.3); }),
                {scalar(x), scalar(0.4)});
    }
  }
}

TEST_CASE("hvp through the elementwise tensor ops matches differences of the gradient", "[second_order]") {
  std::mt19937 rng(7);
  const Leaf a{uniform(rng, 6, 0.5, 1.5), Shape{2, 3}}, row{uniform(rng, 3, 0.5, 1.5), Shape{3}};
  const std::vector<std::pair<std::string, std::function<TensorVar(std::span<const TensorVar>)>>> ops{
      {"add", [](std::span<const TensorVar> l) { return l[0] + l[1]; }},
      {"sub", [](std::span<const TensorVar> l) { return l[0] - l[1]; }},
      {"mul", [](std::span<const TensorVar> l) { return l[0] * l[1]; }},
      {"div", [](std::span<const TensorVar> l) { return l[0] / l[1]; }},
      {"max", [](std::span<const TensorVar> l) { return ops::max(l[0], l[1]); }},
      {"min", [](std::span<const TensorVar> l) { return ops::min(l[0], l[1]); }},
      {"constant left", [](std::span<const TensorVar> l) { return 2.0 / l[0] + l[1]; }},
      {"constant right", [](std::span<const TensorVar> l) { return l[0] * 0.5 - l[1]; }},
      {"neg", [](std::span<const TensorVar> l) { return -l[0] * l[1]; }},
      {"pow", [](std::span<const TensorVar> l) { return ops::pow(l[0], 2.5) + l[1]; }},
  };
  for (const auto& entry : ops) {
    const std::string& name = entry.first;
    const auto& op = entry.second;
    INFO(name);
    check_hvp(around_tensor(op), {a, row});
  }
  for (const FunctionInfo& f : functions) {
    INFO(f.name);
    const Leaf x{uniform(rng, 6, -1.5, 1.5), Shape{2, 3}};
    const bool positive_only = f.name == "log" || f.name == "sqrt";
    check_hvp(around_tensor([&f](std::span<const TensorVar> l) { return ops::apply_function(f.id, l[0], 0.3); }),
              {positive_only ? a : x});
  }
}

TEST_CASE("hvp through matmul, dense, reductions, views and transpose matches differences of the gradient",
          "[second_order]") {
  std::mt19937 rng(3);
  const Leaf a{uniform(rng, 6, -1, 1), Shape{2, 3}}, b{uniform(rng, 12, -1, 1), Shape{3, 4}};
  check_hvp(around_tensor([](std::span<const TensorVar> l) { return ops::matmul(l[0], l[1]); }), {a, b});
  const Leaf batch_a{uniform(rng, 12, -1, 1), Shape{2, 2, 3}}, batch_b{uniform(rng, 24, -1, 1), Shape{2, 3, 4}};
  check_hvp(around_tensor([](std::span<const TensorVar> l) { return ops::matmul(l[0], l[1]); }), {batch_a, batch_b});
  check_hvp(around_tensor([](std::span<const TensorVar> l) { return ops::matmul(l[0], l[1]); }), {a, batch_b});
  const Leaf x{uniform(rng, 6, -1, 1), Shape{2, 3}}, w{uniform(rng, 12, -1, 1), Shape{4, 3}},
      bias{uniform(rng, 4, -1, 1), Shape{4}};
  check_hvp(around_tensor([](std::span<const TensorVar> l) { return ops::dense(l[0], l[1], l[2]); }), {x, w, bias});
  check_hvp(around_tensor([](std::span<const TensorVar> l) { return ops::mean(l[0] * l[0], 1); }), {x});
  check_hvp(around_tensor([](std::span<const TensorVar> l) { return ops::sum(l[0], 0, ops::KeepDim::yes); }), {x});
  check_hvp(around_tensor([](std::span<const TensorVar> l) {
              return ops::transpose(ops::reshape(l[0], Shape{3, 2})) * ops::flatten(l[0]).reshape(Shape{2, 3});
            }),
            {x});
}

TEST_CASE("hvp through softmax, log_softmax and the losses matches differences of the gradient", "[second_order]") {
  std::mt19937 rng(5);
  const Leaf x{uniform(rng, 8, -2, 2), Shape{2, 4}}, t{uniform(rng, 8, -1, 1), Shape{2, 4}};
  check_hvp(around_tensor([](std::span<const TensorVar> l) { return ops::softmax(l[0]); }), {x});
  check_hvp(around_tensor([](std::span<const TensorVar> l) { return ops::log_softmax(l[0]); }), {x});
  const auto loss = [](const std::function<TensorVar(std::span<const TensorVar>)>& op) {
    return Graph([op](Tape&, std::span<const TensorVar> l) { return op(l); });
  };
  check_hvp(loss([](std::span<const TensorVar> l) { return ops::mse(ops::tanh(l[0]), l[1]); }), {x, t});
  check_hvp(loss([](std::span<const TensorVar> l) { return ops::half_squared_error(l[0] * l[1], l[1]); }), {x, t});
  check_hvp(loss([](std::span<const TensorVar> l) { return ops::half_squared_error(ops::exp(l[0]), 0.25); }), {x});
  const std::vector<int> labels{1, 3};
  check_hvp(loss([&labels](std::span<const TensorVar> l) { return ops::softmax_cross_entropy(l[0] * l[0], labels); }),
            {x});
}

TEST_CASE("hvp through conv2d, conv2d_mac and the pools matches differences of the gradient", "[second_order]") {
  std::mt19937 rng(11);
  const Leaf image{uniform(rng, 2 * 2 * 5 * 5, -1, 1), Shape{2, 2, 5, 5}},
      filter{uniform(rng, 3 * 2 * 3 * 3, -1, 1), Shape{3, 2, 3, 3}}, bias{uniform(rng, 3, -1, 1), Shape{3}};
  for (const ops::Conv2dOptions o : {ops::Conv2dOptions{1, 0}, ops::Conv2dOptions{2, 1}}) {
    INFO("stride " << o.stride << " padding " << o.padding);
    check_hvp(around_tensor([o](std::span<const TensorVar> l) { return ops::conv2d(l[0], l[1], l[2], o); }),
              {image, filter, bias});
    check_hvp(around_tensor([o](std::span<const TensorVar> l) { return ops::conv2d_mac(l[0], l[1], l[2], o); }),
              {image, filter, bias});
  }
  check_hvp(around_tensor([](std::span<const TensorVar> l) { return ops::max_pool2d(ops::tanh(l[0])); }), {image});
  check_hvp(around_tensor([](std::span<const TensorVar> l) {
              return ops::avg_pool2d(l[0] * l[0], {3, 2, 1});
            }),
            {image});
}

// The seed note's network: 5x5 image a, 3x3 filter w at stride 2 -> z1..z4, y = v·z + b,
// L = (y − t)²/2. L is quadratic in w through y alone: ∂²L/∂w_i∂w_j = u_i u_j with
// u_i = ∂y/∂w_i = Σ_k v_k a_{k,i}, an outer product of rank one.
TEST_CASE("the seed network's Hessian in w is the outer product of dy/dw", "[second_order][seed]") {
  std::mt19937 rng(GENERATE(1u, 2u, 3u));
  const std::vector<double> image = uniform(rng, 25, -1, 1), filter = uniform(rng, 9, -1, 1),
                            dense = uniform(rng, 4, -1, 1);
  const auto under_tap = [](int k, int i) { return (2 * (k / 2) + i / 3) * 5 + 2 * (k % 2) + i % 3; };
  for (const bool fused : {false, true}) {
    INFO((fused ? "conv2d" : "scalar products and sums"));
    Tape tape;
    const TensorVar a = tape.input(image, Shape{5, 5}, "a");
    const TensorVar w = tape.param(filter, Shape{3, 3}, "w");
    const TensorVar v = tape.param(dense, Shape{4}, "v");
    const Var b = tape.param(0.3, "b"), t = tape.input(-0.2, "t");
    TensorVar z;
    if (fused) {
      z = ops::flatten(ops::conv2d(a.reshape(Shape{1, 1, 5, 5}), w.reshape(Shape{1, 1, 3, 3}), {2, 0}));
    } else {
      std::vector<Var> zs;
      for (int k = 0; k < 4; ++k) {
        std::vector<Var> products;
        for (int i = 0; i < 9; ++i) products.push_back(w[i] * a[under_tap(k, i)]);
        zs.push_back(sum(products));
      }
      z = stack(zs, Shape{4});
    }
    const Var y = sum({v[0] * z[0], v[1] * z[1], v[2] * z[2], v[3] * z[3], b});
    const Var L = pow(y - t, 2.0) * 0.5;
    const std::vector<TensorVar> params{w};
    const std::vector<double> h = hessian(tape, L, params);
    double u[9];
    for (int i = 0; i < 9; ++i) {
      u[i] = 0;
      for (int k = 0; k < 4; ++k) u[i] += dense[k] * image[under_tap(k, i)];
    }
    for (int i = 0; i < 9; ++i)
      for (int j = 0; j < 9; ++j) {
        INFO("d2L/dw" << i + 1 << " dw" << j + 1);
        CHECK(h[i * 9 + j] == Approx(u[i] * u[j]).epsilon(1e-12).margin(1e-14));
      }
  }
}

TEST_CASE("the Hessian of a tanh/sigmoid MLP matches differences of its gradient", "[second_order]") {
  std::mt19937 rng(13);
  const std::vector<Leaf> leaves{{uniform(rng, 6, -1, 1), Shape{2, 3}},  // W1
                                 {uniform(rng, 2, -1, 1), Shape{2}},     // b1
                                 {uniform(rng, 2, -1, 1), Shape{1, 2}},  // W2
                                 {uniform(rng, 1, -1, 1), Shape{1}}};    // b2
  const std::vector<double> input = uniform(rng, 3, -1, 1);
  const Graph mlp = [&input](Tape& tape, std::span<const TensorVar> l) {
    const TensorVar x = tape.input(input, Shape{3});
    const TensorVar h = ops::tanh(ops::dense(x, l[0], l[1]));
    return ops::half_squared_error(ops::sigmoid(ops::dense(h, l[2], l[3])), 0.7);
  };
  Tape tape;
  const std::vector<TensorVar> vars = record_leaves(tape, leaves);
  const std::vector<double> h = hessian(tape, mlp(tape, vars), vars);
  const std::size_t n = 11;
  REQUIRE(h.size() == n * n);
  for (std::size_t j = 0; j < n; ++j) {
    std::vector<std::vector<double>> unit{std::vector<double>(6), std::vector<double>(2), std::vector<double>(2),
                                          std::vector<double>(1)};
    std::size_t rest = j, part = 0;
    while (rest >= unit[part].size()) rest -= unit[part++].size();
    unit[part][rest] = 1.0;
    const std::vector<double> column = gradient_difference(mlp, leaves, unit);
    for (std::size_t i = 0; i < n; ++i) {
      INFO("H(" << i << ", " << j << ")");
      CHECK(h[i * n + j] == Approx(column[i]).epsilon(1e-5).margin(1e-7));
      CHECK(h[i * n + j] == Approx(h[j * n + i]).epsilon(1e-12).margin(1e-14));
    }
  }
}

TEST_CASE("hvp leaves the grads of the first-order backward", "[second_order]") {
  Tape tape;
  const std::vector<double> values{0.3, -0.8, 1.1};
  const TensorVar x = tape.param(values, Shape{3}, "x");
  const TensorVar loss = ops::sum(ops::tanh(x * x));
  tape.backward(loss);
  const std::vector<double> grads(x.grads().begin(), x.grads().end());
  const std::vector<TensorVar> params{x};
  const std::vector<double> v{1.0, 2.0, 3.0};
  hvp(tape, loss, params, v);
  CHECK(std::vector<double>(x.grads().begin(), x.grads().end()) == grads);
}

// An op recorded with a tangent rule but no curvature rule.
void flat_backward(Tape&, const TensorRecord&) {}
void flat_tangent(const Tape&, const TensorRecord& r, std::span<double> tangents) {
  std::fill_n(tangents.begin() + r.output, r.shape.size(), 0.0);
}
constexpr TensorOpInfo uncurved_info{"uncurved", &flat_backward, nullptr, nullptr, &flat_tangent};

TEST_CASE("hvp and hessian raise Errors naming the op, the sizes and the limit", "[second_order]") {
  Tape tape;
  const std::vector<double> values{1.0, 2.0};
  const TensorVar x = tape.param(values, Shape{2}, "x");
  const TensorArg arg = x.arg();
  const TensorVar u = ops::detail::record(tape, uncurved_info, x.shape(), std::span(&arg, 1), "u");
  const std::vector<TensorVar> params{x};
  const std::vector<double> v{1.0, 1.0};
  CHECK_THROWS_WITH(hvp(tape, ops::sum(u), params, v),
                    Catch::Contains("'uncurved'") && Catch::Contains("no curvature rule"));

  Tape other;
  const TensorVar y = other.param(values, Shape{2}, "y");
  const std::vector<TensorVar> y_params{y};
  const TensorVar loss = ops::sum(ops::exp(y));
  CHECK_THROWS_WITH(hvp(other, loss, y_params, std::vector<double>{1.0}), Catch::Contains("1 direction values for 2"));
  CHECK_THROWS_WITH(hvp(other, ops::exp(y), y_params, v), Catch::Contains("must be one float64 value"));

  const std::vector<double> many(max_hessian_size + 1, 0.5);
  const TensorVar big = other.param(many, Shape{many.size()});
  const std::vector<TensorVar> big_params{big};
  CHECK_THROWS_WITH(hessian(other, ops::sum(big), big_params), Catch::Contains("max_hessian_size"));
}

TEST_CASE("Hessians of the losses and of mul and div are their hand formulas", "[second_order]") {
  // softmax cross-entropy of one row in its logits: diag(s) − s sᵀ.
  Tape tape;
  const std::vector<double> logits{0.2, -1.0, 0.7};
  const TensorVar x = tape.param(logits, Shape{3}, "x");
  const std::vector<int> label{2};
  const TensorVar ce = ops::softmax_cross_entropy(x, label);
  const std::vector<TensorVar> params{x};
  const std::vector<double> h = hessian(tape, ce, params);
  double total = 0.0;
  for (double l : logits) total += std::exp(l);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 3; ++j) {
      const double si = std::exp(logits[i]) / total, sj = std::exp(logits[j]) / total;
      CHECK(h[i * 3 + j] == Approx((i == j ? si : 0.0) - si * sj));
    }
  // mse of n values: 2/n I.
  const TensorVar m = ops::mse(x, 0.5);
  const std::vector<double> hm = hessian(tape, m, params);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 3; ++j) CHECK(hm[i * 3 + j] == Approx(i == j ? 2.0 / 3.0 : 0.0).margin(1e-15));
  // a·b: [[0, 1], [1, 0]]; a/b: [[0, −1/b²], [−1/b², 2a/b³]].
  const Var a = tape.param(1.5, "a"), b = tape.param(-0.8, "b");
  const std::vector<TensorVar> ab{TensorVar(a, Shape{}), TensorVar(b, Shape{})};
  CHECK(hessian(tape, a * b, ab) == std::vector<double>{0.0, 1.0, 1.0, 0.0});
  const std::vector<double> hd = hessian(tape, a / b, ab);
  CHECK(hd[0] == 0.0);
  CHECK(hd[1] == Approx(-1.0 / 0.64));
  CHECK(hd[2] == Approx(-1.0 / 0.64));
  CHECK(hd[3] == Approx(2 * 1.5 / (-0.8 * 0.64)));
}

TEST_CASE("reset drops the constants of the nodes it drops", "[second_order]") {
  Tape tape;
  const Var x = tape.param(0.5, "x");
  const std::vector<TensorVar> params{TensorVar(x, Shape{})};
  const std::vector<double> v{1.0};
  CHECK(hvp(tape, pow(x, 3.0), params, v)[0] == Approx(6 * 0.5));  // d²x³ = 6x
  tape.reset();
  // The same node id now holds 2 / x: a constant left from x³ would make it x / c (no curvature).
  CHECK(hvp(tape, 2.0 / x, params, v)[0] == Approx(4 / (0.5 * 0.5 * 0.5)));  // d²(2/x) = 4/x³
}
