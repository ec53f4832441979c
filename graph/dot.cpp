// SPDX-License-Identifier: MIT
// DOT export: micrograd-style record nodes, highlighted paths, scope clusters, collapsing.
#include <algorithm>
#include <boost/graph/graphviz.hpp>
#include <boost/property_map/function_property_map.hpp>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <range/v3/view/enumerate.hpp>
#include <sstream>
#include <unordered_map>

#include "graph/graph.hpp"
#include "graph/walk.hpp"

namespace gradpath::graph {

namespace {

namespace rv = ranges::views;

constexpr const char* palette[] = {"red", "blue", "darkgreen", "darkorange", "purple", "brown"};
constexpr std::size_t palette_size = std::size(palette);
constexpr std::size_t none = ~std::size_t{0};  // no colour, no box, no parent cluster

// Label text for Graphviz, before dot_string() wraps it. Graphviz reads \ as an escape
// (\n, \l, \N ...) in every label, so a backslash is doubled and a newline becomes \n;
// in a record label { } | < > are field syntax and get a backslash too. The quote is
// left to dot_string(): a record-level \" would read as \\" in the file, which Graphviz
// takes as an escaped backslash ending the string.
std::string escape_label(std::string_view text, bool record) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '{':
      case '}':
      case '|':
      case '<':
      case '>':
        if (record) out += '\\';
        out += c;
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A DOT string: boost::escape_dot_string always quotes text like ours, but it first
// runs a regex match, which made write_dot ten times slower on large graphs.
std::string dot_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out += '\\';
    out += c;
  }
  return out + '"';
}

// write_graphviz prints every vertex id through escape_dot_string too; this overload,
// found by argument-dependent lookup, prints our ids (plain numbers) without the regex.
struct DotId {
  std::size_t value;
};
std::string escape_dot_string(const DotId& id) { return std::to_string(id.value); }

std::string number(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6g", x);
  return buffer;
}

std::string record_label(const NodeInfo& info, const DotOptions& options) {
  std::string label = "{ " + escape_label(info.name.empty() ? "#" + std::to_string(info.id) : info.name, true) + " | " +
                      escape_label(info.op_name, true);
  if (info.is_tensor) {
    const std::string kind = info.dtype == DType::f32 ? "float32 tensor" : "tensor";
    label += " | " + escape_label(kind + info.shape.str(), true);
  }
  if (!info.is_tensor || info.shape.size() == 1) {  // a one-element tensor has one value
    if (options.values) label += " | value " + number(info.value);
    if (options.grads) label += " | grad " + number(info.grad);
  }
  return label + " }";
}

// What gets drawn: a tape node, or one box standing for a collapsed scope.
struct DrawNode {
  std::string label;
  std::string cluster;  // the scope path whose cluster holds it, "" for none
  bool box = false;
  std::size_t colour = none;
};
struct DrawEdge {
  std::string label;
  std::size_t count = 1;  // tape edges merged into this one
  std::size_t colour = none;
};
// bidirectionalS: its edges(g) walks one edge list (directedS trips a g++ 12 false
// -Wmaybe-uninitialized inside boost's edge iterator).
using DrawGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, DrawNode, DrawEdge>;

struct Cluster {
  std::string name;  // last component of the scope path
  std::vector<std::size_t> members, children;
};

// The clusters of the drawn nodes, nested by scope path ("net/conv" inside "net").
struct ClusterTree {
  std::vector<Cluster> clusters;
  std::vector<std::size_t> roots;
  std::unordered_map<std::string, std::size_t> index;

  std::size_t of(const std::string& path) {
    std::size_t parent = none;
    for (std::size_t end = 0; end != std::string::npos;) {
      end = path.find('/', end + 1);
      const std::string prefix = path.substr(0, end);
      auto [it, added] = index.try_emplace(prefix, clusters.size());
      if (added) {
        clusters.push_back(Cluster{prefix.substr(prefix.rfind('/') + 1), {}, {}});
        (parent == none ? roots : clusters[parent].children).push_back(it->second);
      }
      parent = it->second;
    }
    return parent;
  }

