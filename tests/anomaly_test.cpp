// SPDX-License-Identifier: MIT
// Anomaly mode: the first NaN or inf in a value or a grad raises an Error that locates it.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "autodiff/anomaly.hpp"
#include "autodiff/tensor.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;
using Catch::Contains;

namespace {
constexpr double inf = std::numeric_limits<double>::infinity();
}  // namespace

TEST_CASE("anomaly: off by default, and silent when off", "[anomaly]") {
  Tape tape;
  CHECK_FALSE(tape.anomaly_detection());
  Var x = tape.input(0.0, "x");
  Var h = log(x).named("h");
  Var L = sqrt(x) * 3.0 + h;  // d/dx: 3 sqrt'(0) + log'(0) = inf + inf
  CHECK_NOTHROW(tape.backward(L));
  CHECK(h.value() == -inf);
  CHECK(L.value() == -inf);
  CHECK(x.grad() == inf);

  const TensorVar t = tape.input(std::vector<double>{1.0, 0.0}, Shape{2}, "t");
  const TensorVar s = ops::sum(ops::log(t));
  CHECK_NOTHROW(tape.backward(s[0]));
  CHECK(s.values()[0] == -inf);
}

TEST_CASE("anomaly: a scalar op producing inf names the op, node, name and operand", "[anomaly]") {
  Tape tape;
  tape.set_anomaly_detection(true);
  Var x = tape.input(0.0, "x");
  Var h = log(x).named("h");  // node 1; checked when the next op is recorded
  CHECK_THROWS_WITH(h * 2.0, "anomaly: log (node 1, 'h') produced -inf from operand 0 'x' = 0");
}

TEST_CASE("anomaly: a bad last node is caught when backward starts", "[anomaly]") {
  Tape tape;
  AnomalyGuard guard(tape);
  Var x = tape.input(1.0, "x"), y = tape.input(0.0, "y");
  Var q = (x / y).named("q");
  CHECK_THROWS_WITH(tape.backward(q),
                    "anomaly: div (node 2, 'q') produced inf from operand 0 'x' = 1, operand 1 'y' = 0");
}

TEST_CASE("anomaly: NaN operands, leaves, scopes and unnamed nodes", "[anomaly]") {
  Tape tape;
  tape.set_anomaly_detection(true);
  SECTION("a NaN leaf is reported as a leaf") {
    Var x = tape.input(std::nan(""), "x");
    CHECK_THROWS_WITH(x + 1.0, "anomaly: input (node 0, 'x') holds nan");
  }
  SECTION("an unnamed node inside a scope") {
    Var x = tape.input(-1.0, "x");
    Var r;
    {
      ScopeGuard scope(tape, "layer");
      r = sqrt(x);
    }
    CHECK_THROWS_WITH(exp(r), "anomaly: sqrt (node 1, scope 'layer') produced nan from operand 0 'x' = -1");
  }
  SECTION("an n-ary sum shows its first operands") {
    std::vector<Var> terms;
    for (int i = 0; i < 7; ++i) terms.push_back(tape.input(1e308));
    Var s = sum(terms);
    CHECK_THROWS_WITH(tape.backward(s), Contains("anomaly: sum (node 7) produced inf from operand 0 = 1e+308") &&
                                            Contains("operand 5 = 1e+308, ... (7 operands)"));
  }
}

TEST_CASE("anomaly: a tensor op names its shape and first bad element", "[anomaly]") {
  Tape tape;
  tape.set_anomaly_detection(true);
  const TensorVar x = tape.input(std::vector<double>{1.0, 2.0, 0.0, 3.0}, Shape{2, 2}, "x");  // nodes 0-3
  const TensorVar h = ops::log(x, "h");                                                       // node 4
  CHECK_THROWS_WITH(ops::sum(h),
                    "anomaly: log (node 4, 'h') of shape [2, 2] produced -inf at element [1, 0] 'h3' "
                    "from operand 0 [2, 2] 'x3' = 0");
}

TEST_CASE("anomaly: a broadcast operand shows its shape", "[anomaly]") {
  Tape tape;
  tape.set_anomaly_detection(true);
  const TensorVar x = tape.input(std::vector<double>{1.0, -2.0}, Shape{2}, "x");
  const TensorVar y = tape.input(std::vector<double>{0.0}, Shape{1}, "y");
  const TensorVar q = ops::div(x, y, "q");
  CHECK_THROWS_WITH(tape.backward(ops::sum(q)[0]),
                    "anomaly: div (node 3, 'q') of shape [2] produced inf at element [0] 'q1' "
                    "from operand 0 [2] 'x1' = 1, operand 1 [1]");
}

TEST_CASE("anomaly: a grad becoming inf in the scalar sweep names the backward op", "[anomaly]") {
  Tape tape;
  tape.set_anomaly_detection(true);
  Var x = tape.input(0.0, "x");
  Var y = sqrt(x).named("y");  // value 0 is fine; sqrt'(0) = inf
  Var L = (y * 3.0).named("L");
  CHECK_THROWS_WITH(tape.backward(L),
                    "anomaly: backward of sqrt (node 1, 'y') made the grad of operand 0 'x' "
                    "(node 0) inf: partial inf times grad 3; operand value 0");
}

