// SPDX-License-Identifier: MIT
// Every scalar op: closed-form partials and central finite differences at several points.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

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
