// SPDX-License-Identifier: MIT
// Every scalar op: closed-form partials and central finite differences at several points.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "check_gradients.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;
using gradpath::test::check_gradients;

namespace {
// d op(x) / dx by one reverse sweep.
template <typename F>
double derivative(F f, double x) {
  Tape tape;
  Var v = tape.input(x);
  Var y = f(v);
  tape.backward(y);
  return v.grad();
}
}  // namespace

TEST_CASE("binary arithmetic between Vars matches finite differences", "[ops][scalar]") {
  const double x = GENERATE(-2.5, -0.3, 0.7, 3.0);
  const double y = GENERATE(-1.7, 0.4, 2.2);
  check_gradients([](Tape&, std::span<const Var> v) { return v[0] + v[1]; }, {x, y});
  check_gradients([](Tape&, std::span<const Var> v) { return v[0] - v[1]; }, {x, y});
  check_gradients([](Tape&, std::span<const Var> v) { return v[0] * v[1]; }, {x, y});
  check_gradients([](Tape&, std::span<const Var> v) { return v[0] / v[1]; }, {x, y});
  check_gradients([](Tape&, std::span<const Var> v) { return max(v[0], v[1]); }, {x, y});
  check_gradients([](Tape&, std::span<const Var> v) { return min(v[0], v[1]); }, {x, y});
}

TEST_CASE("arithmetic with doubles on either side", "[ops][scalar]") {
  const double x = GENERATE(-1.3, 0.6, 2.9);
  check_gradients([](Tape&, std::span<const Var> v) { return 3.0 + v[0] + 2.0; }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return 3.0 - v[0] - 2.0; }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return 3.0 * v[0] * -2.0; }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return 3.0 / v[0] / 2.0; }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return -v[0]; }, {x});
}

TEST_CASE("compound assignment records the same nodes as the binary ops", "[ops][scalar]") {
  check_gradients(
      [](Tape&, std::span<const Var> v) {
        Var acc = v[0];
        acc += v[1];
        acc *= v[0];
        acc -= 0.5;
        acc /= v[1];
        acc *= 3.0;
        acc += 1.0;
        acc -= v[0];
        acc /= 2.0;
        return acc;
      },
      {1.3, -0.8});
}

TEST_CASE("elementary functions match finite differences", "[ops][scalar]") {
  const double x = GENERATE(-1.9, -0.4, 0.3, 1.1, 2.7);
  check_gradients([](Tape&, std::span<const Var> v) { return exp(v[0]); }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return tanh(v[0]); }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return sigmoid(v[0]); }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return relu(v[0]); }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return abs(v[0]); }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return sin(v[0]); }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return cos(v[0]); }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return pow(v[0], 3.0); }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return pow(2.5, v[0]); }, {x});
}

TEST_CASE("log, sqrt and real powers on their domain", "[ops][scalar]") {
  const double x = GENERATE(0.2, 1.0, 4.5);
  const double y = GENERATE(-1.5, 0.5, 2.0);
  check_gradients([](Tape&, std::span<const Var> v) { return log(v[0]); }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return sqrt(v[0]); }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return pow(v[0], -0.7); }, {x});
  check_gradients([](Tape&, std::span<const Var> v) { return pow(v[0], v[1]); }, {x, y});
}

TEST_CASE("closed-form partials", "[ops][scalar]") {
  CHECK(derivative([](Var v) { return v * v; }, 3.0) == Approx(6.0));
  CHECK(derivative([](Var v) { return exp(v); }, 0.5) == Approx(std::exp(0.5)));
  CHECK(derivative([](Var v) { return log(v); }, 4.0) == Approx(0.25));
  CHECK(derivative([](Var v) { return sqrt(v); }, 4.0) == Approx(0.25));
  CHECK(derivative([](Var v) { return tanh(v); }, 0.0) == Approx(1.0));
  CHECK(derivative([](Var v) { return sigmoid(v); }, 0.0) == Approx(0.25));
  CHECK(derivative([](Var v) { return sin(v); }, 0.0) == Approx(1.0));
  CHECK(derivative([](Var v) { return cos(v); }, 0.0) == Approx(0.0).margin(1e-15));
  CHECK(derivative([](Var v) { return 1.0 / v; }, 2.0) == Approx(-0.25));
}

