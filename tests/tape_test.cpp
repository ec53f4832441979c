// SPDX-License-Identifier: MIT
// The tape: order, fan-out accumulation, backward semantics, reset, names and misuse.
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <random>
#include <thread>

#include "autodiff/tensor.hpp"
#include "check_gradients.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;
using gradpath::test::check_gradients;

TEST_CASE("tape order: every operand is recorded before the node using it", "[tape]") {
  Tape tape;
  Var x = tape.input(2.0), y = tape.input(3.0);
  Var z = exp(x * y + x) / y;
  for (NodeId n = 0; n < tape.node_count(); ++n) {
    for (Slot s : tape.arg_slots(n)) CHECK(tape.node_of(s) < n);
  }
  CHECK(tape.node_of(z.slot()) == tape.node_count() - 1);
}

TEST_CASE("fan-out accumulates: x*x and a value reused along a chain", "[tape]") {
  SECTION("x*x") {
    Tape tape;
    Var x = tape.input(3.0);
    tape.backward(x * x);
    CHECK(x.grad() == Approx(6.0));
  }
  SECTION("one value used in many places") {
    // f = x * (x + 1) * (x * x) = x^4 + x^3, f' = 4x^3 + 3x^2
    Tape tape;
    Var x = tape.input(1.7);
    Var f = x * (x + 1.0) * (x * x);
    tape.backward(f);
    CHECK(x.grad() == Approx(4 * std::pow(1.7, 3) + 3 * 1.7 * 1.7));
  }
  SECTION("a chain that reuses every intermediate") {
    check_gradients(
        [](Tape&, std::span<const Var> v) {
          Var acc = v[0];
          for (int i = 0; i < 20; ++i) acc = acc * v[1] + sin(acc) + v[0];
          return acc;
        },
        {0.3, 0.9});
  }
}

TEST_CASE("backward starts fresh: a second call gives the same grads", "[tape]") {
  Tape tape;
  Var x = tape.input(2.0), y = tape.input(-1.0);
  Var f = x * y + x;
  tape.backward(f);
  const double gx = x.grad(), gy = y.grad();
  tape.backward(f);
  CHECK(x.grad() == gx);
  CHECK(y.grad() == gy);
  SECTION("backward from an intermediate node seeds that node") {
    Var g = x * x;
    tape.backward(g);
    CHECK(x.grad() == Approx(4.0));
    CHECK(y.grad() == 0.0);
  }
}

TEST_CASE("nodes recorded after the root get no grad", "[tape]") {
  Tape tape;
  Var x = tape.input(2.0);
  Var f = x * 3.0;
  Var later = f * f;
  tape.backward(f);
  CHECK(x.grad() == 3.0);
  CHECK(later.grad() == 0.0);
}

TEST_CASE("a wrong partial is caught by gradcheck", "[tape][gradcheck]") {
  // mul recorded with d/dx = x instead of y: the check must fail and name input 0.
  auto broken_mul = [](Tape& t, std::span<const Var> v) {
    const double x = v[0].value(), y = v[1].value();
    return t.record(Op::Mul, x * y, v[0].slot(), x, v[1].slot(), x);
  };
  const double point[] = {2.0, 5.0};
  const GradcheckResult r = gradcheck(broken_mul, point);
  CHECK_FALSE(r.ok);
  CHECK(r.worst_index == 0);
  CHECK(r.analytic[0] == Approx(2.0));
  CHECK(r.numeric[0] == Approx(5.0));
  CHECK_THAT(r.report(), Catch::Contains("FAILED") && Catch::Contains("<- worst"));
}

TEST_CASE("reset keeps parameters and capacity, drops the rest", "[tape][reset]") {
  Tape tape;
  Var w = tape.param(0.5, "w");
  Var b = tape.param(0.1, "b");
  const double* values_before = nullptr;
  std::size_t nodes_after_first_step = 0;
  for (int step = 0; step < 5; ++step) {
    tape.reset();
    CHECK(tape.node_count() == 2);
    Var x = tape.input(1.0 + step);
    Var loss = pow(w * x + b - 3.0, 2.0) * 0.5;
    tape.backward(loss);
    const double r = w.value() * (1.0 + step) + b.value() - 3.0;
    CHECK(w.grad() == Approx(r * (1.0 + step)));
    CHECK(b.grad() == Approx(r));
    tape.set_value(w, w.value() - 0.01 * w.grad());
    if (step == 0) {
      nodes_after_first_step = tape.node_count();
      values_before = tape.values().data();
    } else {
      CHECK(tape.node_count() == nodes_after_first_step);
      CHECK(tape.values().data() == values_before);  // no reallocation in a steady loop
    }
  }
  CHECK(w.name() == "w");
}

