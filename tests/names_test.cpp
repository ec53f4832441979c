// SPDX-License-Identifier: MIT
// Name clashes (Note [Name clashes] in autodiff/names.cpp): a name whose elements would
// spell another name's is refused when it is made; names that only look alike are not.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "autodiff/tensor.hpp"
#include "ops/conv.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;

namespace {
std::vector<double> zeros(std::size_t n) { return std::vector<double>(n, 0.0); }
}  // namespace

TEST_CASE("names: w of 12 values and w1 would both name w11", "[tape][names]") {
  Tape tape;
  tape.param(zeros(12), Shape{3, 4}, "w");
  CHECK_THROWS_WITH(
      tape.param(zeros(2), Shape{2}, "w1"),
      "set_name: the name 'w1' (elements w11 ... w12) clashes with 'w' (elements w1 ... w12) (node 0): "
      "both would name w11; choose a name that does not end in a digit, or one no other name starts with");
  SECTION("the other way round") {
    Tape other;
    other.param(zeros(2), Shape{2}, "w1");
    CHECK_THROWS_WITH(other.param(zeros(12), Shape{12}, "w"), Catch::Contains("both would name w11"));
  }
  SECTION("a single node named like an element") {
    CHECK_THROWS_WITH(tape.param(0.5, "w11"),
                      Catch::StartsWith("set_name: the name 'w11' clashes with 'w' (elements "));
    CHECK_THROWS_WITH(tape.input(0.5, "w10"), Catch::Contains("both would name w10"));
    CHECK_THROWS_WITH(tape.input(0.5, "w1"), Catch::Contains("both would name w1"));
  }
}

TEST_CASE("names: names that only look alike are allowed", "[tape][names]") {
  Tape tape;
  const TensorVar w = tape.param(zeros(9), Shape{3, 3}, "w");   // w1 ... w9
  const TensorVar w1 = tape.param(zeros(2), Shape{2}, "w1");    // w11, w12: no w1x in w
  const Var w13 = tape.input(1.0, "w13");                       // past w1's two
  const Var w012 = tape.input(1.0, "w012");                     // no element number starts with 0
  const TensorVar wx = tape.param(zeros(12), Shape{12}, "wx");  // another stem
  const Var v = tape.input(1.0, "v10");                         // another stem again
  CHECK(w[8].name() == "w9");
  CHECK(w1[0].name() == "w11");
  CHECK(w13.name() == "w13");
  CHECK(w012.name() == "w012");
  CHECK(wx[11].name() == "wx12");
  CHECK(v.name() == "v10");
}

TEST_CASE("names: two things with one name clash, whatever their sizes", "[tape][names]") {
  Tape tape;
  const Var x = tape.input(1.0, "x");
  CHECK_THROWS_WITH(tape.input(2.0, "x"), Catch::Contains("clashes with 'x' (node 0): both would name x"));
  CHECK_THROWS_WITH(tape.input(zeros(3), Shape{3}, "x"), Catch::Contains("both would name x"));
  const TensorVar z = tape.input(zeros(4), Shape{2, 2}, "z");
  CHECK_THROWS_WITH(ops::mul(z, 2.0, "z"), Catch::Contains("both would name z1"));
  CHECK_THROWS_WITH(tape.param(zeros(4), Shape{4}, "z", DType::f32), Catch::Contains("both would name z"));
  // Renaming a node, or naming it again the same, is not a clash with itself.
  Var y = tape.input(3.0, "y");
  y.named("y");
  y.named("y2");
  CHECK(y.name() == "y2");
  CHECK(tape.input(4.0, "y").name() == "y");  // 'y' is free again
  CHECK(x.name() == "x");
}

TEST_CASE("names: tensor nodes and conv2d_mac outputs number their elements too", "[tape][names]") {
  Tape tape;
  const TensorVar a = tape.input(zeros(25), Shape{1, 1, 5, 5}, "a");
  const TensorVar w = tape.param(zeros(9), Shape{1, 1, 3, 3}, "w");
  const TensorVar h = ops::mul(a, 2.0, "h");  // one tensor node of 25 elements
  CHECK_THROWS_WITH(tape.input(1.0, "h25"), Catch::Contains("both would name h25"));
  CHECK(tape.input(1.0, "h26").name() == "h26");
  const TensorVar z = ops::conv2d_mac(a, w, {.stride = 2}, "z");  // a range z1 ... z4
  CHECK(z[3].name() == "z4");
  CHECK_THROWS_WITH(tape.input(1.0, "z3"), Catch::Contains("both would name z3"));
  CHECK_THROWS_WITH(tape.input(zeros(2), Shape{2}, "a1"), Catch::Contains("both would name a11"));
  CHECK(h.size() == 25);
}

TEST_CASE("names: reset frees the names of the nodes it drops", "[tape][names]") {
  Tape tape;
  const TensorVar w = tape.param(zeros(12), Shape{12}, "w");
  for (int step = 0; step < 3; ++step) {
    tape.reset();
    const TensorVar x = tape.input(zeros(12), Shape{12}, "x");
    CHECK(x[11].name() == "x12");
    CHECK(ops::add(x, w, "y").size() == 12);
  }
  tape.reset();
  CHECK(tape.input(1.0, "x1").name() == "x1");                                      // x of 12 is gone
  CHECK_THROWS_WITH(tape.input(1.0, "w3"), Catch::Contains("both would name w3"));  // w is a parameter: kept
}
