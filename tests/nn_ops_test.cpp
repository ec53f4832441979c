// SPDX-License-Identifier: MIT
// Network ops: dense, softmax, log_softmax and the losses, against loops and finite differences.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "autodiff/tensor.hpp"
#include "check_gradients.hpp"
#include "ops/nn.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;
using gradpath::test::check_gradients;
using gradpath::test::random_values;
using gradpath::test::weighted_sum;

namespace {

std::vector<double> concat(std::initializer_list<std::vector<double>> parts) {
  std::vector<double> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

}  // namespace

TEST_CASE("dense: y = x W^T + b against a plain loop", "[ops][nn][dense]") {
  const std::size_t batch = GENERATE(0u, 1u, 3u);  // 0: x is 1-D
  const std::size_t in = 4, out = 3;
  const Shape sx = batch ? Shape{batch, in} : Shape{in};
  const std::size_t rows = batch ? batch : 1;
  const std::vector<double> xv = random_values(rows * in, 1), wv = random_values(out * in, 2),
                            bv = random_values(out, 3);
  Tape tape;
  const TensorVar y = ops::dense(tape.input(xv, sx), tape.param(wv, Shape{out, in}), tape.param(bv, Shape{out}), "y");
  CHECK(y.shape() == (batch ? Shape{batch, out} : Shape{out}));
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t o = 0; o < out; ++o) {
      double expected = bv[o];
      for (std::size_t k = 0; k < in; ++k) expected += xv[i * in + k] * wv[o * in + k];
      CHECK(y[i * out + o].value() == Approx(expected));
    }
  }
  CHECK(y[0].name() == "y1");
  SECTION("gradients, with and without bias") {
    const bool bias = GENERATE(true, false);
    const std::vector<double> weights = random_values(rows * out, 4);
    check_gradients(
        [&](Tape&, std::span<const Var> v) {
          const TensorVar x = stack(v.subspan(0, rows * in), sx);
          const TensorVar w = stack(v.subspan(rows * in, out * in), Shape{out, in});
          const TensorVar b = stack(v.subspan(rows * in + out * in), Shape{out});
          const Var out = weighted_sum(bias ? ops::dense(x, w, b) : ops::dense(x, w), weights);
          // A later use of every operand: dense's rule must add to grads already set.
          return out + gradpath::sum(v) * 0.5;
        },
        concat({xv, wv, bv}));
  }
}

TEST_CASE("dense with W of shape (in) and a scalar bias: one output", "[ops][nn][dense]") {
  const std::vector<double> xv = random_values(8, 5), wv = random_values(4, 6);
  Tape tape;
  const TensorVar w = tape.param(wv, Shape{4}, "v");
  const Var b = tape.param(0.25, "b");
  SECTION("x (in) -> rank 0") {
    const TensorVar y = ops::dense(tape.input(std::span(xv).first(4), Shape{4}), w, b, "y");
    CHECK(y.rank() == 0);
    CHECK(y[0].name() == "y");
    CHECK(y[0].value() == Approx(xv[0] * wv[0] + xv[1] * wv[1] + xv[2] * wv[2] + xv[3] * wv[3] + 0.25));
  }
  SECTION("x (batch, in) -> (batch); a bias of shape [1]") {
    const TensorVar b1 = tape.param(std::vector<double>{0.5}, Shape{1}, "c");
    const TensorVar y = ops::dense(tape.input(xv, Shape{2, 4}), w, b1);
    REQUIRE(y.shape() == Shape{2});
    for (std::size_t i = 0; i < 2; ++i) {
      double expected = 0.5;
      for (std::size_t k = 0; k < 4; ++k) expected += xv[i * 4 + k] * wv[k];
      CHECK(y[i].value() == Approx(expected));
    }
  }
  SECTION("gradients") {
    check_gradients(
        [](Tape&, std::span<const Var> v) {
          const TensorVar y = ops::dense(stack(v.subspan(0, 8), Shape{2, 4}), stack(v.subspan(8, 4), Shape{4}), v[12]);
          return y[0] * 0.7 - y[1] * 1.3;
        },
        concat({xv, wv, {0.25}}));
  }
}

