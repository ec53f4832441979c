// SPDX-License-Identifier: MIT
// Paths and cuts: exact counts, the enumeration limit, cut errors, and the theorem that
// the sum over paths of edge-partial products is the grad the reverse sweep computes.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <set>

#include "graph/graph.hpp"
#include "graph_fixtures.hpp"
#include "ops/nn.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;
using graph::TapeGraph;

namespace {
// x -> p = x*x (two parallel edges), q = sin(x); r = p + q; L = r*r (two again).
struct Diamond {
  Diamond() {
    x = tape.input(xv, "x");
    p = (x * x).named("p");
    q = sin(x).named("q");
    r = (p + q).named("r");
    L = (r * r).named("L");
  }
  double xv = 0.8;
  Tape tape;
  Var x, p, q, r, L;
};
}  // namespace

TEST_CASE("count_paths and paths on a small graph with parallel edges", "[graph][paths]") {
  Diamond d;
  const TapeGraph g = graph::view(d.tape);
  const NodeId x = d.x.node(), L = d.L.node();
  // (2 via p + 1 via q) into r, times 2 edges r -> L.
  CHECK(graph::count_paths(g, x, L) == 6);
  CHECK(graph::count_paths(g, x, d.r.node()) == 3);
  CHECK(graph::count_paths(g, d.q.node(), d.p.node()) == 0);
  CHECK(graph::count_paths(g, L, x) == 0);
  CHECK(graph::count_paths(g, x, x) == 1);

  const std::vector<graph::Path> all = graph::paths(g, x, L);
  REQUIRE(all.size() == 6);
  const double r = d.xv * d.xv + std::sin(d.xv);
  double total = 0;
  for (const graph::Path& path : all) {
    CHECK(path.nodes.front() == x);
    CHECK(path.nodes.back() == L);
    CHECK(path.partials.size() + 1 == path.nodes.size());
    const bool via_p = path.nodes[1] == d.p.node();
    // Each path: (x via p: partial x, or via q: cos x) * 1 * r.
    CHECK(path.product == Approx((via_p ? d.xv : std::cos(d.xv)) * r));
    total += path.product;
  }
  CHECK(total == Approx(2 * r * (2 * d.xv + std::cos(d.xv))));
  CHECK(graph::derivative(g, x, L) == Approx(2 * r * (2 * d.xv + std::cos(d.xv))));

  SECTION("from == to: one empty path with product 1; to before from: none") {
    const auto self = graph::paths(g, x, x);
    REQUIRE(self.size() == 1);
    CHECK(self[0].nodes == std::vector<NodeId>{x});
    CHECK(self[0].product == 1.0);
    CHECK(graph::derivative(g, x, x) == 1.0);
    CHECK(graph::paths(g, L, x).empty());
    CHECK(graph::derivative(g, L, x) == 0.0);
  }
  SECTION("more paths than the limit is an Error with the count") {
    CHECK_THROWS_WITH(graph::paths(g, x, L, 5),
                      Catch::Contains("paths: there are 6 paths from x to L, more than the limit of 5"));
    CHECK(graph::paths(g, x, L, 6).size() == 6);
  }
  SECTION("ids outside the graph") {
    CHECK_THROWS_WITH(graph::paths(g, x, 99), Catch::Contains("paths: node 99 is not in the graph (it has 5 nodes)"));
    CHECK_THROWS_WITH(graph::derivative(g, 42, L), Catch::Contains("derivative: node 42 is not in the graph"));
  }
}

TEST_CASE("count_paths is exact beyond 64 bits: a ladder with 2^200 paths", "[graph][paths]") {
  // a' = a + b, b' = a - b: each level doubles the paths from x into both.
  Tape tape;
  Var x = tape.input(0.5, "x");
  Var a = x, b = (x * 1.0).named("b0");
  for (int level = 0; level < 200; ++level) {
    Var next_a = a + b;
    b = a - b;
    a = next_a;
  }
  a.named("top");
  const TapeGraph g = graph::view(tape);
  const graph::PathCount expected = graph::PathCount(1) << 200;
  CHECK(graph::count_paths(g, x.node(), a.node()) == expected);
  CHECK(expected.str() == "1606938044258990275541962092341162602522202993782792835301376");
  CHECK_THROWS_WITH(graph::paths(g, x.node(), a.node()),
                    Catch::Contains("there are 1606938044258990275541962092341162602522202993782792835301376 paths "
                                    "from x to top, more than the limit of 10000"));
  // d(a, b)/dx goes (1, 1) -> (2, 0) -> (2, 2) -> (4, 0) ...: da/dx = 2^100 after 200 levels.
  CHECK(graph::derivative(g, x.node(), a.node()) == std::ldexp(1.0, 100));
  tape.backward(a);
  CHECK(x.grad() == std::ldexp(1.0, 100));
}

