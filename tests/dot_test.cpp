// SPDX-License-Identifier: MIT
// DOT export: every file is read back with boost::read_graphviz and, when Graphviz is
// installed, rendered by dot; escaping, highlighted paths, clusters and collapsing.
#include <unistd.h>
#include <boost/graph/graphviz.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "graph/graph.hpp"
#include "graph_fixtures.hpp"

using namespace gradpath;
using graph::TapeGraph;

namespace {
struct ReadNode {
  std::string id, label, color, shape;
};
struct ReadEdge {
  std::string label, color;
};
using ReadGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, ReadNode, ReadEdge>;

std::string dot_of(const TapeGraph& g, const graph::DotOptions& options = {}) {
  std::ostringstream out;
  graph::write_dot(out, g, options);
  return out.str();
}

ReadGraph read_back(const std::string& dot) {
  ReadGraph r;
  boost::dynamic_properties dp(boost::ignore_other_properties);
  dp.property("node_id", boost::get(&ReadNode::id, r));
  dp.property("label", boost::get(&ReadNode::label, r));
  dp.property("color", boost::get(&ReadNode::color, r));
  dp.property("shape", boost::get(&ReadNode::shape, r));
  dp.property("label", boost::get(&ReadEdge::label, r));
  dp.property("color", boost::get(&ReadEdge::color, r));
  std::istringstream in(dot);
  REQUIRE(boost::read_graphviz(in, r, dp));
  return r;
}

NodeId id_of(const ReadGraph& r, ReadGraph::vertex_descriptor v) { return static_cast<NodeId>(std::stoul(r[v].id)); }

// The fields of a record label "{ a | b }" as Graphviz shows them: split at unescaped
// '|', then \{ \} \| \< \> \\ give the character and \n a newline.
std::vector<std::string> record_fields(const std::string& label) {
  REQUIRE(label.size() >= 4);
  REQUIRE(label.substr(0, 2) == "{ ");
  REQUIRE(label.substr(label.size() - 2) == " }");
  std::vector<std::string> fields(1);
  const std::string body = label.substr(2, label.size() - 4);
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\\' && i + 1 < body.size()) {
      fields.back() += body[i + 1] == 'n' ? '\n' : body[i + 1];
      ++i;
    } else if (body.compare(i, 3, " | ") == 0) {
      fields.emplace_back();
      i += 2;
    } else {
      fields.back() += body[i];
    }
  }
  return fields;
}

// Renders with Graphviz when it is installed (it is in CI) and checks dot accepts it.
void render(const std::string& dot, const std::string& name) {
  if (std::system("command -v dot > /dev/null 2>&1") != 0) {
    WARN("Graphviz dot is not installed: not rendering " << name);
    return;
  }
  const auto dir = std::filesystem::temp_directory_path();
  const auto base = "gradpath_dot_test_" + name + "_" + std::to_string(::getpid());
  const auto file = dir / (base + ".dot"), svg = dir / (base + ".svg");
  std::ofstream(file) << dot;
  const std::string command = "dot -Tsvg '" + file.string() + "' -o '" + svg.string() + "' 2>&1";
  INFO(command);
  CHECK(std::system(command.c_str()) == 0);
  CHECK(std::filesystem::file_size(svg) > 0);
  std::filesystem::remove(file);
  std::filesystem::remove(svg);
}

using EdgeKey = std::pair<NodeId, NodeId>;
std::multiset<EdgeKey> edge_keys(const TapeGraph& g) {
  std::multiset<EdgeKey> keys;
  for (const auto e : boost::make_iterator_range(boost::edges(g))) {
    keys.emplace(static_cast<NodeId>(boost::source(e, g)), static_cast<NodeId>(boost::target(e, g)));
  }
  return keys;
}
std::multiset<EdgeKey> edge_keys(const ReadGraph& r) {
  std::multiset<EdgeKey> keys;
  for (const auto e : boost::make_iterator_range(boost::edges(r))) {
    keys.emplace(id_of(r, boost::source(e, r)), id_of(r, boost::target(e, r)));
  }
  return keys;
}
}  // namespace