TEST_CASE("documented choices at kinks and outside the domain", "[ops][scalar]") {
  SECTION("relu'(0) = 0 and abs'(0) = 0") {
    CHECK(derivative([](Var v) { return relu(v); }, 0.0) == 0.0);
    CHECK(derivative([](Var v) { return abs(v); }, 0.0) == 0.0);
  }
  SECTION("max and min give a tie to the first operand") {
    Tape tape;
    Var a = tape.input(1.0), b = tape.input(1.0);
    tape.backward(max(a, b));
    CHECK(a.grad() == 1.0);
    CHECK(b.grad() == 0.0);
    tape.backward(min(b, a));
    CHECK(b.grad() == 1.0);
    CHECK(a.grad() == 0.0);
  }
  SECTION("log and sqrt of negatives are NaN, of zero infinite") {
    Tape tape;
    Var neg = tape.input(-1.0), zero = tape.input(0.0);
    CHECK(std::isnan(log(neg).value()));
    CHECK(std::isnan(sqrt(neg).value()));
    Var l0 = log(zero);
    CHECK(l0.value() == -std::numeric_limits<double>::infinity());
    tape.backward(l0);
    CHECK(zero.grad() == std::numeric_limits<double>::infinity());
  }
  SECTION("pow(0, y) has exponent partial 0; pow(x<0, y) has NaN exponent partial") {
    Tape tape;
    Var x = tape.input(0.0), y = tape.input(2.0);
    tape.backward(pow(x, y));
    CHECK(y.grad() == 0.0);
    Var xn = tape.input(-2.0), yn = tape.input(2.0);
    Var p = pow(xn, yn);
    CHECK(p.value() == Approx(4.0));
    tape.backward(p);
    CHECK(xn.grad() == Approx(-4.0));
    CHECK(std::isnan(yn.grad()));
  }
  SECTION("sigmoid stays finite for large |x|") {
    CHECK(derivative([](Var v) { return sigmoid(v); }, 800.0) == 0.0);
    CHECK(derivative([](Var v) { return sigmoid(v); }, -800.0) == 0.0);
  }
}

TEST_CASE("n-ary sum is one node with one operand per term", "[ops][scalar]") {
  Tape tape;
  Var a = tape.input(1.5), b = tape.input(-2.0), c = tape.input(4.0);
  Var s = sum({a * b, b, c, a});
  CHECK(s.value() == Approx(1.5 * -2.0 - 2.0 + 4.0 + 1.5));
  CHECK(tape.op(s.node()) == Op::Sum);
  CHECK(tape.arg_slots(s.node()).size() == 4);
  tape.backward(s);
  CHECK(a.grad() == Approx(-2.0 + 1.0));
  CHECK(b.grad() == Approx(1.5 + 1.0));
  CHECK(c.grad() == Approx(1.0));
  CHECK_THROWS_WITH(sum(std::span<const Var>{}), Catch::Contains("sum: no terms"));
}

TEST_CASE("a dot product is one node whose pairs carry each other's value", "[ops][scalar][dot]") {
  Tape tape;
  const Var a = tape.input(1.5), b = tape.input(-2.0), c = tape.input(4.0), d = tape.param(0.25);
  const Var z = dot({a, b, c}, {d, a, c});
  CHECK(z.value() == Approx(1.5 * 0.25 + -2.0 * 1.5 + 4.0 * 4.0));
  CHECK(tape.op(z.node()) == Op::Dot);
  CHECK(op_name(Op::Dot) == "dot");
  const auto slots = tape.arg_slots(z.node());
  const auto partials = tape.partials(z.node());
  REQUIRE(slots.size() == 6);
  const std::vector<Slot> pairs{a.slot(), d.slot(), b.slot(), a.slot(), c.slot(), c.slot()};
  CHECK(std::vector<Slot>(slots.begin(), slots.end()) == pairs);
  // x_k's partial is y_k's value and y_k's is x_k's.
  const std::vector<double> expected{0.25, 1.5, 1.5, -2.0, 4.0, 4.0};
  CHECK(std::vector<double>(partials.begin(), partials.end()) == expected);
  tape.backward(z);
  CHECK(a.grad() == Approx(0.25 - 2.0));
  CHECK(b.grad() == Approx(1.5));
  CHECK(c.grad() == Approx(8.0));
  CHECK(d.grad() == Approx(1.5));
}

