// SPDX-License-Identifier: MIT
// float32 tensors: every fused op's values and grads against the same network in double,
// the optimisers, reset(), the dtype errors, and the graph view of a float32 tape.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <sstream>
#include <vector>

#include "autodiff/tensor.hpp"
#include "check_gradients.hpp"
#include "graph/graph.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/optim.hpp"
#include "ops/pool.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;
using gradpath::test::random_values;

namespace {

std::vector<double> values_of(const TensorVar& t) {
  if (t.dtype() == DType::f64) return {t.values().begin(), t.values().end()};
  return {t.values_f32().begin(), t.values_f32().end()};
}
std::vector<double> grads_of(const TensorVar& t) {
  if (t.dtype() == DType::f64) return {t.grads().begin(), t.grads().end()};
  return {t.grads_f32().begin(), t.grads_f32().end()};
}

// Every element of `got` is within `rel` of `want`, relative to the largest |want|
// (float32 rounding is relative to the magnitudes summed, not to each small result).
void check_near(const std::vector<double>& got, const std::vector<double>& want, double rel, const std::string& what) {
  REQUIRE(got.size() == want.size());
  double scale = 1e-6;
  for (double w : want) scale = std::max(scale, std::abs(w));
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO(what << "[" << i << "]: float32 " << got[i] << ", float64 " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= rel * scale);
  }
}

// A leaf of the network: its shape and values (shared by both runs).
struct Leaf {
  Shape shape;
  std::vector<double> values;
};
Leaf leaf(const Shape& shape, std::uint32_t seed, double lo = -1.0, double hi = 1.0) {
  return {shape, random_values(shape.size(), seed, lo, hi)};
}

// Builds a loss from the leaves on a tape, in one dtype.
using Network = std::function<TensorVar(const std::vector<TensorVar>&)>;

struct Run {
  double loss;
  std::vector<std::vector<double>> grads;
};
Run run(const Network& net, const std::vector<Leaf>& leaves, DType dtype) {
  Tape tape;
  std::vector<TensorVar> vars;
  for (const Leaf& l : leaves) vars.push_back(tape.param(l.values, l.shape, {}, dtype));
  const TensorVar loss = net(vars);
  REQUIRE(loss.dtype() == dtype);
  backward(loss);
  Run r{loss.item(), {}};
  for (const TensorVar& v : vars) r.grads.push_back(grads_of(v));
  return r;
}

// The loss and every leaf's grads in float32 against float64.
void check_against_double(const Network& net, const std::vector<Leaf>& leaves, double rel = 1e-4) {
  const Run f64 = run(net, leaves, DType::f64), f32 = run(net, leaves, DType::f32);
  INFO("loss: float32 " << f32.loss << ", float64 " << f64.loss);
  CHECK(std::abs(f32.loss - f64.loss) <= rel * std::max(1.0, std::abs(f64.loss)));
  for (std::size_t i = 0; i < leaves.size(); ++i)
    check_near(f32.grads[i], f64.grads[i], rel, "grad of leaf " + std::to_string(i));
}

// A scalar reading every element of `out` with its own weight (the last leaf), so every
// output element's grad is exercised.
TensorVar weighted(const TensorVar& out, const TensorVar& weights) { return ops::sum(ops::mul(out, weights)); }

}  // namespace

