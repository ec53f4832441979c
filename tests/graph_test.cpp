// SPDX-License-Identifier: MIT
// The Boost.Graph view: vertices and edges against the tape, tensor nodes, names,
// scopes, and topological order against tape order.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <random>

#include "graph/graph.hpp"
#include "graph_fixtures.hpp"

using namespace gradpath;
using graph::TapeGraph;

namespace {
std::size_t operand_count(const Tape& tape) {
  std::size_t total = 0;
  for (NodeId n = 0; n < tape.node_count(); ++n) total += tape.arg_slots(n).size();
  return total;
}

// The in-edges of v as (source, input_nr) -> edge info.
std::map<std::pair<NodeId, std::uint32_t>, graph::EdgeInfo> in_edges_of(const TapeGraph& g, NodeId v) {
  std::map<std::pair<NodeId, std::uint32_t>, graph::EdgeInfo> result;
  for (const auto e : boost::make_iterator_range(boost::in_edges(v, g))) {
    result[{static_cast<NodeId>(boost::source(e, g)), g[e].input_nr}] = g[e];
  }
  return result;
}
}  // namespace

TEST_CASE("view: one vertex per node, one edge per operand, partials on edges", "[graph][view]") {
  Tape tape;
  const double xv = 0.7, yv = -1.3;
  Var x = tape.input(xv, "x"), y = tape.input(yv, "y");
  Var p = (x * y).named("p");
  Var q = sin(x).named("q");
  Var z = sum({p, q, x}).named("z");
  Var L = (z * z).named("L");

  TapeGraph g = graph::view(tape);
  CHECK(boost::num_vertices(g) == tape.node_count());
  CHECK(boost::num_edges(g) == operand_count(tape));
  CHECK(boost::num_edges(g) == 2 + 1 + 3 + 2);

  const auto into_p = in_edges_of(g, p.node());
  REQUIRE(into_p.size() == 2);
  CHECK(into_p.at({x.node(), 0}).partial == Approx(yv));  // d(xy)/dx = y
  CHECK(into_p.at({y.node(), 1}).partial == Approx(xv));
  CHECK(into_p.at({x.node(), 0}).element == -1);
  CHECK(in_edges_of(g, q.node()).at({x.node(), 0}).partial == Approx(std::cos(xv)));
  const auto into_z = in_edges_of(g, z.node());
  CHECK(into_z.size() == 3);
  CHECK(into_z.at({x.node(), 2}).partial == 1.0);
  // z*z: two parallel edges from z, each with partial z.
  const double zv = xv * yv + std::sin(xv) + xv;
  const auto into_L = in_edges_of(g, L.node());
  REQUIRE(into_L.size() == 2);
  CHECK(into_L.at({z.node(), 0}).partial == Approx(zv));
  CHECK(into_L.at({z.node(), 1}).partial == Approx(zv));
  CHECK(boost::out_degree(z.node(), g) == 2);

  const graph::NodeInfo& info = g[p.node()];
  CHECK(info.id == p.node());
  CHECK(info.op == Op::Mul);
  CHECK(info.op_name == "mul");
  CHECK(info.name == "p");
  CHECK_FALSE(info.is_tensor);
  CHECK(info.value == Approx(xv * yv));
  CHECK(info.shape.rank() == 0);
  CHECK(g[x.node()].op_name == "input");

  SECTION("grads come from the last backward; 0 before any") {
    CHECK(g[x.node()].grad == 0.0);
    tape.backward(L);
    g = graph::view(tape);
    CHECK(g[L.node()].grad == 1.0);
    CHECK(g[z.node()].grad == Approx(2 * zv));
    CHECK(g[x.node()].grad == Approx(2 * zv * (yv + std::cos(xv) + 1.0)));
    CHECK(g[y.node()].grad == Approx(2 * zv * xv));
  }
}