TEST_CASE("the seed network: flatten -> dense -> half_squared_error", "[ops][nn][seed]") {
  // z is a 2x2 conv output; y = sum_k v_k z_k + b; L = (y - t)^2 / 2.
  const std::vector<double> zv = {0.3, -1.2, 0.8, 2.0}, vv = {0.5, -0.3, 0.2, 0.1};
  Tape tape;
  const TensorVar z = tape.input(zv, Shape{2, 2}, "z");
  const TensorVar v = tape.param(vv, Shape{4}, "v");
  const Var b = tape.param(0.1, "b");
  const Var t = tape.input(1.0, "t");
  const TensorVar y = ops::dense(ops::flatten(z), v, b, "y");
  const TensorVar L = ops::half_squared_error(y, t, "L");
  backward(L);
  double yv = 0.1;
  for (std::size_t k = 0; k < 4; ++k) yv += vv[k] * zv[k];
  CHECK(y[0].value() == Approx(yv));
  CHECK(L[0].value() == Approx((yv - 1.0) * (yv - 1.0) / 2));
  CHECK(L[0].name() == "L");
  CHECK(y[0].grad() == Approx(yv - 1.0));  // dL/dy = y - t
  CHECK(b.grad() == Approx(yv - 1.0));
  CHECK(t.grad() == Approx(1.0 - yv));
  for (std::size_t k = 0; k < 4; ++k) {
    CHECK(v[k].grad() == Approx((yv - 1.0) * zv[k]));  // dL/dv_k = (y - t) z_k
    CHECK(z[k].grad() == Approx((yv - 1.0) * vv[k]));  // dL/dz_k = (y - t) v_k
  }
}

TEST_CASE("dense: leading axes of x are batch axes, as in nn.Linear", "[ops][nn][dense]") {
  // x (2, 3, 4) with W (5, 4), b (5) -> (2, 3, 5); with W (4) -> (2, 3).
  const bool single = GENERATE(false, true);
  const std::size_t in = 4, out = single ? 1 : 5, rows = 6;
  const std::vector<double> xv = random_values(rows * in, 21), wv = random_values(out * in, 22),
                            bv = random_values(out, 23);
  const Shape sw = single ? Shape{in} : Shape{out, in};
  const Shape sb = single ? Shape{} : Shape{out};
  Tape tape;
  const TensorVar y = ops::dense(tape.input(xv, Shape{2, 3, in}), tape.param(wv, sw), tape.param(bv, sb));
  CHECK(y.shape() == (single ? Shape{2, 3} : Shape{2, 3, out}));
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t o = 0; o < out; ++o) {
      double expected = bv[o];
      for (std::size_t k = 0; k < in; ++k) expected += xv[i * in + k] * wv[o * in + k];
      CHECK(y[i * out + o].value() == Approx(expected).epsilon(1e-12));
    }
  }
  const std::vector<double> weights = random_values(rows * out, 24);
  check_gradients(
      [&](Tape&, std::span<const Var> v) {
        const TensorVar x = stack(v.subspan(0, rows * in), Shape{2, 3, in});
        const TensorVar w = stack(v.subspan(rows * in, out * in), sw);
        const TensorVar b = stack(v.subspan(rows * in + out * in), sb);
        return weighted_sum(ops::dense(x, w, b), weights);
      },
      concat({xv, wv, bv}));
}

TEST_CASE("dense errors name the op and the shapes", "[ops][nn][errors]") {
  Tape tape;
  const TensorVar x = tape.input(random_values(6, 7), Shape{2, 3});
  const TensorVar w = tape.param(random_values(8, 8), Shape{2, 4});
  const TensorVar w3 = tape.param(random_values(6, 9), Shape{2, 3});
  const TensorVar b = tape.param(random_values(3, 10), Shape{3});
  const TensorVar x3 = tape.input(random_values(12, 11), Shape{2, 3, 2});
  CHECK_THROWS_WITH(ops::dense(x, w, b), Catch::Contains("dense: input sizes differ: x [2, 3] and W [2, 4]"));
  CHECK_THROWS_WITH(ops::dense(x, w3, b), Catch::Contains("dense: bias [3] does not match the 2 outputs of W [2, 3]"));
  CHECK_THROWS_WITH(ops::dense(tape.input(std::vector<double>{1.0}, Shape{}), w3),
                    Catch::Contains("dense: x must be (in) or (..., in), got []"));
  CHECK_THROWS_WITH(ops::dense(x, x3), Catch::Contains("dense: W must be (out, in) or (in), got [2, 3, 2]"));
  Tape other;
  const Var c = other.param(1.0);
  CHECK_THROWS_WITH(ops::dense(x, w3, c), Catch::Contains("dense: operands are on different tapes"));
}