TEST_CASE("float32 elementwise arithmetic with broadcasting matches double", "[float32]") {
  using BinaryOp = TensorVar (*)(const ops::Operand&, const ops::Operand&, std::string_view);
  const BinaryOp op = GENERATE(&ops::add, &ops::sub, &ops::mul, &ops::div);
  check_against_double([&](const auto& v) { return weighted(op(v[0], v[1], {}), v[2]); },
                       {leaf({2, 3}, 1), leaf({3}, 2, 0.5, 1.5), leaf({2, 3}, 3)});
  check_against_double([&](const auto& v) { return weighted(op(v[0], v[1], {}), v[2]); },
                       {leaf({2, 1}, 4), leaf({1, 4}, 5, 0.5, 1.5), leaf({2, 4}, 6)});
  // A constant operand takes the tensor's dtype.
  check_against_double([&](const auto& v) { return weighted(op(v[0], 1.5, {}), v[1]); }, {leaf({3}, 7), leaf({3}, 8)});
  check_against_double([&](const auto& v) { return weighted(op(0.5, v[0], {}), v[1]); },
                       {leaf({3}, 9, 0.5, 1.5), leaf({3}, 10)});
}

TEST_CASE("float32 elementwise functions match double", "[float32]") {
  using UnaryOp = TensorVar (*)(const TensorVar&, std::string_view);
  const UnaryOp op =
      GENERATE(&ops::exp, &ops::log, &ops::sqrt, &ops::tanh, &ops::sigmoid, &ops::relu, &ops::abs, &ops::neg);
  // Positive inputs for log and sqrt; the others see both signs.
  const bool positive = op == &ops::log || op == &ops::sqrt;
  check_against_double([&](const auto& v) { return weighted(op(v[0], {}), v[1]); },
                       {leaf({2, 5}, 11, positive ? 0.5 : -2.0, 2.0), leaf({2, 5}, 12)});
  check_against_double([&](const auto& v) { return weighted(ops::pow(v[0], 2.5), v[1]); },
                       {leaf({4}, 13, 0.5, 2.0), leaf({4}, 14)});
}

TEST_CASE("float32 matmul, dense, reductions and views match double", "[float32]") {
  SECTION("matmul, 2-D and batched") {
    check_against_double([](const auto& v) { return weighted(ops::matmul(v[0], v[1]), v[2]); },
                         {leaf({3, 4}, 21), leaf({4, 5}, 22), leaf({3, 5}, 23)});
    check_against_double([](const auto& v) { return weighted(ops::matmul(v[0], v[1]), v[2]); },
                         {leaf({2, 3, 4}, 24), leaf({2, 4, 5}, 25), leaf({2, 3, 5}, 26)});
  }
  SECTION("dense with bias") {
    check_against_double([](const auto& v) { return weighted(ops::dense(v[0], v[1], v[2]), v[3]); },
                         {leaf({4, 6}, 27), leaf({3, 6}, 28), leaf({3}, 29), leaf({4, 3}, 30)});
  }
  SECTION("sum and mean, over everything and over one axis") {
    check_against_double([](const auto& v) { return ops::mean(v[0]); }, {leaf({3, 4}, 31)});
    check_against_double([](const auto& v) { return weighted(ops::sum(v[0], 1), v[1]); },
                         {leaf({2, 3, 4}, 32), leaf({2, 4}, 33)});
    check_against_double([](const auto& v) { return weighted(ops::mean(v[0], 0, ops::KeepDim::yes), v[1]); },
                         {leaf({3, 4}, 34), leaf({1, 4}, 35)});
  }
  SECTION("reshape, flatten, transpose") {
    check_against_double(
        [](const auto& v) {
          return weighted(ops::transpose(ops::reshape(v[0], Shape{4, 3})), ops::flatten(v[1], 1));
        },
        {leaf({2, 6}, 36), leaf({3, 2, 2}, 37)});
    check_against_double([](const auto& v) { return weighted(ops::transpose(v[0], 0, 2), v[1]); },
                         {leaf({2, 3, 4}, 38), leaf({4, 3, 2}, 39)});
  }
}

