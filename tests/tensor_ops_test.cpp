// SPDX-License-Identifier: MIT
// Tensor ops: broadcasting arithmetic, elementwise functions, matmul, reductions, views.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "autodiff/tensor.hpp"
#include "check_gradients.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;
using gradpath::test::check_gradients;
using gradpath::test::random_values;
using gradpath::test::weighted_sum;

namespace {

using BinaryOp = TensorVar (*)(const ops::Operand&, const ops::Operand&, std::string_view);

// Gradients of op(a, b) for tensors of shapes sa and sb; b's values lie in [0.5, 1.5]
// so that div stays away from its pole.
void check_binary(BinaryOp op, const Shape& sa, const Shape& sb, const Shape& expected, std::uint32_t seed) {
  std::vector<double> point = random_values(sa.size(), seed);
  const std::vector<double> bv = random_values(sb.size(), seed + 1, 0.5, 1.5);
  point.insert(point.end(), bv.begin(), bv.end());
  const std::vector<double> weights = random_values(expected.size(), seed + 2);
  check_gradients(
      [&](Tape&, std::span<const Var> leaves) {
        const TensorVar a = stack(leaves.subspan(0, sa.size()), sa);
        const TensorVar b = stack(leaves.subspan(sa.size()), sb);
        const TensorVar out = op(a, b, {});
        CHECK(out.shape() == expected);
        return weighted_sum(out, weights);
      },
      point);
}

}  // namespace

TEST_CASE("add sub mul div: gradients with broadcasting", "[ops][tensor]") {
  struct Case {
    Shape a, b, out;
  };
  const Case c = GENERATE(Case{{2, 3}, {2, 3}, {2, 3}}, Case{{2, 3}, {3}, {2, 3}}, Case{{3}, {2, 3}, {2, 3}},
                          Case{{2, 1}, {1, 4}, {2, 4}}, Case{{}, {2, 3}, {2, 3}}, Case{{2, 3}, {}, {2, 3}},
                          Case{{2, 1, 3}, {4, 1}, {2, 4, 3}}, Case{{1}, {}, {1}});
  const auto seed = static_cast<std::uint32_t>(c.a.size() * 31 + c.b.size() * 7 + c.out.rank());
  INFO("shapes " << c.a.str() << " and " << c.b.str());
  SECTION("add") { check_binary(&ops::add, c.a, c.b, c.out, seed); }
  SECTION("sub") { check_binary(&ops::sub, c.a, c.b, c.out, seed); }
  SECTION("mul") { check_binary(&ops::mul, c.a, c.b, c.out, seed); }
  SECTION("div") { check_binary(&ops::div, c.a, c.b, c.out, seed); }
}

TEST_CASE("broadcast values match plain loops", "[ops][tensor]") {
  Tape tape;
  const std::vector<double> av = random_values(6, 1), bv = random_values(3, 2), cv = random_values(4, 3);
  const TensorVar a = tape.input(av, Shape{2, 3}, "a");
  SECTION("(2,3) + (3)") {
    const TensorVar b = tape.input(bv, Shape{3}, "b");
    const TensorVar out = a + b;
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 3; ++j) CHECK(out.at({i, j}).value() == av[i * 3 + j] + bv[j]);
    // d sum(out * w) / d b_j = sum_i w_ij: the grad summed over the broadcast axis
    const std::vector<double> w = random_values(6, 4);
    tape.backward(weighted_sum(out, w));
    for (std::size_t j = 0; j < 3; ++j) CHECK(b[j].grad() == Approx(w[j] + w[3 + j]));
  }
  SECTION("(2,1) * (1,4)") {
    const TensorVar col = tape.input(std::vector<double>{av[0], av[1]}, Shape{2, 1}, "c");
    const TensorVar row = tape.input(cv, Shape{1, 4}, "r");
    const TensorVar out = col * row;
    REQUIRE(out.shape() == Shape{2, 4});
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 4; ++j) CHECK(out.at({i, j}).value() == av[i] * cv[j]);
  }
  SECTION("a scalar Var and constants on either side") {
    const Var s = tape.input(1.5, "s");
    const TensorVar out = (2.0 - a) / s * 3.0 + s;
    for (std::size_t i = 0; i < 6; ++i) CHECK(out[i].value() == Approx((2.0 - av[i]) / 1.5 * 3.0 + 1.5));
    // d/ds sum((2 - a_i) * 3 / s + s) = sum(-(2 - a_i) * 3 / s^2) + 6
    tape.backward(gradpath::sum(out.elements()));
    double expected = 6.0;
    for (double x : av) expected -= (2.0 - x) * 3.0 / (1.5 * 1.5);
    CHECK(s.grad() == Approx(expected));
    CHECK(a[0].grad() == Approx(-3.0 / 1.5));
  }
}

