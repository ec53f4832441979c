// SPDX-License-Identifier: MIT
// The layered DOT (DotOptions::layered): read back with boost::read_graphviz (HTML
// labels, cell ports), names instead of ids, highlighted paths, symbolic partials,
// collapse groups and the focus mask.
#include <boost/graph/graphviz.hpp>
#include <catch2/catch.hpp>
#include <set>
#include <sstream>

#include "graph/graph.hpp"
#include "graph_fixtures.hpp"

using namespace gradpath;
using graph::TapeGraph;

namespace {
struct ReadNode {
  std::string id, label, color;
};
struct ReadEdge {
  std::string id, label, color, style;
};
using ReadGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, ReadNode, ReadEdge>;

// Boost 1.74's read_graphviz rejects HTML-like labels (label=<<B>x</B>>): each one is
// turned into the quoted string of its text first; ports and everything else are read as is.
std::string quote_html_labels(const std::string& dot) {
  std::string out;
  for (std::size_t i = 0; i < dot.size(); ++i) {
    if (dot[i] != '<' || i == 0 || dot[i - 1] != '=') {
      out += dot[i];
      continue;
    }
    int depth = 0;
    std::string text;
    for (; i < dot.size(); ++i) {
      if (dot[i] == '<') ++depth;
      if (dot[i] == '>') --depth;
      if (dot[i] == '"' || dot[i] == '\\') text += '\\';
      text += dot[i];
      if (depth == 0) break;
    }
    out += '"' + text.substr(1, text.size() - 2) + '"';
  }
  return out;
}

ReadGraph read_back(const std::string& dot) {
  ReadGraph r;
  boost::dynamic_properties dp(boost::ignore_other_properties);
  dp.property("node_id", boost::get(&ReadNode::id, r));
  dp.property("label", boost::get(&ReadNode::label, r));
  dp.property("color", boost::get(&ReadNode::color, r));
  dp.property("id", boost::get(&ReadEdge::id, r));
  dp.property("label", boost::get(&ReadEdge::label, r));
  dp.property("color", boost::get(&ReadEdge::color, r));
  dp.property("style", boost::get(&ReadEdge::style, r));
  std::istringstream in(quote_html_labels(dot));
  REQUIRE(boost::read_graphviz(in, r, dp));
  return r;
}

std::vector<NodeId> nodes_of(const TensorVar& t) {
  std::vector<NodeId> out;
  for (std::size_t i = 0; i < t.size(); ++i) out.push_back(t[i].node());
  return out;
}

graph::DotOptions seed_options(const test::SeedNet& net) {
  graph::DotOptions o{.edge_labels = false};
  o.layered = true;
  o.tensors = {{"a", Shape{5, 5}, nodes_of(net.a)},
               {"w", Shape{3, 3}, nodes_of(net.w)},
               {"v", Shape{4}, nodes_of(net.v)},
               {"z", Shape{4}, {net.z[0].node(), net.z[1].node(), net.z[2].node(), net.z[3].node()}}};
  return o;
}

std::string dot_of(const TapeGraph& g, const graph::DotOptions& o) {
  std::ostringstream out;
  graph::write_dot(out, g, o);
  return out.str();
}
}  // namespace

TEST_CASE("layered dot: grids, names, element order, read back", "[graph][dot][layered]") {
  test::SeedNet net(3);
  net.tape.backward(net.L);
  const TapeGraph g = graph::view(net.tape);
  const std::string dot = dot_of(g, seed_options(net));
  const ReadGraph r = read_back(dot);
  std::set<std::string> ids;
  std::size_t invisible = 0;
  for (const auto v : boost::make_iterator_range(boost::vertices(r))) ids.insert(r[v].id);
  for (const auto e : boost::make_iterator_range(boost::edges(r))) invisible += r[e].style == "invis";
  // a and w are one table node each (t0, t1), v another; every other node is n<id>.
  CHECK(ids.count("t0"));
  CHECK(ids.count("t1"));
  CHECK(ids.count("t2"));
  CHECK_FALSE(ids.count("n" + std::to_string(net.a[0].node())));
  // Products are named from their operands, never "#id".
  CHECK(dot.find("w1·a1") != std::string::npos);
  CHECK(dot.find("w9·a25") != std::string::npos);
  CHECK(dot.find("mul#") == std::string::npos);
  CHECK(dot.find("pow#") == std::string::npos);
  // The a grid holds its 25 cells in 5 rows; w's 9 in 3.
  CHECK(dot.find("PORT=\"c24\"") != std::string::npos);
  CHECK(dot.find("<TD COLSPAN=\"5\"><B>a</B>") != std::string::npos);
  // Each z_k's 9 products in one rank chained in order (8 invisible edges each), z1..z4 too.
  CHECK(invisible == 4 * 8);
  CHECK(graph::drawn_name(g, net.product[1][0].node()) == "w1·a3");
}

TEST_CASE("layered dot: highlight, symbolic partials and the product table", "[graph][dot][layered]") {
  test::SeedNet net(4);
  net.tape.backward(net.L);
  const TapeGraph g = graph::view(net.tape);
  graph::DotOptions o = seed_options(net);
  const NodeId w1 = net.w[0].node();
  o.highlight_paths = {{w1, net.L.node()}};
  o.edge_labels = true;
  o.edge_symbols = graph::edge_symbols(net.tape, g);
  o.path_products = true;
  const std::string dot = dot_of(g, o);
  const ReadGraph r = read_back(dot);
  std::set<std::string> red;
  for (const auto e : boost::make_iterator_range(boost::edges(r))) {
    if (r[e].color == "red") red.insert(r[e].id);
  }
  // w1 -> 4 products -> z -> vz -> y -> diff -> square -> L: 19 edges.
  CHECK(red.size() == 19);
  CHECK(red.count("e" + std::to_string(w1) + "_" + std::to_string(net.product[1][0].node())));
  // The edge w1 -> w1·a3 carries a3 and its value.
  bool labelled = false;
  for (const auto e : boost::make_iterator_range(boost::edges(r))) {
    if (r[e].id == "e" + std::to_string(w1) + "_" + std::to_string(net.product[1][0].node())) {
      labelled = r[e].label.starts_with("a3 = ");
    }
  }
  CHECK(labelled);
  // The legend lists 4 paths and their sum beside the engine's grad.
  CHECK(dot.find("sum over 4 paths") != std::string::npos);
}

TEST_CASE("layered dot: collapse groups and the focus mask", "[graph][dot][layered]") {
  test::SeedNet net(5);
  const TapeGraph g = graph::view(net.tape);
  graph::DotOptions o = seed_options(net);
  o.collapse_scopes = {"conv"};
  const ReadGraph r = read_back(dot_of(g, o));
  std::size_t boxes = 0;
  for (const auto v : boost::make_iterator_range(boost::vertices(r))) {
    if (r[v].id.starts_with("g")) {
      ++boxes;
      CHECK(r[v].label == "conv (40 nodes)");
    }
  }
  CHECK(boxes == 1);

  const auto mask = graph::near(g, net.y.node(), 1);
  std::size_t shown = 0;
  for (const char c : mask) shown += c != 0;
  CHECK(shown == 1 + 5 + 1);  // y, its 5 operands (4 v·z and b), diff
  graph::DotOptions focus = seed_options(net);
  focus.shown = mask;
  const ReadGraph f = read_back(dot_of(g, focus));
  CHECK(boost::num_vertices(f) == 7);
  CHECK_THROWS_WITH(dot_of(g, {.collapse_scopes = {"nothing"}, .layered = true}),
                    Catch::Contains("no node is in that scope"));
}