TEST_CASE("write_dot: every node and edge reads back, with its fields", "[graph][dot]") {
  test::SeedNet net(3);
  net.tape.backward(net.L);
  const TapeGraph g = graph::view(net.tape);
  const std::string dot = dot_of(g);
  const ReadGraph r = read_back(dot);
  CHECK(boost::num_vertices(r) == net.tape.node_count());
  CHECK(boost::num_edges(r) == boost::num_edges(g));
  CHECK(edge_keys(r) == edge_keys(g));
  for (const auto v : boost::make_iterator_range(boost::vertices(r))) {
    const graph::NodeInfo& info = g[id_of(r, v)];
    const std::vector<std::string> fields = record_fields(r[v].label);
    INFO(r[v].label);
    REQUIRE(fields.size() == 4);
    CHECK(fields[0] == (info.name.empty() ? "#" + std::to_string(info.id) : info.name));
    CHECK(fields[1] == info.op_name);
    REQUIRE(fields[2].substr(0, 6) == "value ");
    REQUIRE(fields[3].substr(0, 5) == "grad ");
    CHECK(std::stod(fields[2].substr(6)) == Approx(info.value).epsilon(1e-5).margin(1e-12));
    CHECK(std::stod(fields[3].substr(5)) == Approx(info.grad).epsilon(1e-5).margin(1e-12));
  }
  CHECK(dot_of(g) == dot);  // deterministic
  render(dot, "seed");

  SECTION("without values and grads a node has two fields") {
    const ReadGraph bare = read_back(dot_of(g, {.values = false, .grads = false}));
    for (const auto v : boost::make_iterator_range(boost::vertices(bare))) {
      CHECK(record_fields(bare[v].label).size() == 2);
    }
  }
  SECTION("edge labels are the partials") {
    const std::string labelled = dot_of(g, {.edge_labels = true});
    const ReadGraph lr = read_back(labelled);
    std::map<EdgeKey, std::multiset<double>> expected, found;
    for (const auto e : boost::make_iterator_range(boost::edges(g))) {
      expected[{static_cast<NodeId>(boost::source(e, g)), static_cast<NodeId>(boost::target(e, g))}].insert(
          g[e].partial);
    }
    for (const auto e : boost::make_iterator_range(boost::edges(lr))) {
      const EdgeKey key{id_of(lr, boost::source(e, lr)), id_of(lr, boost::target(e, lr))};
      const double partial = std::stod(lr[e].label);
      const auto& candidates = expected.at(key);
      CHECK(std::any_of(candidates.begin(), candidates.end(),
                        [&](double p) { return std::abs(p - partial) <= 1e-5 * std::abs(p) + 1e-12; }));
    }
    // w1 -> w1*a1 carries d(w1 a1)/d w1 = a1.
    const auto w1 = net.w[0].node(), p = net.product[0][0].node();
    for (const auto e : boost::make_iterator_range(boost::edges(lr))) {
      if (id_of(lr, boost::source(e, lr)) == w1 && id_of(lr, boost::target(e, lr)) == p) {
        CHECK(std::stod(lr[e].label) == Approx(net.image[0]).epsilon(1e-5));
      }
    }
    render(labelled, "labelled");
  }
}