TEST_CASE("names: single nodes and numbered leaf tensors", "[tape][names]") {
  Tape tape;
  const double image[] = {1, 2, 3, 4, 5, 6};
  TensorVar a = tape.input(image, Shape{2, 3}, "a");
  Var t = tape.input(0.5, "t");
  CHECK(a[0].name() == "a1");
  CHECK(a.at({1, 2}).name() == "a6");
  CHECK(a.at({1, 2}).value() == 6.0);
  CHECK(t.name() == "t");
  Var y = (a[0] * t).named("y");
  CHECK(y.name() == "y");
  CHECK(tape.name(y.node()) == "y");
  y.named("y2");
  CHECK(y.name() == "y2");
  CHECK_THROWS_WITH(tape.set_name(a[1].node(), "oops"), Catch::Contains("named range 'a'"));
  CHECK_THROWS_WITH(a.at({2, 0}), Catch::Contains("out of range for shape [2, 3]"));
  CHECK_THROWS_WITH(a[6], Catch::Contains("index 6 is out of range for shape [2, 3]"));
  CHECK_THROWS_WITH(tape.input(image, Shape{4, 2}, "bad"), Catch::Contains("6 values for shape [4, 2]"));
}

TEST_CASE("stack: consecutive scalars are a view, others are copied", "[tape][tensor]") {
  Tape tape;
  Var x = tape.input(1.0), y = tape.input(2.0);
  Var p = x * y, q = x + y;
  const std::size_t before = tape.node_count();
  const Var xy[] = {x, y};
  TensorVar view = stack(xy, Shape{2});
  CHECK(tape.node_count() == before);
  CHECK(view.offset() == x.slot());
  const Var qp[] = {q, p};
  TensorVar copied = stack(qp, Shape{2});
  CHECK(tape.node_count() == before + 2);
  CHECK(copied[0].value() == 3.0);
  tape.backward(copied[1] * 10.0);
  CHECK(x.grad() == 20.0);
}

TEST_CASE("misuse raises an Error that says what happened", "[tape][errors]") {
  SECTION("mixing Vars from two tapes") {
    Tape one, two;
    Var a = one.input(1.0), b = two.input(2.0);
    CHECK_THROWS_WITH(a * b, Catch::Contains("mul: operands are on different tapes"));
    CHECK_THROWS_WITH(one.backward(b), Catch::Contains("backward: the root Var belongs to a different tape"));
  }
  SECTION("a Var used after reset dropped it") {
    Tape tape;
    Var w = tape.param(1.0);
    Var x = tape.input(2.0);
    Var y = w * x;
    tape.reset();
    CHECK_THROWS_WITH(y.value(), Catch::Contains("before Tape::reset() dropped it"));
    CHECK_THROWS_WITH(x + w, Catch::Contains("add: the Var"));
    CHECK_THROWS_WITH(tape.backward(y), Catch::Contains("backward"));
    CHECK(w.value() == 1.0);
    SECTION("even when a later parameter reuses its slot") {
      Var v = tape.param(7.0);
      CHECK(v.slot() == x.slot());
      CHECK_THROWS_WITH(x.value(), Catch::Contains("dropped it"));
    }
  }
  SECTION("a Var used after its tape was destroyed") {
    Var orphan;
    {
      Tape tape;
      orphan = tape.input(1.0);
    }
    CHECK_THROWS_WITH(orphan.value(), Catch::Contains("tape was destroyed"));
    Tape reused;  // may take the same registry index; the Var must still be refused
    CHECK_THROWS_WITH(orphan * 2.0, Catch::Contains("mul: the Var's tape was destroyed"));
  }
  SECTION("an empty Var") {
    Var empty;
    CHECK_THROWS_WITH(exp(empty), Catch::Contains("exp: the Var is empty"));
  }
  SECTION("set_value on a computed node") {
    Tape tape;
    Var x = tape.input(1.0);
    Var y = x * 2.0;
    CHECK_THROWS_WITH(tape.set_value(y, 3.0), Catch::Contains("is a mul node, not an input or parameter"));
  }
}

TEST_CASE("one tape per thread, all at once", "[tape][threads]") {
  constexpr int threads = 4;
  std::vector<double> grads(threads), expected(threads);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([i, &grads, &expected] {
      Tape tape;
      double g = 0;
      for (int step = 0; step < 200; ++step) {
        tape.reset();
        Var x = tape.input(0.1 * (i + 1));
        Var acc = x;
        for (int k = 0; k < 50; ++k) acc = tanh(acc * 1.01 + x);
        tape.backward(acc);
        g = x.grad();
      }
      grads[i] = g;
      // the same function by forward-mode chain rule, for comparison
      const double x = 0.1 * (i + 1);
      double v = x, dv = 1.0;
      for (int k = 0; k < 50; ++k) {
        const double u = v * 1.01 + x;
        const double t = std::tanh(u);
        dv = (1 - t * t) * (dv * 1.01 + 1.0);
        v = t;
      }
      expected[i] = dv;
    });
  }
  for (auto& t : pool) t.join();
  for (int i = 0; i < threads; ++i) CHECK(grads[i] == Approx(expected[i]).epsilon(1e-12));
}