TEST_CASE("seed network: 4 paths from each w_i to L, one through each z_k", "[graph][paths][seed]") {
  test::SeedNet net(GENERATE(1u, 2u, 3u));
  net.tape.backward(net.L);
  const TapeGraph g = graph::view(net.tape);
  const NodeId L = net.L.node();
  for (int i = 0; i < 9; ++i) {
    INFO("w" << i + 1);
    const NodeId w = net.w[i].node();
    CHECK(graph::count_paths(g, w, L) == 4);
    const std::vector<graph::Path> all = graph::paths(g, w, L);
    REQUIRE(all.size() == 4);
    double rule = 0;
    for (int k = 0; k < 4; ++k) {
      const graph::Path& path = all[k];
      // w_i -> w_i*a_j -> z_k -> v_k*z_k -> y -> y-t -> (y-t)^2 -> L
      const std::vector<NodeId> expected{w,
                                         net.product[k][i].node(),
                                         net.z[k].node(),
                                         net.vz[k].node(),
                                         net.y.node(),
                                         net.diff.node(),
                                         net.square.node(),
                                         L};
      CHECK(path.nodes == expected);
      const double a_j = net.image[test::input_under_tap(k, i)];
      CHECK(path.product == Approx(a_j * net.dL_dz_hand(k)).epsilon(1e-12).margin(1e-15));
      rule += a_j * net.dL_dz_hand(k);
    }
    CHECK(graph::derivative(g, w, L) == Approx(rule).epsilon(1e-12).margin(1e-15));
    CHECK(net.w[i].grad() == Approx(rule).epsilon(1e-12).margin(1e-15));
  }
}

TEST_CASE("seed network with dot products: each path goes w_i -> z_k with the partial a_j", "[graph][paths][dot]") {
  const test::SeedNet products(GENERATE(1u, 2u));
  Tape tape;
  const TensorVar a = tape.input(products.image, Shape{5, 5}, "a");
  const TensorVar w = tape.param(products.filter, Shape{3, 3}, "w");
  const TensorVar v = tape.param(products.dense, Shape{4}, "v");
  std::vector<Var> z;
  for (int k = 0; k < 4; ++k) {
    std::vector<Var> window;
    for (int i = 0; i < 9; ++i) window.push_back(a[test::input_under_tap(k, i)]);
    z.push_back(dot(w.elements(), window).named("z" + std::to_string(k + 1)));
  }
  const Var y = (dot(v.elements(), z) + products.bias).named("y");
  const Var L = (pow(y - products.target, 2.0) * 0.5).named("L");
  tape.backward(L);
  const TapeGraph g = graph::view(tape);
  const double dL_dy = y.value() - products.target;
  for (int i = 0; i < 9; ++i) {
    INFO("w" << i + 1);
    const std::vector<graph::Path> all = graph::paths(g, w[i].node(), L.node());
    REQUIRE(all.size() == 4);
    double rule = 0;
    for (int k = 0; k < 4; ++k) {
      REQUIRE(all[k].nodes.size() >= 2);
      CHECK(all[k].nodes[1] == z[k].node());
      const double a_j = products.image[test::input_under_tap(k, i)];
      CHECK(all[k].partials[0] == a_j);  // the dot node's partial for w_i is its pair's value
      CHECK(all[k].partials[1] == products.dense[k]);
      rule += a_j * products.dense[k] * dL_dy;
    }
    CHECK(graph::derivative(g, w[i].node(), L.node()) == Approx(rule).epsilon(1e-12));
    CHECK(w[i].grad() == Approx(rule).epsilon(1e-12));
  }
  for (int k = 0; k < 4; ++k) CHECK(v[k].grad() == Approx(z[k].value() * dL_dy).epsilon(1e-12));
}

