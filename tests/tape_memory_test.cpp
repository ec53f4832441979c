// SPDX-License-Identifier: MIT
// Tape::memory(): bytes per column group, counted against the tape's layout by hand.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "autodiff/tensor.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;

namespace {
// Per node: an Op byte, a value offset and an operand end; per operand: a slot and a partial.
constexpr std::size_t node_bytes = sizeof(Op) + sizeof(Slot) + sizeof(std::uint32_t);
constexpr std::size_t arg_bytes = sizeof(Slot) + sizeof(double);

std::size_t sum_used(const TapeMemory& m) {
  return m.values.used + m.grads.used + m.partials.used + m.arg_slots.used + m.nodes.used + m.names.used +
         m.tensors.used + m.constants.used;
}
}  // namespace

TEST_CASE("memory: the constant a second derivative needs (an exponent) is counted", "[tape][memory]") {
  Tape tape;
  const Var x = tape.input(2.0);
  const Var y = pow(x, 3.0);
  const TapeMemory m = tape.memory();
  CHECK(m.constants.used == sizeof(ScalarConstant));
  CHECK(m.constants.reserved >= m.constants.used);
  CHECK(m.total().used == sum_used(m));
  tape.reset();
  CHECK(tape.memory().constants.used == 0);
  CHECK_THROWS_AS(y.value(), Error);  // dropped with its constant
}

TEST_CASE("memory: scalar nodes cost their values, grads, node columns and operands", "[tape][memory]") {
  Tape tape;
  Var x = tape.input(2.0), y = tape.input(3.0);
  Var z = sum({x * y, x, y});  // nodes: x, y, mul (2 operands), sum (3 operands)
  TapeMemory m = tape.memory();
  CHECK(m.values.used == 4 * sizeof(double));
  CHECK(m.nodes.used == 4 * node_bytes);
  CHECK(m.arg_slots.used + m.partials.used == 5 * arg_bytes);
  CHECK(m.grads.used == 0);
  CHECK(m.names.used == 0);
  CHECK(m.tensors.used == 0);
  CHECK(m.total().used == sum_used(m));
  CHECK(m.total().reserved >= m.total().used);

  tape.backward(z);
  m = tape.memory();
  CHECK(m.grads.used == 4 * sizeof(double));
  CHECK(m.total().used == (4 + 4) * sizeof(double) + 4 * node_bytes + 5 * arg_bytes);
}

TEST_CASE("memory: a dot product keeps one operand entry per pair", "[tape][memory][dot]") {
  Tape tape;
  const Var a = tape.input(1.0), b = tape.input(2.0), c = tape.input(3.0), d = tape.input(4.0);
  const TapeMemory before = tape.memory();
  const Var z = dot({a, b, c}, {d, c, a});  // three pairs: three entries of 12 bytes, not six
  TapeMemory m = tape.memory();
  CHECK(m.arg_slots.used + m.partials.used - before.arg_slots.used - before.partials.used == 3 * arg_bytes);
  CHECK(m.nodes.used - before.nodes.used == node_bytes);
  CHECK(m.values.used - before.values.used == sizeof(double));
  CHECK(m.total().used == sum_used(m));
  CHECK(z.value() == 1.0 * 4.0 + 2.0 * 3.0 + 3.0 * 1.0);
}

TEST_CASE("memory: reset keeps the reserved bytes and drops the used ones", "[tape][memory]") {
  Tape tape;
  Var w = tape.param(0.5, "w");
  const TapeMemory before = tape.memory();
  for (int i = 0; i < 3; ++i) {
    Var x = tape.input(1.0 + i);
    Var f = w * x + w;
    tape.backward(f);
    const TapeMemory during = tape.memory();
    CHECK(during.values.used == 4 * sizeof(double));
    tape.reset();
    const TapeMemory after = tape.memory();
    CHECK(after.values.used == before.values.used);
    CHECK(after.nodes.used == before.nodes.used);
    CHECK(after.arg_slots.used == 0);
    CHECK(after.total().reserved >= during.total().used);
  }
  CHECK(tape.memory().names.used > 0);  // the name "w" is a NameRange
}

TEST_CASE("memory limit: recording past the cap raises before allocating, reset recovers", "[tape][memory]") {
  constexpr std::size_t limit = 64 * 1024;
  Tape tape;
  Var w = tape.param(1.5, "w");
  tape.set_memory_limit(limit);
  CHECK(tape.memory_limit() == limit);
  auto chain = [&](int length) {
    Var acc = w;
    for (int i = 0; i < length; ++i) acc = acc * 1.0001;
    return acc;
  };
  CHECK_THROWS_WITH(chain(100000), Catch::StartsWith("tape memory limit: recording mul needs ") &&
                                       Catch::EndsWith(" bytes, the limit is 65536 bytes (Tape::set_memory_limit)"));
  CHECK(tape.memory().total().reserved <= limit);

  SECTION("the tape stays usable after reset()") {
    tape.reset();
    const Var y = chain(10);
    tape.backward(y);
    CHECK(w.grad() == Approx(std::pow(1.0001, 10)));
    CHECK(tape.memory().total().reserved <= limit);
  }
  SECTION("0 lifts the limit") {
    tape.reset();
    tape.set_memory_limit(0);
    CHECK_NOTHROW(chain(100000));
    CHECK(tape.memory().total().reserved > limit);
  }
}

TEST_CASE("memory limit: a tensor op's arena growth names the op", "[tape][memory]") {
  Tape tape;
  const std::vector<double> values(5000, 0.5);
  const TensorVar x = tape.input(values, Shape{50, 100}, "x");
  tape.set_memory_limit(tape.memory().total().reserved + 1024);
  CHECK_THROWS_WITH(ops::exp(x),
                    Catch::StartsWith("tape memory limit: recording exp needs ") && Catch::Contains("the limit is"));
  tape.set_memory_limit(0);
  const TensorVar e = ops::exp(x);
  CHECK(e.values()[0] == Approx(std::exp(0.5)));
}

TEST_CASE("memory limit: float32 leaves and ops count their float arena", "[tape][memory]") {
  Tape tape;
  const std::vector<float> values(5000, 0.5f);
  const TensorVar x = tape.input(values, Shape{50, 100}, "x");
  const std::size_t nodes = tape.node_count();
  tape.set_memory_limit(tape.memory().total().reserved + 1024);
  CHECK_THROWS_WITH(ops::exp(x), Catch::StartsWith("tape memory limit: recording exp needs "));
  CHECK_THROWS_WITH(tape.input(values, Shape{50, 100}, "y"), Catch::StartsWith("tape memory limit: recording input"));
  CHECK(tape.node_count() == nodes);  // a refused record leaves the tape as it was
  tape.set_memory_limit(0);
  const TensorVar e = ops::exp(x);
  CHECK(e.values_f32()[0] == Approx(std::exp(0.5f)));
}