TEST_CASE("float32 conv2d and pooling match double", "[float32]") {
  SECTION("conv2d with bias, stride and padding") {
    check_against_double(
        [](const auto& v) { return weighted(ops::conv2d(v[0], v[1], v[2], {.stride = 2, .padding = 1}), v[3]); },
        {leaf({2, 3, 7, 6}, 41), leaf({4, 3, 3, 3}, 42), leaf({4}, 43), leaf({2, 4, 4, 3}, 44)});
  }
  SECTION("max_pool2d and avg_pool2d, with padding") {
    check_against_double([](const auto& v) { return weighted(ops::max_pool2d(v[0]), v[1]); },
                         {leaf({2, 3, 6, 4}, 45), leaf({2, 3, 3, 2}, 46)});
    check_against_double(
        [](const auto& v) { return weighted(ops::max_pool2d(v[0], {.kernel = 3, .stride = 2, .padding = 1}), v[1]); },
        {leaf({1, 2, 5, 5}, 47), leaf({1, 2, 3, 3}, 48)});
    check_against_double(
        [](const auto& v) { return weighted(ops::avg_pool2d(v[0], {.kernel = 2, .stride = 1, .padding = 1}), v[1]); },
        {leaf({4, 4}, 49), leaf({5, 5}, 50)});
  }
}

TEST_CASE("float32 softmax and losses match double", "[float32]") {
  check_against_double([](const auto& v) { return weighted(ops::softmax(v[0]), v[1]); },
                       {leaf({3, 5}, 51, -3.0, 3.0), leaf({3, 5}, 52)});
  check_against_double([](const auto& v) { return weighted(ops::log_softmax(v[0]), v[1]); },
                       {leaf({3, 5}, 53, -3.0, 3.0), leaf({3, 5}, 54)});
  const std::vector<int> labels{0, 4, 2};
  check_against_double([&](const auto& v) { return ops::softmax_cross_entropy(v[0], labels); },
                       {leaf({3, 5}, 55, -3.0, 3.0)});
  check_against_double([](const auto& v) { return ops::mse(v[0], v[1]); }, {leaf({2, 3}, 56), leaf({3}, 57)});
  check_against_double([](const auto& v) { return ops::half_squared_error(v[0], 0.25); }, {leaf({4}, 58)});
}

TEST_CASE("cast converts values forward and grads back", "[float32]") {
  // f64 leaves through a float32 stretch and back: the grads reach the f64 leaves.
  Tape tape;
  const std::vector<double> xs{0.5, -1.25, 2.0};
  const TensorVar x = tape.input(xs, Shape{3}, "x");
  const TensorVar x32 = ops::cast(x, DType::f32);
  REQUIRE(x32.dtype() == DType::f32);
  CHECK(x32.values_f32()[1] == -1.25f);
  CHECK(&ops::cast(x32, DType::f32).tape() == &tape);
  const TensorVar y = ops::cast(ops::mul(x32, x32), DType::f64);  // x^2, back in double
  backward(ops::sum(y));
  CHECK_THAT(x.grads()[0], Catch::Matchers::WithinRel(2 * 0.5, 1e-6));
  CHECK_THAT(x.grads()[1], Catch::Matchers::WithinRel(2 * -1.25, 1e-6));
  CHECK_THAT(x.grads()[2], Catch::Matchers::WithinRel(2 * 2.0, 1e-6));
}

TEST_CASE("float32 small CNN matches double", "[float32]") {
  // conv -> relu -> max_pool -> flatten -> dense -> softmax_cross_entropy, as in fashion_mnist.
  const std::vector<int> labels{3, 0, 7, 9};
  const Shape conv_w{4, 1, 3, 3}, dense_w{10, 4 * 4 * 4};
  const std::vector<Leaf> leaves{leaf({4, 1, 8, 8}, 61),
                                 {conv_w, ops::he_normal(conv_w, 62)},
                                 leaf({4}, 63, -0.1, 0.1),
                                 {dense_w, ops::he_normal(dense_w, 64)},
                                 leaf({10}, 65, -0.1, 0.1)};
  check_against_double(
      [&](const auto& v) {
        const TensorVar h = ops::relu(ops::conv2d(v[0], v[1], v[2], {.stride = 1, .padding = 1}));
        return ops::softmax_cross_entropy(ops::dense(ops::flatten(ops::max_pool2d(h), 1), v[3], v[4]), labels);
      },
      leaves);
}