  // Recursion depth is the scope nesting depth, a handful.
  void write(std::ostream& out, std::size_t c) const {
    out << "subgraph cluster_" << c << " {\nlabel=" << dot_string(escape_label(clusters[c].name, false)) << ";\n";
    for (const std::size_t child : clusters[c].children) write(out, child);
    for (const std::size_t v : clusters[c].members) out << v << ";\n";
    out << "}\n";
  }
};

// The collapsed scope a node falls in: the outermost listed scope holding it, or -1.
std::ptrdiff_t collapsed_scope(const std::string& scope, const std::vector<std::string>& collapse) {
  std::ptrdiff_t best = -1;
  for (auto [i, c] : rv::enumerate(collapse)) {
    const bool inside = scope == c || (scope.size() > c.size() && scope.starts_with(c) && scope[c.size()] == '/');
    if (inside && (best < 0 || c.size() < collapse[static_cast<std::size_t>(best)].size())) {
      best = static_cast<std::ptrdiff_t>(i);
    }
  }
  return best;
}

DrawGraph draw_graph(const TapeGraph& g, const DotOptions& options) {
  const std::size_t n = boost::num_vertices(g);
  // Highlights: a colour per node and per edge, edges numbered in out-edge order.
  std::vector<std::size_t> edge_base(n + 1, 0);
  for (std::size_t v = 0; v < n; ++v) edge_base[v + 1] = edge_base[v] + boost::out_degree(v, g);
  std::vector<std::size_t> node_colour(n, none), edge_colour(edge_base[n], none);
  for (auto [p, ends] : rv::enumerate(options.highlight_paths)) {
    const detail::Between b = detail::between(g, ends.first, ends.second, "write_dot (highlight_paths)");
    for (NodeId v = b.from; !b.empty() && v <= b.to; ++v) {
      if (!b.contains(v)) continue;
      if (node_colour[v] == none) node_colour[v] = p % palette_size;
      std::size_t k = edge_base[v];
      for (const Edge e : boost::make_iterator_range(boost::out_edges(v, g))) {
        std::size_t& colour = edge_colour[k++];
        if (b.contains(static_cast<NodeId>(boost::target(e, g))) && colour == none) colour = p % palette_size;
      }
    }
  }

  DrawGraph d;
  std::vector<std::size_t> draw_of(n);
  std::vector<std::size_t> box(options.collapse_scopes.size(), none), box_nodes(box.size(), 0);
  for (std::size_t v = 0; v < n; ++v) {
    const std::ptrdiff_t c =
        options.collapse_scopes.empty() ? -1 : collapsed_scope(g[v].scope, options.collapse_scopes);
    if (c < 0) {
      draw_of[v] = boost::add_vertex(DrawNode{record_label(g[v], options), g[v].scope, false, node_colour[v]}, d);
      continue;
    }
    const auto i = static_cast<std::size_t>(c);
    if (box[i] == none) {
      const std::string& scope = options.collapse_scopes[i];
      const std::size_t slash = scope.rfind('/');
      box[i] = boost::add_vertex(DrawNode{{}, slash == std::string::npos ? "" : scope.substr(0, slash), true}, d);
    }
    draw_of[v] = box[i];
    ++box_nodes[i];
    if (d[box[i]].colour == none) d[box[i]].colour = node_colour[v];
  }
  for (auto [i, scope] : rv::enumerate(options.collapse_scopes)) {
    if (box[i] == none) throw Error("write_dot: collapse_scopes names '" + scope + "', but no node is in that scope");
    d[box[i]].label =
        escape_label(scope, false) + " (" + std::to_string(box_nodes[i]) + (box_nodes[i] == 1 ? " node)" : " nodes)");
  }

  // Edges touching a box are merged per (source, target) pair; the rest stay one to one.
  struct Pending {
    std::size_t source, target;
    DrawEdge edge;
  };
  std::vector<Pending> edges;
  std::unordered_map<std::uint64_t, std::size_t> merged;
  for (std::size_t v = 0; v < n; ++v) {
    std::size_t k = edge_base[v];
    for (const Edge e : boost::make_iterator_range(boost::out_edges(v, g))) {
      const std::size_t colour = edge_colour[k++];
      const std::size_t s = draw_of[v], t = draw_of[boost::target(e, g)];
      if (s == t) continue;  // inside one box
      const EdgeInfo& info = g[e];
      std::string label = std::isnan(info.partial) ? "input " + std::to_string(info.input_nr) : number(info.partial);
      if (!d[s].box && !d[t].box) {
        edges.push_back(Pending{s, t, DrawEdge{std::move(label), 1, colour}});
        continue;
      }
      auto [it, added] = merged.try_emplace(std::uint64_t{s} << 32 | t, edges.size());
      if (added) {
        edges.push_back(Pending{s, t, DrawEdge{std::move(label), 1, colour}});
      } else {
        DrawEdge& edge = edges[it->second].edge;
        edge.label = std::to_string(++edge.count) + " edges";
        if (edge.colour == none) edge.colour = colour;
      }
    }
  }
  for (const Pending& p : edges) boost::add_edge(p.source, p.target, p.edge, d);
  return d;
}

}  // namespace

