// SPDX-License-Identifier: MIT
// Tape::constant: a leaf no grad is wanted for. Every tensor op skips its grad (and that of
// a tensor computed from constants alone), so its grads read as zeros while every other
// grad is bitwise the one an input gives; the partials the graph view reads are unchanged.
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "autodiff/tensor.hpp"
#include "check_gradients.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/pool.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;
using gradpath::test::random_values;

namespace {

// An op of x (2, 3, 4, 4) and a parameter w of the same shape, ending in a scalar loss.
using Loss = std::function<TensorVar(const TensorVar& x, const TensorVar& w)>;

struct NamedLoss {
  std::string name;
  Loss loss;
};

std::vector<NamedLoss> losses() {
  const auto square = [](const TensorVar& t) { return ops::sum(t * t); };
  return {
      {"add", [=](const TensorVar& x, const TensorVar& w) { return square(x + w); }},
      {"mul", [=](const TensorVar& x, const TensorVar& w) { return square(x * w); }},
      {"div", [=](const TensorVar& x, const TensorVar& w) { return square(w / (x * x + 1.0)); }},
      {"max", [=](const TensorVar& x, const TensorVar& w) { return square(ops::max(x, w)); }},
      {"relu", [=](const TensorVar& x, const TensorVar& w) { return square(ops::relu(x) * w); }},
      {"matmul",
       [=](const TensorVar& x, const TensorVar& w) {
         return square(ops::matmul(ops::reshape(x, Shape{6, 4, 4}), ops::reshape(w, Shape{6, 4, 4})));
       }},
      {"sum axis", [=](const TensorVar& x, const TensorVar& w) { return square(ops::sum(x, 1) * ops::sum(w, 1)); }},
      {"transpose", [=](const TensorVar& x, const TensorVar& w) { return square(ops::transpose(x, 2, 3) * w); }},
      {"max_pool2d",
       [=](const TensorVar& x, const TensorVar& w) { return square(ops::max_pool2d(x) * ops::max_pool2d(w)); }},
      {"avg_pool2d",
       [=](const TensorVar& x, const TensorVar& w) { return square(ops::avg_pool2d(x) * ops::avg_pool2d(w)); }},
      {"softmax", [=](const TensorVar& x, const TensorVar& w) { return square(ops::softmax(x) * w); }},
      {"mse", [=](const TensorVar& x, const TensorVar& w) { return ops::mse(w, x); }},
      {"dense", [=](const TensorVar& x,
                    const TensorVar& w) { return square(ops::dense(ops::flatten(x, 1), ops::flatten(w, 1))); }},
      {"conv2d",
       [=](const TensorVar& x, const TensorVar& w) {
         const TensorVar filter = ops::reshape(w, Shape{4, 3, 4, 2});
         return square(ops::conv2d(x, filter, {.stride = 1, .padding = 1}));
       }},
      {"conv2d of cast",
       [=](const TensorVar& x, const TensorVar& w) {
         const TensorVar filter = ops::reshape(w, Shape{4, 3, 4, 2});
         return ops::cast(square(ops::conv2d(ops::cast(x, DType::f32), ops::cast(filter, DType::f32))), DType::f64);
       }},
  };
}

const Shape shape{2, 3, 4, 4};

struct Grads {
  std::vector<double> x, w;
};

// The grads of x and w with x made by `leaf` (input or constant), in `dtype`.
template <typename Leaf>
Grads grads_with(const Loss& loss, DType dtype, Leaf leaf) {
  Tape tape;
  const std::vector<double> xv = random_values(shape.size(), 1), wv = random_values(shape.size(), 2);
  const TensorVar x = leaf(tape, xv, dtype), w = tape.param(wv, shape, "w", dtype);
  tape.backward(loss(x, w));
  if (dtype == DType::f32) {
    const auto gx = x.grads_f32(), gw = w.grads_f32();
    return {{gx.begin(), gx.end()}, {gw.begin(), gw.end()}};
  }
  const auto gx = x.grads(), gw = w.grads();
  return {{gx.begin(), gx.end()}, {gw.begin(), gw.end()}};
}

}  // namespace