TEST_CASE("softmax and log_softmax along the last axis", "[ops][nn][softmax]") {
  const Shape shape = GENERATE(Shape{4}, Shape{2, 3}, Shape{2, 2, 3});
  const std::size_t cols = shape[shape.rank() - 1];
  const std::vector<double> xv = random_values(shape.size(), 12, -2.0, 2.0);
  Tape tape;
  const TensorVar x = tape.input(xv, shape);
  const TensorVar p = ops::softmax(x), lp = ops::log_softmax(x);
  for (std::size_t r = 0; r < shape.size() / cols; ++r) {
    double total = 0;
    for (std::size_t c = 0; c < cols; ++c) total += std::exp(xv[r * cols + c]);
    for (std::size_t c = 0; c < cols; ++c) {
      CHECK(p[r * cols + c].value() == Approx(std::exp(xv[r * cols + c]) / total));
      CHECK(lp[r * cols + c].value() == Approx(xv[r * cols + c] - std::log(total)));
    }
  }
  const std::vector<double> weights = random_values(shape.size(), 13);
  const bool log = GENERATE(false, true);
  check_gradients(
      [&](Tape&, std::span<const Var> v) {
        const TensorVar t = stack(v, shape);
        return weighted_sum(log ? ops::log_softmax(t) : ops::softmax(t), weights);
      },
      xv);
}

TEST_CASE("softmax of large logits stays finite", "[ops][nn][softmax]") {
  Tape tape;
  const TensorVar x = tape.input(std::vector<double>{1000.0, 1001.0, 999.0}, Shape{3});
  const TensorVar p = ops::softmax(x), lp = ops::log_softmax(x);
  const double total = std::exp(-1.0) + 1.0 + std::exp(-2.0);
  CHECK(p[1].value() == Approx(1.0 / total));
  CHECK(lp[0].value() == Approx(-1.0 - std::log(total)));
  backward(ops::sum(lp));  // d sum(log_softmax) / dx_j = 1 - C softmax_j
  for (std::size_t j = 0; j < 3; ++j) CHECK(x[j].grad() == Approx(1.0 - 3.0 * p[j].value()));
}

TEST_CASE("half_squared_error and mse: values and gradients", "[ops][nn][loss]") {
  const std::vector<double> yv = random_values(6, 14), tv = random_values(6, 15);
  SECTION("half_squared_error's grad is y - t") {
    Tape tape;
    const TensorVar y = tape.input(yv, Shape{2, 3}), t = tape.input(tv, Shape{2, 3});
    const TensorVar L = ops::half_squared_error(y, t);
    double expected = 0;
    for (std::size_t i = 0; i < 6; ++i) expected += (yv[i] - tv[i]) * (yv[i] - tv[i]) / 2;
    CHECK(L.rank() == 0);
    CHECK(L[0].value() == Approx(expected));
    backward(L);
    for (std::size_t i = 0; i < 6; ++i) {
      CHECK(y[i].grad() == Approx(yv[i] - tv[i]));
      CHECK(t[i].grad() == Approx(tv[i] - yv[i]));
    }
  }
  SECTION("mse is the mean") {
    Tape tape;
    const TensorVar y = tape.input(yv, Shape{6});
    const TensorVar L = ops::mse(y, 0.5);
    double expected = 0;
    for (double v : yv) expected += (v - 0.5) * (v - 0.5) / 6;
    CHECK(L[0].value() == Approx(expected));
    backward(L);
    for (std::size_t i = 0; i < 6; ++i) CHECK(y[i].grad() == Approx(2 * (yv[i] - 0.5) / 6));
  }
  SECTION("gradients with tensor, broadcast, scalar Var and constant targets") {
    const int target = GENERATE(0, 1, 2, 3);
    const bool mean = GENERATE(false, true);
    check_gradients(
        [&](Tape&, std::span<const Var> v) {
          const TensorVar y = stack(v.subspan(0, 6), Shape{2, 3});
          const auto loss = [&](const ops::Operand& t) {
            return mean ? ops::mse(y, t) : ops::half_squared_error(y, t);
          };
          switch (target) {
            case 0:
              return loss(stack(v.subspan(6, 6), Shape{2, 3}))[0];
            case 1:
              return loss(stack(v.subspan(6, 3), Shape{3}))[0];
            case 2:
              return loss(v[6])[0];
            default:
              return loss(0.3)[0];
          }
        },
        concat({yv, tv}));
  }
}

TEST_CASE("squared error targets must match the prediction", "[ops][nn][errors]") {
  Tape tape;
  const TensorVar y = tape.input(random_values(6, 16), Shape{2, 3});
  const TensorVar t = tape.input(random_values(4, 17), Shape{4});
  const TensorVar big = tape.input(random_values(12, 18), Shape{2, 2, 3});
  CHECK_THROWS_WITH(ops::half_squared_error(y, t), Catch::Contains("half_squared_error: shapes [2, 3] and [4]"));
  CHECK_THROWS_WITH(ops::mse(y, big),
                    Catch::Contains("mse: target shape [2, 2, 3] does not match prediction shape [2, 3]"));
}