TEST_CASE("float32 parameters: he_normal and xavier_uniform give the double draws rounded", "[float32]") {
  const Shape s{3, 2, 3, 3};
  const std::vector<double> d = ops::he_normal(s, 7);
  const std::vector<float> f = ops::he_normal<float>(s, 7);
  REQUIRE(f.size() == d.size());
  for (std::size_t i = 0; i < d.size(); ++i) CHECK(f[i] == static_cast<float>(d[i]));
  const std::vector<double> xd = ops::xavier_uniform(s, 8);
  const std::vector<float> xf = ops::xavier_uniform<float>(s, 8);
  for (std::size_t i = 0; i < xd.size(); ++i) CHECK(xf[i] == static_cast<float>(xd[i]));
  Tape tape;
  const TensorVar w = tape.param(f, s, "w");
  CHECK(w.dtype() == DType::f32);
  CHECK(tape.node_count() == 1);  // one leaf tensor node, not one node per element
}

TEST_CASE("float32 optimiser steps match double", "[float32]") {
  // Two steps of each optimiser on loss = mse(x W^T + b, t), from the same start.
  const Leaf x = leaf({5, 4}, 71), t = leaf({5, 3}, 72), w = leaf({3, 4}, 73), b = leaf({3}, 74);
  enum class Kind { sgd_step, momentum, adam };
  const Kind kind = GENERATE(Kind::sgd_step, Kind::momentum, Kind::adam);
  auto train = [&](DType dtype) {
    Tape tape;
    const TensorVar pw = tape.param(w.values, w.shape, "w", dtype), pb = tape.param(b.values, b.shape, "b", dtype);
    ops::Sgd sgd({pw, pb}, {.lr = 0.1, .momentum = 0.9});
    ops::Adam adam({pw, pb}, {.lr = 0.05});
    for (int step = 0; step < 2; ++step) {
      tape.reset();
      const TensorVar xi = tape.input(x.values, x.shape, "x", dtype), ti = tape.input(t.values, t.shape, "t", dtype);
      backward(ops::mse(ops::dense(xi, pw, pb), ti));
      if (kind == Kind::sgd_step) {
        ops::sgd_step(pw, 0.1);
        ops::sgd_step(pb, 0.1);
      } else if (kind == Kind::momentum) {
        sgd.step();
      } else {
        adam.step();
      }
    }
    return std::pair{values_of(pw), values_of(pb)};
  };
  const auto [w64, b64] = train(DType::f64);
  const auto [w32, b32] = train(DType::f32);
  check_near(w32, w64, 1e-5, "w");
  check_near(b32, b64, 1e-5, "b");
  // The step moved the parameters.
  CHECK(w64 != w.values);
}

TEST_CASE("reset keeps float32 parameters and the float arena's capacity", "[float32]") {
  Tape tape;
  const Leaf wl = leaf({3, 4}, 81);
  const TensorVar w = tape.param(wl.values, wl.shape, "w", DType::f32);
  const std::vector<double> before = values_of(w);
  auto step = [&] {
    tape.reset();
    const TensorVar x = tape.input(random_values(8, 82), Shape{2, 4}, "x", DType::f32);
    const TensorVar loss = ops::sum(ops::relu(ops::matmul(x, ops::transpose(w))));
    backward(loss);
    return loss.item();
  };
  const double first = step();
  const TapeMemory after_one = tape.memory();
  const std::vector<double> grads = grads_of(w);
  for (int i = 0; i < 3; ++i) CHECK(step() == first);
  CHECK(values_of(w) == before);
  CHECK(grads_of(w) == grads);
  CHECK(tape.memory().values.reserved == after_one.values.reserved);
  CHECK(tape.memory().values.used == after_one.values.used);
  tape.reset();
  CHECK(tape.values_f32().size() == wl.values.size());  // only the parameter is left
  ops::Sgd sgd({w});
  CHECK_THROWS_WITH(sgd.step(), Catch::Contains("backward() has not run"));
}