TEST_CASE("operators mix tensors, scalar Vars and constants", "[ops][tensor]") {
  check_gradients(
      [](Tape&, std::span<const Var> v) {
        const TensorVar x = stack(v.subspan(0, 6), Shape{2, 3});
        const TensorVar w = stack(v.subspan(6, 3), Shape{3});
        const Var s = v[9];
        const TensorVar out = -((1.0 - x) * w / s + s * x - w / 2.0) + 4.0 / (w + 3.0);
        return weighted_sum(out, random_values(6, 9));
      },
      random_values(10, 5, 0.5, 1.5));
}

TEST_CASE("elementwise functions: gradients and values", "[ops][tensor]") {
  using UnaryOp = TensorVar (*)(const TensorVar&, std::string_view);
  struct Case {
    const char* name;
    UnaryOp op;
    double (*reference)(double);
    double lo, hi;
  };
  const Case c =
      GENERATE(Case{"exp", &ops::exp, [](double x) { return std::exp(x); }, -2.0, 2.0},
               Case{"log", &ops::log, [](double x) { return std::log(x); }, 0.2, 3.0},
               Case{"sqrt", &ops::sqrt, [](double x) { return std::sqrt(x); }, 0.2, 3.0},
               Case{"tanh", &ops::tanh, [](double x) { return std::tanh(x); }, -2.0, 2.0},
               Case{"sigmoid", &ops::sigmoid, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, -3.0, 3.0},
               Case{"relu", &ops::relu, [](double x) { return x > 0 ? x : 0.0; }, -1.0, 1.0},
               Case{"abs", &ops::abs, [](double x) { return std::fabs(x); }, -1.0, 1.0},
               Case{"neg", &ops::neg, [](double x) { return -x; }, -1.0, 1.0});
  const Shape shape = GENERATE(Shape{5}, Shape{2, 3}, Shape{2, 1, 3});
  INFO(c.name << " on " << shape.str());
  const std::vector<double> point = random_values(shape.size(), static_cast<std::uint32_t>(shape.size()), c.lo, c.hi);
  const std::vector<double> weights = random_values(shape.size(), 17);
  check_gradients([&](Tape&, std::span<const Var> v) { return weighted_sum(c.op(stack(v, shape), {}), weights); },
                  point);
  Tape tape;
  const TensorVar out = c.op(tape.input(point, shape, "x"), {});
  REQUIRE(out.shape() == shape);
  for (std::size_t i = 0; i < shape.size(); ++i) CHECK(out[i].value() == Approx(c.reference(point[i])));
}

TEST_CASE("pow with a constant exponent", "[ops][tensor]") {
  const double p = GENERATE(3.0, 0.5, -1.5, 0.0);
  const std::vector<double> point = random_values(6, 3, 0.3, 2.0);
  check_gradients(
      [&](Tape&, std::span<const Var> v) {
        return weighted_sum(ops::pow(stack(v, Shape{2, 3}), p), random_values(6, 4));
      },
      point);
  Tape tape;
  const TensorVar x = tape.input(point, Shape{2, 3});
  const TensorVar out = ops::pow(x, p);
  tape.backward(gradpath::sum(out.elements()));
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(out[i].value() == Approx(std::pow(point[i], p)));
    CHECK(x[i].grad() == Approx(p * std::pow(point[i], p - 1.0)).margin(1e-12));
  }
}