TEST_CASE("decompose: dL/dw_i = sum_k dz_k/dw_i dL/dz_k over the cut z1..z4", "[graph][cut][seed]") {
  test::SeedNet net(GENERATE(4u, 5u));
  net.tape.backward(net.L);
  const TapeGraph g = graph::view(net.tape);
  const std::vector<NodeId> cut{net.z[0].node(), net.z[1].node(), net.z[2].node(), net.z[3].node()};
  for (int i = 0; i < 9; ++i) {
    INFO("w" << i + 1);
    const graph::CutDecomposition d = graph::decompose(g, net.w[i].node(), net.L.node(), cut);
    CHECK(d.from == net.w[i].node());
    CHECK(d.to == net.L.node());
    REQUIRE(d.terms.size() == 4);
    double rule = 0;
    for (int k = 0; k < 4; ++k) {
      const double a_j = net.image[test::input_under_tap(k, i)];
      CHECK(d.terms[k].cut_node == cut[k]);
      CHECK(d.terms[k].d_cut_d_from == Approx(a_j).epsilon(1e-12));
      CHECK(d.terms[k].d_to_d_cut == Approx(net.dL_dz_hand(k)).epsilon(1e-12));
      CHECK(d.terms[k].path_count == 1);
      rule += a_j * net.dL_dz_hand(k);
    }
    CHECK(d.total == Approx(rule).epsilon(1e-12).margin(1e-15));
    CHECK(d.total == Approx(net.w[i].grad()).epsilon(1e-12).margin(1e-15));
  }
}

TEST_CASE("decompose: sets that are not cuts name an offending path", "[graph][cut]") {
  test::SeedNet net(7);
  const TapeGraph g = graph::view(net.tape);
  const NodeId w1 = net.w[0].node(), L = net.L.node();
  const std::string p4 = "mul#" + std::to_string(net.product[3][0].node());
  const std::string vz4 = "mul#" + std::to_string(net.vz[3].node());
  const std::string tail =
      " -> y -> sub#" + std::to_string(net.diff.node()) + " -> pow#" + std::to_string(net.square.node()) + " -> L";
  SECTION("a path avoids the set") {
    const NodeId three[] = {net.z[0].node(), net.z[1].node(), net.z[2].node()};
    CHECK_THROWS_WITH(
        graph::decompose(g, w1, L, three),
        Catch::Contains("decompose: not a cut: path w1 -> " + p4 + " -> z4 -> " + vz4 + tail + " avoids {z1, z2, z3}"));
  }
  SECTION("a path passes through two nodes of the set") {
    const NodeId twice[] = {net.z[0].node(), net.z[1].node(), net.z[2].node(), net.z[3].node(), net.y.node()};
    CHECK_THROWS_WITH(graph::decompose(g, w1, L, twice), Catch::Contains("decompose: not a cut: path w1 -> mul#") &&
                                                             Catch::Contains(" -> z1 -> mul#") &&
                                                             Catch::Contains("passes through both z1 and y"));
  }
  SECTION("a node listed twice, a node off the graph") {
    const NodeId dup[] = {net.z[0].node(), net.z[0].node()};
    CHECK_THROWS_WITH(graph::decompose(g, w1, L, dup), Catch::Contains("decompose: the cut lists z1 twice"));
    const NodeId off[] = {net.z[0].node(), 100000};
    CHECK_THROWS_WITH(graph::decompose(g, w1, L, off),
                      Catch::Contains("decompose: cut node 100000 is not in the graph"));
  }
  SECTION("{y} alone is a cut; a cut node off every path still reports its factors") {
    const NodeId y_only[] = {net.y.node()};
    const graph::CutDecomposition d = graph::decompose(g, w1, L, y_only);
    net.tape.backward(net.L);
    CHECK(d.total == Approx(net.w[0].grad()).epsilon(1e-12).margin(1e-15));
    CHECK(d.terms[0].d_to_d_cut == Approx(net.diff.value()).epsilon(1e-12));
    // b does not depend on w1: d b/d w1 = 0 and its term is 0, but d L/d b = y - t.
    const NodeId with_b[] = {net.y.node(), net.b.node()};
    const graph::CutDecomposition e = graph::decompose(g, w1, L, with_b);
    CHECK(e.terms[1].d_cut_d_from == 0.0);
    CHECK(e.terms[1].d_to_d_cut == Approx(net.diff.value()).epsilon(1e-12));
    CHECK(e.terms[1].path_count == 0);
  }
}