TEST_CASE("mixing dtypes without a cast is an Error naming the op and both dtypes", "[float32][errors]") {
  Tape tape;
  const TensorVar a = tape.input(random_values(6, 91), Shape{2, 3}, "a", DType::f32);
  const TensorVar b = tape.input(random_values(3, 92), Shape{3}, "b");
  const TensorVar w = tape.param(random_values(12, 93), Shape{4, 3}, "w");
  CHECK_THROWS_WITH(ops::add(a, b),
                    "add: operands of different dtypes, float32 [2, 3] and float64 [3]; convert one "
                    "with ops::cast");
  CHECK_THROWS_WITH(ops::matmul(b.reshape(Shape{1, 3}), ops::transpose(a)),
                    Catch::Contains("matmul: operands of different dtypes, float64 [1, 3] and float32 [3, 2]"));
  CHECK_THROWS_WITH(ops::dense(a, w),
                    Catch::Contains("dense: operands of different dtypes, float32 [2, 3] and float64"));
  CHECK_THROWS_WITH(ops::mul(a, tape.input(2.0)), Catch::Contains("mul: operands of different dtypes"));
  CHECK_THROWS_WITH(ops::mse(a, b),
                    Catch::Contains("mse: operands of different dtypes, float32 [2, 3] and float64 [3]"));
  CHECK_NOTHROW(ops::add(a, ops::cast(b, DType::f32)));
}

TEST_CASE("float32 tensors refuse double access with a message that says what to do", "[float32][errors]") {
  Tape tape;
  const TensorVar a = tape.input(std::vector<float>{1.0f, 2.0f, 3.0f}, Shape{3}, "a");
  CHECK_THROWS_WITH(a[0], Catch::Contains("is float32") && Catch::Contains("ops::cast(t, DType::f64)"));
  CHECK_THROWS_WITH(a.values(), "values: the tensor [3] is float32; read it with values_f32()");
  CHECK_THROWS_WITH(tape.input(std::vector<double>{1.0}, Shape{1}).values_f32(),
                    "values_f32: the tensor [1] is float64; read it with values()");
  CHECK_THROWS_WITH(tape.set_value(a.first(), 1.0), Catch::Contains("is a float32 leaf tensor"));
  const TensorVar s = ops::sum(a);
  CHECK_THROWS_WITH(tape.backward(s.first()), Catch::Contains("float32 tensor node; pass the TensorVar"));
  CHECK_THROWS_WITH(backward(a), Catch::Contains("backward: the root must hold one value, got a tensor of shape [3]"));
  CHECK_THROWS_WITH(a.grads_f32(), Catch::Contains("backward() has not run"));
  tape.backward(s);
  CHECK(s.item() == 6.0);
  CHECK(a.grads_f32()[2] == 1.0f);
  CHECK_THROWS_WITH(tape.tensor_partials(s.first().node(), 0), Catch::Contains("check gradients in double"));
}

TEST_CASE("anomaly mode finds a NaN in float32 values", "[float32][errors]") {
  Tape tape;
  tape.set_anomaly_detection(true);
  const TensorVar a = tape.input(std::vector<float>{1.0f, -1.0f}, Shape{2}, "a");
  const TensorVar l = ops::log(a, "l");
  CHECK_THROWS_WITH(backward(ops::sum(l)), Catch::Contains("log") && Catch::Contains("at element [1]"));
}