TEST_CASE("write_dot: a golden file for a tiny graph with nested scopes", "[graph][dot]") {
  Tape tape;
  Var x = tape.input(2.0, "x"), y = tape.input(3.0, "y");
  Var p;
  {
    ScopeGuard net(tape, "net");
    ScopeGuard conv(tape, "conv");
    p = (x * y).named("p");
  }
  Var q = p + 1.0;
  tape.backward(q);
  const TapeGraph g = graph::view(tape);
  const std::string expected =
      "digraph G {\n"
      "rankdir=TB;\n"
      "node [shape=record];\n"
      "subgraph cluster_0 {\n"
      "label=\"net\";\n"
      "subgraph cluster_1 {\n"
      "label=\"conv\";\n"
      "2;\n"
      "}\n"
      "}\n"
      "0[label=\"{ x | input | value 2 | grad 3 }\"];\n"
      "1[label=\"{ y | input | value 3 | grad 2 }\"];\n"
      "2[label=\"{ p | mul | value 6 | grad 1 }\"];\n"
      "3[label=\"{ #3 | add | value 7 | grad 1 }\"];\n"
      "0->2 [label=\"3\"];\n"
      "1->2 [label=\"2\"];\n"
      "2->3 [label=\"1\"];\n"
      "}\n";
  const std::string dot = dot_of(g, {.edge_labels = true, .rankdir = "TB"});
  CHECK(dot == expected);
  render(dot, "golden");
  CHECK(dot_of(g, {.clusters = false}).find("subgraph") == std::string::npos);
  CHECK_THROWS_WITH(dot_of(g, {.rankdir = "XY"}),
                    Catch::Contains("write_dot: rankdir must be LR, RL, TB or BT, got 'XY'"));
}

TEST_CASE("write_dot: hostile names are escaped for records, DOT strings and clusters", "[graph][dot]") {
  const std::vector<std::string> names = {"a{b}|<c>\"d\\", "line1\nline2", "\\\"", "\"\\\\\"", "<>{}|", "\\n", "x y"};
  Tape tape;
  std::vector<Var> leaves;
  {
    ScopeGuard scope(tape, "s\"c\\o{pe}");
    for (const std::string& name : names) leaves.push_back(tape.input(1.5, name));
  }
  Var total = leaves[0];
  for (std::size_t i = 1; i < leaves.size(); ++i) total = total + leaves[i];
  const TapeGraph g = graph::view(tape);
  const std::string dot = dot_of(g);
  const ReadGraph r = read_back(dot);
  REQUIRE(boost::num_vertices(r) == tape.node_count());
  for (const auto v : boost::make_iterator_range(boost::vertices(r))) {
    const NodeId id = id_of(r, v);
    INFO("node " << id << " label " << r[v].label);
    const std::vector<std::string> fields = record_fields(r[v].label);
    REQUIRE(fields.size() == 4);
    if (id < names.size()) CHECK(fields[0] == names[id]);
  }
  render(dot, "hostile");
  const std::string collapsed = dot_of(g, {.collapse_scopes = {"s\"c\\o{pe}"}});
  const ReadGraph rc = read_back(collapsed);
  CHECK(boost::num_vertices(rc) == tape.node_count() - names.size() + 1);
  REQUIRE(rc[0].id == "0");
  CHECK(rc[0].label == "s\"c\\\\o{pe} (7 nodes)");  // after DOT unquoting; \\ is Graphviz's escaped backslash
  render(collapsed, "hostile_collapsed");
}

TEST_CASE("write_dot: highlight colours exactly the 4 paths from w1 to L", "[graph][dot][seed]") {
  test::SeedNet net(5);
  const TapeGraph g = graph::view(net.tape);
  const NodeId w1 = net.w[0].node();
  std::set<NodeId> on_paths{w1, net.y.node(), net.diff.node(), net.square.node(), net.L.node()};
  std::multiset<EdgeKey> path_edges{
      {net.y.node(), net.diff.node()}, {net.diff.node(), net.square.node()}, {net.square.node(), net.L.node()}};
  for (int k = 0; k < 4; ++k) {
    const NodeId p = net.product[k][0].node(), z = net.z[k].node(), vz = net.vz[k].node();
    on_paths.insert({p, z, vz});
    path_edges.insert({{w1, p}, {p, z}, {z, vz}, {vz, net.y.node()}});
  }
  REQUIRE(on_paths.size() == 17);
  REQUIRE(path_edges.size() == 19);

  // A second pair gets the next colour where it does not overlap the first.
  const NodeId a13 = net.a[12].node();
  const std::string dot = dot_of(g, {.highlight_paths = {{w1, net.L.node()}, {a13, net.z[0].node()}}});
  const ReadGraph r = read_back(dot);
  std::set<NodeId> red, blue;
  std::multiset<EdgeKey> red_edges;
  for (const auto v : boost::make_iterator_range(boost::vertices(r))) {
    if (r[v].color == "red") red.insert(id_of(r, v));
    if (r[v].color == "blue") blue.insert(id_of(r, v));
  }
  for (const auto e : boost::make_iterator_range(boost::edges(r))) {
    if (r[e].color == "red") red_edges.emplace(id_of(r, boost::source(e, r)), id_of(r, boost::target(e, r)));
  }
  CHECK(red == on_paths);
  CHECK(red_edges == path_edges);
  // a13 reaches z1 only through w9*a13 (tap 9 of output 1).
  CHECK(blue == std::set<NodeId>{a13, net.product[0][8].node()});
  render(dot, "highlight");
  CHECK_THROWS_WITH(dot_of(g, {.highlight_paths = {{w1, 99999}}}),
                    Catch::Contains("write_dot (highlight_paths): node 99999 is not in the graph"));
}