// Note [DOT clusters]: write_graphviz prints "digraph G {", then whatever the graph
// property writer prints, then the nodes and edges. Clusters go in that graph part as
// "subgraph cluster_N { label=...; 3; 4; }": a node listed first inside a subgraph
// belongs to it, and its attributes, given later at the top level, do not move it. So
// boost still writes every node and edge, and no DOT is pasted together by hand.
void write_dot(std::ostream& out, const TapeGraph& g, const DotOptions& options) {
  static constexpr std::string_view rankdirs[] = {"LR", "RL", "TB", "BT"};
  if (std::find(std::begin(rankdirs), std::end(rankdirs), options.rankdir) == std::end(rankdirs)) {
    throw Error("write_dot: rankdir must be LR, RL, TB or BT, got '" + options.rankdir + "'");
  }
  const DrawGraph d = draw_graph(g, options);
  ClusterTree tree;
  if (options.clusters) {
    for (std::size_t v = 0; v < boost::num_vertices(d); ++v) {
      if (!d[v].cluster.empty()) tree.clusters[tree.of(d[v].cluster)].members.push_back(v);
    }
  }
  auto graph_writer = [&](std::ostream& os) {
    os << "rankdir=" << options.rankdir << ";\nnode [shape=record];\n";
    for (const std::size_t root : tree.roots) tree.write(os, root);
  };
  auto node_writer = [&](std::ostream& os, DrawGraph::vertex_descriptor v) {
    os << "[label=" << dot_string(d[v].label);
    if (d[v].box) os << ", shape=box, style=filled, fillcolor=lightgrey";
    if (d[v].colour != none) os << ", color=" << palette[d[v].colour] << ", penwidth=2";
    os << "]";
  };
  auto edge_writer = [&](std::ostream& os, DrawGraph::edge_descriptor e) {
    const DrawEdge& edge = d[e];
    const bool label = options.edge_labels || edge.count > 1;
    if (!label && edge.colour == none) return;
    os << "[";
    if (label) os << "label=" << dot_string(edge.label);
    if (edge.colour != none) os << (label ? ", " : "") << "color=" << palette[edge.colour] << ", penwidth=2";
    os << "]";
  };
  // write_graphviz ends every line with std::endl; a string buffer makes those flushes
  // free instead of one write call per line on a file.
  std::ostringstream buffer;
  const auto ids = boost::make_function_property_map<std::size_t>([](std::size_t v) { return DotId{v}; });
  boost::write_graphviz(buffer, d, node_writer, edge_writer, graph_writer, ids);
  out << buffer.view();
}

}  // namespace gradpath::graph