TEST_CASE("derivative and decompose refuse paths through a tensor node", "[graph][paths][tensor]") {
  Tape tape;
  const double values[] = {1, 2, 3};
  TensorVar a = tape.input(values, Shape{3}, "a");
  TensorVar s = test::scale2(a).named("s");
  Var L = (s[1] * s[2]).named("L");
  const TapeGraph g = graph::view(tape);
  const NodeId a2 = a[1].node();
  CHECK(graph::count_paths(g, a2, L.node()) == 2);
  const auto all = graph::paths(g, a2, L.node());
  REQUIRE(all.size() == 2);
  CHECK(std::isnan(all[0].product));
  CHECK_THROWS_WITH(graph::derivative(g, a2, L.node()),
                    Catch::Contains("derivative: s (scale2, tensor[3]) lies on a path from a2 to L"));
  const NodeId cut[] = {s.first().node()};
  CHECK_THROWS_WITH(graph::decompose(g, a2, L.node(), cut), Catch::Contains("decompose: s (scale2, tensor[3])"));
}

TEST_CASE("theorem: on random DAGs the sum over paths equals the reverse sweep's grad", "[graph][paths][theorem]") {
  std::size_t enumerated = 0;
  for (unsigned seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    Tape tape;
    std::vector<Var> inputs;
    const Var root = test::random_dag(tape, rng, 4, 25, inputs);
    tape.backward(root);
    const TapeGraph g = graph::view(tape);
    for (const Var& x : inputs) {
      INFO("seed " << seed << ", input " << x.name());
      const double grad = x.grad();
      if (graph::count_paths(g, x.node(), root.node()) <= 20000) {
        double total = 0, magnitude = 0;
        for (const graph::Path& path : graph::paths(g, x.node(), root.node(), 20000)) {
          total += path.product;
          magnitude += std::abs(path.product);
        }
        // Relative to the sum of |products|, the scale of the rounding either way.
        CHECK(std::abs(total - grad) <= 1e-10 * magnitude + 1e-300);
        ++enumerated;
      }
      CHECK(graph::derivative(g, x.node(), root.node()) == Approx(grad).epsilon(1e-10).margin(1e-12));
    }
  }
  CHECK(enumerated > 1000);  // most of the 1200 inputs were checked path by path
}

TEST_CASE("paths run through one-element tensor nodes: dense and loss", "[graph][paths][tensor]") {
  // y = dense(x, v, b) and L = half_squared_error(y, t) are tensor nodes of one element;
  // their edges carry the partials dy/dx_k = v_k and dL/dy = y - t, so the path sums
  // equal the sweep's grads.
  Tape tape;
  const double xs[] = {0.5, -1.5, 2.0}, vs[] = {0.3, -0.7, 1.1};
  TensorVar x = tape.param(xs, Shape{3}, "x");
  TensorVar v = tape.input(vs, Shape{3}, "v");
  Var b = tape.input(0.2, "b"), t = tape.input(1.0, "t");
  TensorVar y = ops::dense(x, v, b, "y");
  TensorVar L = ops::half_squared_error(y, t, "L");
  tape.backward(L[0]);
  const graph::TapeGraph g = graph::view(tape);
  const double y_hand = 0.5 * 0.3 + 1.5 * 0.7 + 2.0 * 1.1 + 0.2;
  CHECK(g[y.first().node()].value == Approx(y_hand));
  for (std::size_t k = 0; k < 3; ++k) {
    const auto found = graph::paths(g, x[k].node(), L.first().node());
    REQUIRE(found.size() == 1);
    REQUIRE(found[0].partials.size() == 2);
    CHECK(found[0].partials[0] == Approx(vs[k]));
    CHECK(found[0].partials[1] == Approx(y_hand - 1.0));
    CHECK(graph::derivative(g, x[k].node(), L.first().node()) == Approx(x[k].grad()));
  }
  SECTION("an operand read twice keeps the sum over paths right") {
    Tape twice;
    const double one[] = {1.5};
    TensorVar u = twice.param(one, Shape{1}, "u");
    TensorVar sq = ops::mul(u, u, "sq");  // d sq / d u = 2u, split over two edges
    twice.backward(sq[0]);
    const graph::TapeGraph g2 = graph::view(twice);
    CHECK(graph::derivative(g2, u.first().node(), sq.first().node()) == Approx(3.0));
    CHECK(u.grads()[0] == Approx(3.0));
  }
}