TEST_CASE("write_dot: collapsing a 10,000-node scope into one box", "[graph][dot]") {
  Tape tape;
  Var x = tape.input(0.3, "x");
  Var c = x;
  {
    ScopeGuard big(tape, "big");
    // 10,000 nodes; x is read by each of the 5,000 muls, twice by the first (x * x).
    for (int i = 0; i < 5000; ++i) c = tanh(c * x);
  }
  Var L = (c * x).named("L");
  const TapeGraph g = graph::view(tape);
  REQUIRE(boost::num_vertices(g) == 10002);

  const std::string dot = dot_of(g, {.highlight_paths = {{x.node(), L.node()}}, .collapse_scopes = {"big"}});
  const ReadGraph r = read_back(dot);
  REQUIRE(boost::num_vertices(r) == 3);
  // Drawn ids: x is 0, the box 1, L 2.
  std::map<EdgeKey, std::string> labels;
  for (const auto e : boost::make_iterator_range(boost::edges(r))) {
    labels[{id_of(r, boost::source(e, r)), id_of(r, boost::target(e, r))}] = r[e].label;
  }
  const auto box = boost::vertex(1, r);
  REQUIRE(id_of(r, box) == 1);
  CHECK(r[box].label == "big (10000 nodes)");
  CHECK(r[box].shape == "box");
  CHECK(r[box].color == "red");
  CHECK(record_fields(r[boost::vertex(0, r)].label)[0] == "x");
  CHECK(record_fields(r[boost::vertex(2, r)].label)[0] == "L");
  REQUIRE(boost::num_edges(r) == 3);
  CHECK(labels.at({0, 1}) == "5001 edges");
  CHECK(labels.at({1, 2}).empty());
  CHECK(labels.at({0, 2}).empty());
  render(dot, "collapsed");
  CHECK_THROWS_WITH(dot_of(g, {.collapse_scopes = {"nope"}}),
                    Catch::Contains("write_dot: collapse_scopes names 'nope', but no node is in that scope"));
}

TEST_CASE("write_dot: a tensor node shows its shape", "[graph][dot][tensor]") {
  Tape tape;
  const double values[] = {1, 2, 3, 4, 5, 6};
  TensorVar a = tape.input(values, Shape{2, 3}, "a");
  TensorVar s = test::scale2(a).named("s");
  Var e = s[4] * 3.0;
  tape.backward(e);
  const TapeGraph g = graph::view(tape);
  const std::string dot = dot_of(g, {.edge_labels = true});
  const ReadGraph r = read_back(dot);
  CHECK(boost::num_edges(r) == 7);
  const auto v = boost::vertex(s.first().node(), r);
  REQUIRE(id_of(r, v) == s.first().node());
  CHECK(record_fields(r[v].label) == std::vector<std::string>{"s", "scale2", "tensor[2, 3]"});
  render(dot, "tensor");
}