TEST_CASE("scopes name stretches of recording, nested with '/'", "[tape][scopes]") {
  Tape tape;
  Var x = tape.input(1.0);
  Var in_conv, in_inner, after;
  {
    ScopeGuard conv(tape, "conv");
    in_conv = x * 2.0;
    {
      ScopeGuard inner(tape, "mac");
      in_inner = in_conv + 1.0;
    }
    after = in_inner * in_conv;
  }
  Var outside = after - 1.0;
  CHECK(tape.scope(x.node()).empty());
  CHECK(tape.scope(in_conv.node()) == "conv");
  CHECK(tape.scope(in_inner.node()) == "conv/mac");
  CHECK(tape.scope(after.node()) == "conv");
  CHECK(tape.scope(outside.node()).empty());
  CHECK_THROWS_WITH(tape.pop_scope(), Catch::Contains("no scope is open"));
  CHECK_THROWS_WITH(tape.push_scope("a/b"), Catch::Contains("hold no '/'"));
}

TEST_CASE("set_leaf_values passes every new leaf value through the function, counting leaves", "[tape][leaves]") {
  Tape tape;
  tape.input(1.0);  // before the hook: as given
  tape.set_leaf_values([](std::size_t k, double given) { return given * 10.0 + static_cast<double>(k); });
  const Var x = tape.input(2.0);
  const double three[] = {1.0, 2.0, 3.0};
  const TensorVar w = tape.param(three, Shape{3});
  const TensorVar f = tape.input(three, Shape{3}, "f", DType::f32);
  CHECK(x.value() == 20.0);
  CHECK(w.values()[0] == 11.0);
  CHECK(w.values()[2] == 33.0);
  CHECK(f.values_f32()[0] == 14.0f);
  CHECK(f.values_f32()[2] == 36.0f);
  tape.set_leaf_values({});
  CHECK(tape.param(5.0).value() == 5.0);
}

TEST_CASE("owns_all accepts a list exactly when it accepts each of its Vars", "[tape][reset]") {
  // Vars of many epochs: parameters (kept by every reset), an input made before a later
  // parameter (kept by the slow path only), inputs of each epoch (dropped by the next
  // reset), a Var of another tape and an empty Var.
  Tape tape, other;
  std::vector<Var> vars{tape.param(1.0), other.input(2.0), Var{}};
  for (int epoch = 0; epoch < 6; ++epoch) {
    vars.push_back(tape.input(0.5 * epoch));
    if (epoch % 2 == 0) vars.push_back(tape.param(0.25 * epoch));
    vars.push_back(tape.input(-0.5 * epoch));
    if (epoch < 5) tape.reset();
  }
  const auto valid = [&](const Var& v) {
    try {
      tape.check(v, "test");
      return true;
    } catch (const Error&) {
      return false;
    }
  };
  std::mt19937 rng(11);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<Var> a, b;
    const std::size_t n = std::uniform_int_distribution<std::size_t>(1, 5)(rng);
    for (std::size_t i = 0; i < n; ++i) {
      (i % 2 == 0 ? a : b).push_back(vars[std::uniform_int_distribution<std::size_t>(0, vars.size() - 1)(rng)]);
    }
    bool each = true, each_valid = true;
    for (const auto* list : {&a, &b}) {
      for (const Var& v : *list) {
        each = each && tape.owns_all(std::span(&v, 1));
        each_valid = each_valid && valid(v);
      }
    }
    INFO("trial " << trial);
    CHECK(tape.owns_all(a, b) == each);
    if (each) CHECK(each_valid);  // the fast answer never passes a Var the full check refuses
  }
}

TEST_CASE("Vars kept by reset stay valid in every later epoch; dropped ones never", "[tape][reset]") {
  Tape tape;
  const double filter[] = {0.5, -1.0, 2.0};
  Var early = tape.input(3.0, "early");  // an input before the last parameter: kept by every reset
  const TensorVar w = tape.param(filter, Shape{3}, "w");
  const std::vector<Var> ws = w.elements();
  for (int step = 0; step < 3; ++step) {
    tape.reset();
    Var x = tape.input(1.0 + step);
    Var y = sum({ws[0] * x, ws[1] * early, w[2] * x * x});
    tape.backward(y);
    CHECK(ws[0].grad() == Approx(1.0 + step));
    CHECK(early.grad() == Approx(-1.0));
    CHECK(w.grads()[2] == Approx((1.0 + step) * (1.0 + step)));
    Var dropped = x * 2.0;
    tape.reset();
    CHECK_THROWS_WITH(sum({ws[0], dropped}), Catch::Contains("sum: the Var") && Catch::Contains("dropped it"));
    CHECK_THROWS_WITH(ws[1] * dropped, Catch::Contains("mul: the Var") && Catch::Contains("dropped it"));
  }
}