TEST_CASE("softmax_cross_entropy: values and gradients", "[ops][nn][loss]") {
  const Shape shape = GENERATE(Shape{2, 3}, Shape{4, 5}, Shape{3});
  const std::size_t c = shape[shape.rank() - 1], n = shape.size() / c;
  std::vector<int> labels;
  for (std::size_t i = 0; i < n; ++i) labels.push_back(static_cast<int>((i * 2 + 1) % c));
  const std::vector<double> xv = random_values(shape.size(), 19, -2.0, 2.0);
  Tape tape;
  const TensorVar L = ops::softmax_cross_entropy(tape.input(xv, shape), labels, "L");
  double expected = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double total = 0;
    for (std::size_t j = 0; j < c; ++j) total += std::exp(xv[i * c + j]);
    expected += (std::log(total) - xv[i * c + labels[i]]) / static_cast<double>(n);
  }
  CHECK(L[0].value() == Approx(expected));
  CHECK(L[0].name() == "L");
  check_gradients([&](Tape&, std::span<const Var> v) { return ops::softmax_cross_entropy(stack(v, shape), labels)[0]; },
                  xv);
}

TEST_CASE("softmax_cross_entropy with logits around 1000 matches softmax - onehot", "[ops][nn][loss]") {
  const std::vector<double> xv = {1000.0, 1003.0, 998.5, 1001.0, -1000.0, 1000.5};
  const std::vector<int> labels = {2, 1};
  Tape tape;
  const TensorVar x = tape.input(xv, Shape{2, 3});
  const TensorVar L = ops::softmax_cross_entropy(x, labels);
  backward(L);
  long double expected_loss = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    long double total = 0;
    for (std::size_t j = 0; j < 3; ++j) total += std::exp(static_cast<long double>(xv[i * 3 + j] - xv[i * 3 + 1]));
    expected_loss += (std::log(total) - (xv[i * 3 + labels[i]] - xv[i * 3 + 1])) / 2;
    for (std::size_t j = 0; j < 3; ++j) {
      const long double p = std::exp(static_cast<long double>(xv[i * 3 + j] - xv[i * 3 + 1])) / total;
      const long double expected = (p - (static_cast<int>(j) == labels[i] ? 1.0L : 0.0L)) / 2;
      REQUIRE(std::isfinite(x[i * 3 + j].grad()));
      CHECK(x[i * 3 + j].grad() == Approx(static_cast<double>(expected)).margin(1e-15));
    }
  }
  REQUIRE(std::isfinite(L[0].value()));
  CHECK(L[0].value() == Approx(static_cast<double>(expected_loss)));
}

TEST_CASE("softmax_cross_entropy errors name the label, the class count and the op", "[ops][nn][errors]") {
  Tape tape;
  const TensorVar x = tape.input(random_values(6, 20), Shape{2, 3});
  const std::vector<int> bad = {0, 3}, negative = {-1, 0}, too_few = {1};
  CHECK_THROWS_WITH(
      ops::softmax_cross_entropy(x, bad),
      Catch::Contains("softmax_cross_entropy: label 3 (row 1) is out of range for 3 classes, logits [2, 3]"));
  CHECK_THROWS_WITH(ops::softmax_cross_entropy(x, negative), Catch::Contains("label -1 (row 0) is out of range"));
  CHECK_THROWS_WITH(ops::softmax_cross_entropy(x, too_few),
                    Catch::Contains("softmax_cross_entropy: 1 labels for logits [2, 3] (one per row)"));
  const TensorVar x3 = tape.input(random_values(8, 21), Shape{2, 2, 2});
  CHECK_THROWS_WITH(ops::softmax_cross_entropy(x3, too_few),
                    Catch::Contains("softmax_cross_entropy: logits must be (N, C) or (C), got [2, 2, 2]"));
}

TEST_CASE("softmax, log_softmax of a rank-0 tensor: one class, as in PyTorch", "[ops][nn]") {
  Tape tape;
  const Var s = tape.input(2.5);
  const TensorVar p = ops::softmax(TensorVar(s, Shape{})), lp = ops::log_softmax(TensorVar(s, Shape{}));
  CHECK(p.shape() == Shape{});
  CHECK(p[0].value() == 1.0);
  CHECK(lp[0].value() == 0.0);
  tape.backward(p[0] * 3.0 + lp[0] * 5.0 + s * 0.25);  // both constant in s: only the last term counts
  CHECK(s.grad() == Approx(0.25).margin(1e-15));
}