TEST_CASE("relu'(0) and abs'(0) are 0", "[ops][tensor]") {
  Tape tape;
  const TensorVar x = tape.input(std::vector<double>{0.0, 2.0, -2.0}, Shape{3});
  const TensorVar r = ops::relu(x), a = ops::abs(x);
  tape.backward(gradpath::sum({r[0], r[1], r[2], a[0], a[1], a[2]}));
  CHECK(x[0].grad() == 0.0);   // relu'(0) + abs'(0)
  CHECK(x[1].grad() == 2.0);   // 1 + 1
  CHECK(x[2].grad() == -1.0);  // 0 - 1
}

TEST_CASE("matmul: values against a triple loop, gradients by finite differences", "[ops][tensor][matmul]") {
  struct Case {
    Shape a, b, out;
  };
  const Case c = GENERATE(Case{{2, 3}, {3, 4}, {2, 4}}, Case{{1, 5}, {5, 1}, {1, 1}},
                          Case{{2, 3, 4}, {2, 4, 5}, {2, 3, 5}}, Case{{3, 2, 4}, {4, 3}, {3, 2, 3}},
                          Case{{3, 4}, {2, 4, 5}, {2, 3, 5}});  // the last shares a, as PyTorch broadcasts
  INFO(c.a.str() << " x " << c.b.str());
  const std::vector<double> av = random_values(c.a.size(), 11), bv = random_values(c.b.size(), 12);
  Tape tape;
  const TensorVar out = ops::matmul(tape.input(av, c.a), tape.input(bv, c.b), "c");
  REQUIRE(out.shape() == c.out);
  const bool batched_a = c.a.rank() == 3, batched_b = c.b.rank() == 3;
  const std::size_t batch = c.out.rank() == 3 ? c.out[0] : 1, m = c.a[c.a.rank() - 2], k = c.a[c.a.rank() - 1],
                    n = c.b[c.b.rank() - 1];
  for (std::size_t s = 0; s < batch; ++s) {
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        double expected = 0;
        for (std::size_t p = 0; p < k; ++p) {
          expected += av[(batched_a ? s * m * k : 0) + i * k + p] * bv[(batched_b ? s * k * n : 0) + p * n + j];
        }
        CHECK(out[(s * m + i) * n + j].value() == Approx(expected));
      }
    }
  }
  CHECK(tape.name(out[0].node()) == "c");
  std::vector<double> point = av;
  point.insert(point.end(), bv.begin(), bv.end());
  const std::vector<double> weights = random_values(c.out.size(), 13);
  check_gradients(
      [&](Tape&, std::span<const Var> v) {
        const Var out =
            weighted_sum(ops::matmul(stack(v.subspan(0, c.a.size()), c.a), stack(v.subspan(c.a.size()), c.b)), weights);
        // A later use of every operand: its grad is already set when matmul's rule adds to it.
        return out + gradpath::sum(v) * 0.5;
      },
      point);
}

TEST_CASE("matmul of a tensor with itself accumulates both grads", "[ops][tensor][matmul]") {
  // L = sum(X X) + sum(X) for X 2x2: dL/dX = 1 X^T + X^T 1 + 1,
  // i.e. dL/dx_ij = sum_k x_jk + sum_k x_ki + 1
  Tape tape;
  const std::vector<double> xv = {1.0, 2.0, 3.0, 4.0};
  const TensorVar x = tape.input(xv, Shape{2, 2});
  const TensorVar xx = ops::matmul(x, x);
  backward(ops::add(ops::sum(xx), ops::sum(x)));
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t j = 0; j < 2; ++j) {
      const double expected = xv[j * 2] + xv[j * 2 + 1] + xv[i] + xv[2 + i] + 1.0;
      CHECK(x.at({i, j}).grad() == Approx(expected));
    }
  }
}