TEST_CASE("Tape::constant: its grads read zero, every other grad is bitwise an input's", "[constant]") {
  for (const NamedLoss& op : losses()) {
    for (DType dtype : {DType::f64, DType::f32}) {
      if (op.name == "conv2d of cast" && dtype == DType::f32) continue;  // it casts itself
      INFO(op.name << " in " << dtype_name(dtype));
      const Grads input = grads_with(
          op.loss, dtype, [](Tape& t, const std::vector<double>& v, DType d) { return t.input(v, shape, "x", d); });
      const Grads constant = grads_with(
          op.loss, dtype, [](Tape& t, const std::vector<double>& v, DType d) { return t.constant(v, shape, "x", d); });
      CHECK(constant.w == input.w);  // bitwise: the same kernels ran for w
      CHECK(constant.x == std::vector<double>(shape.size(), 0.0));
      CHECK(input.x != constant.x);  // the input's grad was computed
    }
  }
}

TEST_CASE("Tape::constant: needs_grad propagates: a tensor of constants alone needs none", "[constant]") {
  Tape tape;
  const std::vector<float> values{1, -2, 3, -4};
  const TensorVar c = tape.constant(values, Shape{2, 2}, "c");
  const TensorVar w = tape.param(values, Shape{2, 2}, "w");
  const TensorVar from_constants = ops::relu(c) * 2.0;
  const TensorVar mixed = from_constants * w;
  CHECK_FALSE(c.needs_grad());
  CHECK_FALSE(from_constants.needs_grad());
  CHECK_FALSE(ops::flatten(from_constants).needs_grad());  // a view keeps it
  CHECK(w.needs_grad());
  CHECK(mixed.needs_grad());
  tape.backward(ops::sum(mixed));
  CHECK(w.grads_f32()[0] == 2.0f);  // relu(1) * 2
  CHECK(w.grads_f32()[1] == 0.0f);
  for (float g : from_constants.grads_f32()) CHECK(g == 0.0f);  // not computed: read as zeros
  for (float g : c.grads_f32()) CHECK(g == 0.0f);
}

TEST_CASE("Tape::constant: backward from constants alone is an Error", "[constant][errors]") {
  Tape tape;
  const TensorVar c = tape.constant(std::vector<double>{1, 2}, Shape{2}, "c");
  CHECK_THROWS_WITH(tape.backward(ops::sum(c * c)),
                    "backward: the root [] was computed from constants alone (Tape::constant); no grad flows to "
                    "anything");
  const TensorVar c32 = tape.constant(std::vector<float>{1, 2}, Shape{2}, "d");
  CHECK_THROWS_WITH(tape.backward(ops::sum(c32)),
                    "backward: the root [] was computed from constants alone (Tape::constant); no grad flows to "
                    "anything");
}

TEST_CASE("Tape::constant: the graph view's partials are the op's own", "[constant]") {
  // tensor_partials runs the rule as if every operand needed its grad: the edge into a
  // constant has its true partial, as the symbolic rule writes it.
  const auto partials = [](bool constant) {
    Tape tape;
    const std::vector<double> xv = random_values(2 * 1 * 4 * 4, 3), wv = random_values(2 * 1 * 3 * 3, 4);
    const TensorVar x = constant ? tape.constant(xv, Shape{2, 1, 4, 4}, "x") : tape.input(xv, Shape{2, 1, 4, 4}, "x");
    const TensorVar w = tape.param(wv, Shape{2, 1, 3, 3}, "w");
    const TensorVar y = ops::conv2d(x, w, {.padding = 1});
    std::vector<double> all;
    for (std::size_t e = 0; e < y.size(); ++e) {
      const std::vector<double> p = tape.tensor_partials(y.first().node(), e);
      all.insert(all.end(), p.begin(), p.end());
    }
    return all;
  };
  CHECK(partials(true) == partials(false));
}

TEST_CASE("Tape::constant: grads of the rest pass central differences", "[constant][gradcheck]") {
  // Only w varies; the image is a constant.
  const std::vector<double> image = random_values(1 * 2 * 5 * 5, 5);
  test::check_gradients(
      [&](Tape& tape, std::span<const Var> v) {
        const TensorVar x = tape.constant(image, Shape{1, 2, 5, 5}, "x");
        const TensorVar w = stack(v, Shape{2, 2, 3, 3});
        const TensorVar y = ops::max_pool2d(ops::relu(ops::conv2d(x, w, {.padding = 1})), {.kernel = 2});
        std::vector<Var> terms;
        for (std::size_t k = 0; k < y.size(); ++k) terms.push_back(y[k] * y[k] * (0.5 + double(k)));
        return sum(terms);
      },
      random_values(2 * 2 * 3 * 3, 6));
}