TEST_CASE("a dot product has the gradient of the sum of its products", "[ops][scalar][dot]") {
  const double x = GENERATE(-1.1, 0.3, 2.4);
  check_gradients(
      [](Tape&, std::span<const Var> v) {
        const Var z = dot({v[0], v[1], v[2], v[0]}, {v[3], v[0], v[2], v[1]});
        return z * z + dot({z}, {v[3]});
      },
      {x, 0.7, -1.6, 2.2});
  // The same graph written with products and sum(): the same value and grads.
  Tape tape;
  const std::vector<Var> v{tape.input(x), tape.input(0.7), tape.input(-1.6), tape.input(2.2)};
  const Var statement = dot({v[0], v[1], v[2]}, {v[3], v[0], v[2]});
  const Var products = sum({v[0] * v[3], v[1] * v[0], v[2] * v[2]});
  CHECK(statement.value() == Approx(products.value()));
  std::vector<double> from_statement, from_products;
  tape.backward(statement);
  for (const Var& e : v) from_statement.push_back(e.grad());
  tape.backward(products);
  for (const Var& e : v) from_products.push_back(e.grad());
  CHECK_THAT(from_statement, Catch::Approx(from_products));
}

TEST_CASE("dot refuses what it cannot record, naming the problem", "[ops][scalar][dot][errors]") {
  Tape tape;
  const Var w = tape.param(2.0), x = tape.input(3.0), y = tape.input(-1.0);
  CHECK_THROWS_WITH(dot({w, x}, {y}), Catch::Contains("dot: the two operand lists differ in length (2 and 1)"));
  CHECK_THROWS_WITH(dot(std::span<const Var>{}, std::span<const Var>{}), Catch::Contains("dot: no terms"));
  Tape other;
  const Var foreign = other.input(1.0);
  CHECK_THROWS_WITH(dot({w, x}, {y, foreign}), Catch::Contains("dot: operands are on different tapes"));
  CHECK_THROWS_WITH(dot({w, Var{}}, {y, x}), Catch::Contains("dot: the Var is empty"));
  tape.reset();  // drops x and y, keeps the parameter w
  const Var fresh = tape.input(5.0);
  CHECK_THROWS_WITH(dot({w, fresh}, {fresh, x}), Catch::Contains("before Tape::reset() dropped it"));
  CHECK_THROWS_WITH(dot({y}, {w}), Catch::Contains("before Tape::reset() dropped it"));
  // A parameter from before the reset and a Var of this epoch pass together.
  CHECK(dot({w, fresh}, {fresh, w}).value() == Approx(20.0));
  // Operands pushed by hand are not pairs: a dot product is recorded by dot() alone.
  tape.push_arg(w.slot(), 1.0);
  CHECK_THROWS_WITH(tape.close(Op::Dot, 0.0), Catch::Contains("record it with dot(x, y)"));
  const Slot slots[] = {w.slot(), fresh.slot()};
  const double partials[] = {5.0, 2.0};
  CHECK_THROWS_WITH(tape.record(Op::Dot, 10.0, slots, partials), Catch::Contains("record it with dot(x, y)"));
  CHECK_THROWS_WITH(tape.record(Op::Dot, 10.0, w.slot(), 5.0), Catch::Contains("record it with dot(x, y)"));
  // The refused operands belong to no node: the next node has only its own.
  const Var next = sum({w, fresh});
  CHECK(tape.arg_slots(next.node()).size() == 2);
  CHECK(next.value() == 7.0);
}

TEST_CASE("dot products survive reset, sweep again, and read back after growing the tape", "[ops][scalar][dot]") {
  Tape tape;
  const Var w = tape.param(0.5, "w");
  for (int step = 0; step < 3; ++step) {
    tape.reset();
    std::vector<Var> x, y;
    for (int i = 0; i < 200; ++i) {  // enough operands to grow the columns mid-recording
      x.push_back(tape.input(0.01 * i));
      y.push_back(i % 2 == 0 ? w : x.back());
    }
    const Var z = dot(x, y);
    double value = 0, dw = 0;
    for (int i = 0; i < 200; ++i) {
      value += 0.01 * i * (i % 2 == 0 ? 0.5 : 0.01 * i);
      dw += i % 2 == 0 ? 0.01 * i : 0.0;
    }
    CHECK(z.value() == Approx(value));
    tape.backward(z);
    CHECK(w.grad() == Approx(dw));
    CHECK(x[3].grad() == Approx(2 * 0.03));  // x3·x3: both factors of the pair
    CHECK(x[4].grad() == Approx(0.5));
    const auto partials = tape.partials(z.node());
    REQUIRE(partials.size() == 400);
    CHECK(partials[6] == Approx(0.03));
    CHECK(partials[7] == Approx(0.03));
  }
}