TEST_CASE("anomaly: a dot product names the operand of the pair whose grad overflowed", "[anomaly][dot]") {
  Tape tape;
  tape.set_anomaly_detection(true);
  const Var w = tape.input(1e200, "w"), x = tape.input(1e-200, "x"), v = tape.input(2.0, "v");
  const Var u = tape.input(0.5, "u");
  const Var z = dot({u, x}, {v, w}).named("z");  // 1 + 1: finite, but dz/dx = 1e200
  const Var L = (z * 1e200).named("L");
  CHECK_THROWS_WITH(tape.backward(L),
                    "anomaly: backward of dot (node 4, 'z') made the grad of operand 2 'x' "
                    "(node 1) inf: partial 1e+200 times grad 1e+200; operand value 1e-200");
}

TEST_CASE("anomaly: a grad overflowing by accumulation is caught", "[anomaly]") {
  Tape tape;
  tape.set_anomaly_detection(true);
  // every value is finite (1e-200, 1, 1e200) but dz/dx = 1e400 overflows
  Var x = tape.input(1e-200, "x");
  Var y = (x * 1e200).named("y");
  Var z = (y * 1e200).named("z");
  CHECK_THROWS_WITH(tape.backward(z),
                    "anomaly: backward of mul (node 1, 'y') made the grad of operand 0 'x' "
                    "(node 0) inf: partial 1e+200 times grad 1e+200; operand value 1e-200");
}

TEST_CASE("anomaly: a tensor rule writing inf names the op, shape and element", "[anomaly]") {
  Tape tape;
  tape.set_anomaly_detection(true);
  const TensorVar x = tape.input(std::vector<double>{4.0, 0.0, 1.0}, Shape{3}, "x");  // nodes 0-2
  const TensorVar r = ops::sqrt(x, "r");                                              // node 3
  const TensorVar s = ops::sum(r, "s");                                               // node 4
  CHECK(s.values()[0] == Approx(3.0));
  CHECK_THROWS_WITH(tape.backward(s[0]),
                    "anomaly: backward of sqrt (node 3, 'r') of shape [3] made the grad of "
                    "operand 0 [3] at element [1] 'x2' inf; operand value 0");
}

TEST_CASE("anomaly: finite graphs give the same grads with the mode on", "[anomaly]") {
  // f = x*y + sin(x) + sum(exp(t)), df/dx = y + cos(x), df/dy = x, df/dt_i = exp(t_i)
  Tape tape;
  AnomalyGuard guard(tape);
  Var x = tape.input(0.7, "x"), y = tape.input(-1.3, "y");
  const TensorVar t = tape.input(std::vector<double>{0.1, -0.4}, Shape{2}, "t");
  Var f = x * y + sin(x) + ops::sum(ops::exp(t))[0];
  REQUIRE_NOTHROW(tape.backward(f));
  CHECK(x.grad() == Approx(-1.3 + std::cos(0.7)));
  CHECK(y.grad() == Approx(0.7));
  CHECK(t.grads()[0] == Approx(std::exp(0.1)));
  CHECK(t.grads()[1] == Approx(std::exp(-0.4)));
}

TEST_CASE("anomaly: the guard restores the previous setting; only nodes recorded while on are checked", "[anomaly]") {
  Tape tape;
  Var x = tape.input(0.0, "x");
  Var h = log(x).named("h");  // recorded while off: not itself reported
  {
    AnomalyGuard guard(tape);
    CHECK(tape.anomaly_detection());
    Var e = exp(x);  // fine; recorded while on
    CHECK_NOTHROW(e + 1.0);
    {
      AnomalyGuard off(tape, false);
      CHECK_FALSE(tape.anomaly_detection());
    }
    CHECK(tape.anomaly_detection());
    // h's -inf now flows into a node recorded while on, which reports its operand
    Var g = (h * 2.0).named("g");
    CHECK_THROWS_WITH(g + 1.0, "anomaly: mul (node 4, 'g') produced -inf from operand 0 'h' = -inf");
  }
  CHECK_FALSE(tape.anomaly_detection());
}

TEST_CASE("anomaly: each anomaly is reported once; reset drops it with its nodes", "[anomaly]") {
  Tape tape;
  tape.set_anomaly_detection(true);
  Var w = tape.param(0.5, "w");
  Var x = tape.input(0.0, "x");
  Var h = (w / x).named("h");
  CHECK_THROWS_WITH(h + 1.0, Contains("div (node 2, 'h') produced inf"));
  // node 2 is not reported again, but node 3 (h + 1 = inf) is a new anomaly
  CHECK_THROWS_WITH(x + 2.0, "anomaly: add (node 3) produced inf from operand 0 'h' = inf");
  CHECK_NOTHROW(x + 3.0);
  tape.reset();
  Var x2 = tape.input(2.0, "x");
  Var h2 = (w / x2).named("h");
  CHECK_NOTHROW(tape.backward(h2 + 1.0));
  CHECK(w.grad() == Approx(0.5));
  tape.reset();
  Var bad = (w / tape.input(0.0)).named("again");  // the new node 2 is checked again
  CHECK_THROWS_WITH(tape.backward(bad), Contains("div (node 2, 'again') produced inf"));
}