TEST_CASE("sum and mean: over everything and along an axis", "[ops][tensor]") {
  const std::vector<double> xv = random_values(24, 21);
  const Shape shape{2, 3, 4};
  Tape tape;
  const TensorVar x = tape.input(xv, shape, "x");
  SECTION("all elements -> rank 0") {
    const TensorVar s = ops::sum(x, "s"), m = ops::mean(x);
    double total = 0;
    for (double v : xv) total += v;
    CHECK(s.rank() == 0);
    CHECK(s[0].value() == Approx(total));
    CHECK(s[0].name() == "s");
    CHECK(m[0].value() == Approx(total / 24));
    backward(m);
    for (std::size_t i = 0; i < 24; ++i) CHECK(x[i].grad() == Approx(1.0 / 24));
  }
  SECTION("along an axis, with and without keepdim") {
    const int axis = GENERATE(0, 1, 2, -1);
    const std::size_t ax = axis < 0 ? 2 : static_cast<std::size_t>(axis);
    const TensorVar s = ops::sum(x, axis), m = ops::mean(x, axis, ops::KeepDim::yes);
    CHECK(s.rank() == 2);
    CHECK(m.rank() == 3);
    CHECK(m.shape()[ax] == 1);
    CHECK(s.size() == 24 / shape[ax]);
    // Plain loop: out index is the input index with axis `ax` dropped.
    std::vector<double> expected(s.size(), 0.0);
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 3; ++j)
        for (std::size_t k = 0; k < 4; ++k) {
          const std::size_t idx[3] = {i, j, k};
          std::size_t flat = 0;
          for (std::size_t d = 0; d < 3; ++d)
            if (d != ax) flat = flat * shape[d] + idx[d];
          expected[flat] += xv[(i * 3 + j) * 4 + k];
        }
    for (std::size_t i = 0; i < s.size(); ++i) {
      CHECK(s[i].value() == Approx(expected[i]));
      CHECK(m[i].value() == Approx(expected[i] / static_cast<double>(shape[ax])));
    }
  }
  SECTION("gradients") {
    const int axis = GENERATE(0, 1, -1);
    const std::vector<double> weights = random_values(24, 22);
    check_gradients(
        [&](Tape&, std::span<const Var> v) {
          const TensorVar t = stack(v, shape);
          return weighted_sum(ops::sum(t, axis), weights) + weighted_sum(ops::mean(t, axis), weights) * 2.0;
        },
        xv);
  }
}

TEST_CASE("reshape and flatten are views", "[ops][tensor]") {
  Tape tape;
  const TensorVar x = tape.input(random_values(24, 31), Shape{2, 3, 2, 2}, "x");
  const std::size_t nodes = tape.node_count();
  const TensorVar r = ops::reshape(x, Shape{6, 4});
  const TensorVar f = ops::flatten(x);
  const TensorVar batch = ops::flatten(x, 1);
  CHECK(r.shape() == Shape{6, 4});
  CHECK(f.shape() == Shape{24});
  CHECK(batch.shape() == Shape{2, 12});
  CHECK(ops::flatten(x, 3).shape() == Shape{2, 3, 2, 2});
  CHECK((r.offset() == x.offset() && f.offset() == x.offset() && batch.offset() == x.offset()));
  CHECK(tape.node_count() == nodes);
}

TEST_CASE("transpose: values and gradients", "[ops][tensor]") {
  const std::vector<double> xv = random_values(24, 41);
  SECTION("2-D") {
    Tape tape;
    const TensorVar t = ops::transpose(tape.input(std::span(xv).first(6), Shape{2, 3}));
    REQUIRE(t.shape() == Shape{3, 2});
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 3; ++j) CHECK(t.at({j, i}).value() == xv[i * 3 + j]);
  }
  SECTION("swap two axes of a 3-D tensor") {
    Tape tape;
    const TensorVar t = ops::transpose(tape.input(xv, Shape{2, 3, 4}), 0, -1);
    REQUIRE(t.shape() == Shape{4, 3, 2});
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 3; ++j)
        for (std::size_t k = 0; k < 4; ++k) CHECK(t.at({k, j, i}).value() == xv[(i * 3 + j) * 4 + k]);
  }
  SECTION("gradients") {
    const std::vector<double> weights = random_values(24, 42);
    check_gradients(
        [&](Tape&, std::span<const Var> v) {
          return weighted_sum(ops::transpose(stack(v, Shape{2, 3, 4}), 1, 2), weights);
        },
        xv);
  }
}