TEST_CASE("the graph view and DOT of a float32 network", "[float32][graph]") {
  Tape tape;
  const TensorVar x = tape.input(random_values(2 * 1 * 4 * 4, 101), Shape{2, 1, 4, 4}, "x", DType::f32);
  const TensorVar w = tape.param(ops::he_normal<float>(Shape{2, 1, 3, 3}, 102), Shape{2, 1, 3, 3}, "w");
  const TensorVar v = tape.param(ops::he_normal<float>(Shape{3, 8}, 103), Shape{3, 8}, "v");
  const TensorVar h = ops::max_pool2d(ops::relu(ops::conv2d(x, w, {.padding = 1}, "conv")), {}, "pool");
  const std::vector<int> labels{0, 2};
  const TensorVar loss = ops::softmax_cross_entropy(ops::dense(ops::flatten(h, 1), v), labels, "L");
  backward(loss);
  const graph::TapeGraph g = graph::view(tape);
  const NodeId l = graph::node_named(g, "L");
  CHECK(g[l].dtype == DType::f32);
  CHECK(g[l].value == Approx(loss.item()));
  CHECK(boost::in_degree(graph::node_named(g, "conv"), g) == 2);  // x and w
  CHECK(g[graph::node_named(g, "w")].op_name == "param");
  std::ostringstream dot;
  graph::write_dot(dot, g);
  CHECK_THAT(dot.str(), Catch::Contains("float32 tensor[2, 2, 4, 4]"));
}

// The kinked functions' and max-pool's kernels are branch-free selects (functions.hpp's
// positive_step, pool.cpp's window_argmax): the same rules at the kink in both types.
namespace {
std::vector<double> grads_as_double(const TensorVar& x) {
  if (x.dtype() == DType::f32) {
    const auto g = x.grads_f32();
    return {g.begin(), g.end()};
  }
  const auto g = x.grads();
  return {g.begin(), g.end()};
}
}  // namespace

TEST_CASE("kinked functions take the x <= 0 side at 0 (and -0) in float32 and float64", "[float32][ops]") {
  const DType dtype = GENERATE(DType::f32, DType::f64);
  Tape tape;
  const TensorVar x = tape.input(std::vector<double>{0.0, -0.0, 2.0, -2.0, 1e-30, -1e-30}, Shape{6}, "x", dtype);
  SECTION("relu") {
    tape.backward(ops::sum(ops::relu(x)));
    CHECK(grads_as_double(x) == std::vector<double>{0, 0, 1, 0, 1, 0});
  }
  SECTION("abs") {
    tape.backward(ops::sum(ops::abs(x)));
    CHECK(grads_as_double(x) == std::vector<double>{0, 0, 1, -1, 1, -1});
  }
  SECTION("leaky_relu takes the x <= 0 side at 0: the slope") {
    tape.backward(ops::sum(ops::leaky_relu(x, 0.25)));
    CHECK(grads_as_double(x) == std::vector<double>{0.25, 0.25, 1, 0.25, 1, 0.25});
  }
  SECTION("elu takes the x <= 0 side at 0: alpha") {
    tape.backward(ops::sum(ops::elu(x, 0.5)));
    CHECK(grads_as_double(x)[0] == 0.5);
    CHECK(grads_as_double(x)[1] == 0.5);
    CHECK(grads_as_double(x)[2] == 1.0);
  }
}

TEST_CASE("max_pool2d ties send the grad to the first largest cell in float32 and float64", "[float32][pool]") {
  const DType dtype = GENERATE(DType::f32, DType::f64);
  Tape tape;
  // Windows (kernel 2): [1 3; 3 0] ties at (0,1) and (1,0); [7 7; 2 7] three 7s; [0 0; 0 0]
  // all zero, as after a relu that is off.
  const TensorVar x = tape.input(std::vector<double>{1, 3, 7, 7, 0, 0, 3, 0, 2, 7, 0, 0}, Shape{2, 6}, "x", dtype);
  tape.backward(ops::sum(ops::max_pool2d(x, {.kernel = 2})));
  CHECK(grads_as_double(x) == std::vector<double>{0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0});
}