TEST_CASE("view: a tensor node, its operands and a scalar reading one element", "[graph][view][tensor]") {
  Tape tape;
  const double values[] = {1, 2, 3, 4, 5, 6};
  TensorVar a = tape.input(values, Shape{2, 3}, "a");
  TensorVar s = test::scale2(a).named("s");
  Var e = (s[4] * 3.0).named("e");
  TensorVar s2 = test::scale2(s);
  const NodeId tensor = s.first().node(), tensor2 = s2.first().node();

  const TapeGraph g = graph::view(tape);
  CHECK(boost::num_vertices(g) == tape.node_count());
  // a1..a6 -> s (one edge per covered scalar node), s -> e, s -> s2 (one edge).
  CHECK(boost::num_edges(g) == 6 + 1 + 1);
  const graph::NodeInfo& info = g[tensor];
  CHECK(info.is_tensor);
  CHECK(info.op == Op::Tensor);
  CHECK(info.op_name == "scale2");
  CHECK(info.name == "s");
  CHECK(info.shape == Shape{2, 3});
  CHECK(std::isnan(info.value));
  CHECK(std::isnan(info.grad));
  CHECK(boost::in_degree(tensor, g) == 6);
  for (const auto edge : boost::make_iterator_range(boost::in_edges(tensor, g))) {
    CHECK(g[edge].input_nr == 0);
    CHECK(std::isnan(g[edge].partial));
    CHECK(g[edge].element == -1);
    CHECK(g[boost::source(edge, g)].name == "a" + std::to_string(boost::source(edge, g) + 1));
  }
  const auto into_e = in_edges_of(g, e.node());
  REQUIRE(into_e.size() == 1);
  CHECK(into_e.begin()->first.first == tensor);
  CHECK(into_e.begin()->second.element == 4);
  CHECK(into_e.begin()->second.partial == 3.0);
  REQUIRE(boost::in_degree(tensor2, g) == 1);
  CHECK(boost::source(*boost::in_edges(tensor2, g).first, g) == tensor);

  SECTION("an operand range past the end of the tape is an Error naming the op") {
    const TensorArg bad[] = {TensorArg{1000, Shape{3}}};
    tape.record_tensor(test::scale2_info, Shape{3}, bad);
    CHECK_THROWS_WITH(graph::view(tape),
                      Catch::Contains("view: operand 0 of scale2") && Catch::Contains("reads slots 1000..1003"));
  }
}

TEST_CASE("view: scopes and names, node_label and node_named", "[graph][view]") {
  Tape tape;
  Var x = tape.input(1.0, "x");
  Var inner, outer;
  {
    ScopeGuard net(tape, "net");
    outer = x * 2.0;
    ScopeGuard conv(tape, "conv");
    inner = tanh(outer).named("h");
  }
  Var after = inner + 1.0;
  const TapeGraph g = graph::view(tape);
  CHECK(g[x.node()].scope.empty());
  CHECK(g[outer.node()].scope == "net");
  CHECK(g[inner.node()].scope == "net/conv");
  CHECK(g[after.node()].scope.empty());
  CHECK(graph::node_label(g, inner.node()) == "h");
  CHECK(graph::node_label(g, outer.node()) == "mul#" + std::to_string(outer.node()));
  CHECK(graph::node_named(g, "h") == inner.node());
  CHECK_THROWS_WITH(graph::node_named(g, "nope"), Catch::Contains("node_named: no node is named 'nope'"));
  // A second 'h' is refused when it is named (Note [Name clashes]), so node_named never meets two.
  CHECK_THROWS_WITH(tape.set_name(after.node(), "h"), Catch::Contains("clashes with 'h'"));
  CHECK(graph::node_named(graph::view(tape), "h") == inner.node());
}

TEST_CASE("topological_order agrees with tape order on random graphs", "[graph][topo]") {
  for (unsigned seed = 1; seed <= 50; ++seed) {
    std::mt19937 rng(seed);
    Tape tape;
    std::vector<Var> inputs;
    test::random_dag(tape, rng, 5, 60, inputs);
    const TapeGraph g = graph::view(tape);
    const std::vector<NodeId> order = graph::topological_order(g);
    REQUIRE(order.size() == tape.node_count());
    std::vector<std::size_t> position(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) position[order[i]] = i;
    for (const auto e : boost::make_iterator_range(boost::edges(g))) {
      const auto u = boost::source(e, g), v = boost::target(e, g);
      INFO("seed " << seed << ", edge " << u << " -> " << v);
      CHECK(u < v);                      // forward in tape order
      CHECK(position[u] < position[v]);  // forward in the topological order
    }
  }
}

TEST_CASE("topological_order and the path functions reject graphs not in tape order", "[graph][topo]") {
  TapeGraph cycle(2);
  boost::add_edge(0, 1, cycle);
  boost::add_edge(1, 0, cycle);
  CHECK_THROWS_WITH(graph::topological_order(cycle), Catch::Contains("topological_order: the graph has a cycle"));

  TapeGraph backwards(3);
  boost::add_edge(0, 2, backwards);
  boost::add_edge(2, 1, backwards);
  CHECK_THROWS_WITH(graph::count_paths(backwards, 0, 2), Catch::Contains("count_paths: edge #2 -> #1 goes backwards"));
  CHECK_THROWS_WITH(graph::count_paths(backwards, 0, 7),
                    Catch::Contains("count_paths: node 7 is not in the graph (it has 3 nodes)"));
}