TEST_CASE("output names number the elements", "[ops][tensor]") {
  Tape tape;
  const TensorVar x = tape.input(random_values(4, 51), Shape{2, 2}, "x");
  const TensorVar e = ops::exp(x, "e");
  CHECK(e[0].name() == "e1");
  CHECK(e[3].name() == "e4");
  CHECK(ops::add(x, 1.0, "y")[1].name() == "y2");
}

TEST_CASE("tensor op errors name the op and the shapes", "[ops][tensor][errors]") {
  Tape tape;
  const TensorVar a = tape.input(random_values(6, 61), Shape{2, 3});
  const TensorVar b = tape.input(random_values(4, 62), Shape{4});
  const TensorVar c = tape.input(random_values(20, 63), Shape{4, 5});
  const TensorVar d = tape.input(random_values(24, 64), Shape{2, 3, 4});
  const TensorVar e = tape.input(random_values(60, 65), Shape{3, 4, 5});
  CHECK_THROWS_WITH(a + b, Catch::Contains("add: shapes [2, 3] and [4] do not broadcast"));
  CHECK_THROWS_WITH(ops::mul(b, a), Catch::Contains("mul: shapes [4] and [2, 3] do not broadcast"));
  CHECK_THROWS_WITH(ops::add(1.0, 2.0), Catch::Contains("add: both operands are constants"));
  CHECK_THROWS_WITH(ops::matmul(a, c), Catch::Contains("matmul: inner dimensions differ: [2, 3] x [4, 5]"));
  CHECK_THROWS_WITH(ops::matmul(d, e), Catch::Contains("matmul: batch sizes differ: [2, 3, 4] x [3, 4, 5]"));
  CHECK_THROWS_WITH(ops::matmul(b, c), Catch::Contains("matmul: expects"));
  CHECK_THROWS_WITH(ops::matmul(b, c), Catch::Contains("got [4] x [4, 5]"));
  CHECK_THROWS_WITH(ops::sum(d, 3), Catch::Contains("sum: axis 3 is out of range for shape [2, 3, 4]"));
  CHECK_THROWS_WITH(ops::mean(d, -4), Catch::Contains("mean: axis -4 is out of range for shape [2, 3, 4]"));
  CHECK_THROWS_WITH(ops::transpose(d), Catch::Contains("transpose: expects a 2-D tensor, got shape [2, 3, 4]"));
  CHECK_THROWS_WITH(ops::transpose(a, 0, 2), Catch::Contains("transpose: axis 2 is out of range for shape [2, 3]"));
  CHECK_THROWS_WITH(ops::reshape(a, Shape{4}),
                    Catch::Contains("reshape: cannot view shape [2, 3] (6 elements) as [4] (4 elements)"));
  CHECK_THROWS_WITH(ops::flatten(a, 2), Catch::Contains("flatten: start axis 2 is out of range for shape [2, 3]"));
  CHECK_THROWS_WITH(backward(a),
                    Catch::Contains("backward: the root must hold one value, got a tensor of shape [2, 3]"));
  Tape other;
  const TensorVar f = other.input(random_values(6, 66), Shape{2, 3});
  CHECK_THROWS_WITH(a * f, Catch::Contains("mul: operands are on different tapes"));
  CHECK_THROWS_WITH(ops::exp(TensorVar{}), Catch::Contains("exp: the Var is empty"));
}

TEST_CASE("a tensor recorded before reset() is refused", "[ops][tensor][errors]") {
  Tape tape;
  const TensorVar x = tape.input(random_values(3, 71), Shape{3});
  tape.reset();
  CHECK_THROWS_WITH(ops::tanh(x), Catch::Contains("tanh: the Var (slot 0) was recorded before Tape::reset()"));
}
