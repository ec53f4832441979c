// SPDX-License-Identifier: MIT
// DOT export: micrograd-style record nodes, highlighted paths, scope clusters, collapsing.
#include <algorithm>
#include <boost/graph/graphviz.hpp>
#include <boost/property_map/function_property_map.hpp>
#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>
#include <range/v3/view/enumerate.hpp>
#include <set>
#include <sstream>
#include <unordered_map>

#include "graph/graph.hpp"
#include "graph/symbolic.hpp"
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

// ---- the layered layout -------------------------------------------------------------

// Text inside a Graphviz HTML-like label (and an attribute value there).
std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\n':
      case '\r':
        out += ' ';
        break;
      default:
        out += c;
    }
  }
  return out;
}

constexpr const char* pastel[] = {"#ffd6d6", "#d6e0ff", "#d6f5d6", "#ffe8cc", "#ecd6ff", "#eedccc"};

std::string tooltip(const TapeGraph& g, NodeId v) {
  const NodeInfo& info = g[v];
  std::string t = drawn_name(g, v) + " · " + info.op_name;
  if (info.is_tensor && info.shape.size() != 1) return t + " · tensor" + info.shape.str();
  return t + " · value " + number(info.value) + " · grad " + number(info.grad);
}

// Where a tape node is drawn: a plain node, a cell of a grid, or a collapsed group.
struct Place {
  enum Kind { Plain, Cell, Group } kind = Plain;
  std::size_t index = 0;  // the grid or group
  std::size_t cell = 0;
  std::string id() const {
    switch (kind) {
      case Cell:
        return "t" + std::to_string(index);
      case Group:
        return "g" + std::to_string(index);
      default:
        return "n" + std::to_string(index);
    }
  }
  std::string end() const { return kind == Cell ? id() + ":c" + std::to_string(cell) : id(); }
};

// Writes the layered DOT of `g`: each step below one part of the file, in order. The
// state the steps share (where each node is drawn, the highlight colours, the element
// boxes) lives here.
class LayeredWriter {
 public:
  LayeredWriter(std::ostream& out, const TapeGraph& g, const DotOptions& options)
      : out(out), g(g), options(options), n(boost::num_vertices(g)) {}

  void write() {
    validate();
    colour_highlights();
    place_nodes();
    out << "digraph G {\nrankdir=" << options.rankdir
        << ";\nnewrank=true;\nnodesep=0.08;\nranksep=0.35;\n"
           "node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=11, margin=\"0.06,0.02\", "
           "height=0.2];\nedge [arrowsize=0.5, color=\"#555555\", fontname=\"Helvetica\", fontsize=9];\n";
    write_grids_and_groups();
    write_clusters();
    write_plain_nodes();
    write_order();
    write_edges();
    write_legend();
    out << "}\n";
  }

 private:
  bool shown(std::size_t v) const { return options.shown.empty() || options.shown[v]; }

  void validate() {
    if (!options.shown.empty() && options.shown.size() != n) {
      throw Error("write_dot: shown has " + std::to_string(options.shown.size()) + " entries for " + std::to_string(n) +
                  " nodes");
    }
    for (const DotTensor& t : options.tensors) {
      for (const NodeId v : t.nodes) {
        if (v >= n)
          throw Error("write_dot: tensor '" + t.name + "' names node " + std::to_string(v) + ", not in the graph");
      }
    }
  }

  void colour_highlights() {
    // Highlights, as in draw_graph.
    edge_base.assign(n + 1, 0);
    for (std::size_t v = 0; v < n; ++v) edge_base[v + 1] = edge_base[v] + boost::out_degree(v, g);
    node_colour.assign(n, none);
    edge_colour.assign(edge_base[n], none);
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
  }

  void place_nodes() {
    // Groups: the listed ones, the listed scopes, then leaf tensors too large for a grid.
    groups = options.collapse_groups;
    place.resize(n);
    for (std::size_t v = 0; v < n; ++v) place[v] = Place{Place::Plain, v, 0};
    for (const std::string& scope : options.collapse_scopes) {
      DotGroup group{scope, {}};
      for (std::size_t v = 0; v < n; ++v) {
        if (collapsed_scope(g[v].scope, {scope}) == 0) group.nodes.push_back(static_cast<NodeId>(v));
      }
      if (group.nodes.empty())
        throw Error("write_dot: collapse_scopes names '" + scope + "', but no node is in that scope");
      groups.push_back(std::move(group));
    }
    // Grids: leaf tensors of scalar elements, rank 1 or 2.
    for (const DotTensor& t : options.tensors) {
      const bool leaves = t.nodes.size() > 1 && std::all_of(t.nodes.begin(), t.nodes.end(), [&](NodeId v) {
                            return is_leaf(g[v].op) && !g[v].is_tensor && place[v].kind == Place::Plain;
                          });
      if (!leaves || t.shape.rank() > 2) continue;
      if (t.nodes.size() > options.grid_limit) {
        groups.push_back(DotGroup{t.name + " " + t.shape.str(), t.nodes});
        continue;
      }
      for (auto [i, v] : rv::enumerate(t.nodes)) place[v] = Place{Place::Cell, grids.size(), i};
      grids.push_back(&t);
    }
    group_size.assign(groups.size(), 0);
    group_colour.assign(groups.size(), none);
    for (auto [k, group] : rv::enumerate(groups)) {
      for (const NodeId v : group.nodes) {
        if (v >= n) throw Error("write_dot: group '" + group.label + "' names node " + std::to_string(v));
        if (place[v].kind == Place::Group) continue;  // the first group holding it wins
        place[v] = Place{Place::Group, k, 0};
        ++group_size[k];
        if (group_colour[k] == none) group_colour[k] = node_colour[v];
      }
    }
  }

  void write_grids_and_groups() {
    // The grids: one table each, a cell per element, laid out in the tensor's shape.
    for (auto [k, t] : rv::enumerate(grids)) {
      if (std::none_of(t->nodes.begin(), t->nodes.end(), [&](NodeId v) { return shown(v); })) continue;
      const std::size_t cols = t->shape.rank() == 2 ? t->shape[1] : 1;
      out << "t" << k << " [shape=plaintext, style=\"\", id=\"t" << k
          << "\", label=<<TABLE BORDER=\"0\" CELLBORDER=\"1\" "
          << "CELLSPACING=\"0\" CELLPADDING=\"2\"><TR><TD COLSPAN=\"" << cols << "\"><B>" << escape_html(t->name)
          << "</B> " << escape_html(g[t->nodes[0]].op_name) << " " << escape_html(t->shape.str()) << "</TD></TR>";
      for (auto [i, v] : rv::enumerate(t->nodes)) {
        if (i % cols == 0) out << "<TR>";
        out << "<TD PORT=\"c" << i << "\" ID=\"n" << v << "\" HREF=\"#n" << v << "\" TOOLTIP=\""
            << escape_html(tooltip(g, v)) << "\"";
        if (node_colour[v] != none) out << " BGCOLOR=\"" << pastel[node_colour[v]] << "\"";
        out << ">" << escape_html(g[v].name.empty() ? drawn_name(g, v) : g[v].name);
        if (options.values || options.grads) {
          out << "<BR/><FONT POINT-SIZE=\"8\">";
          if (options.values) out << number(g[v].value);
          if (options.values && options.grads) out << " ";
          if (options.grads) out << "<I>g</I> " << number(g[v].grad);
          out << "</FONT>";
        }
        out << "</TD>";
        if (i % cols == cols - 1 || i + 1 == t->nodes.size()) out << "</TR>";
      }
      out << "</TABLE>>];\n";
    }
    for (auto [k, group] : rv::enumerate(groups)) {
      if (group_size[k] == 0) continue;
      out << "g" << k << " [shape=box3d, style=filled, fillcolor=lightgrey, id=\"g" << k << "\", label="
          << dot_string(escape_label(
                 group.label + " (" + std::to_string(group_size[k]) + (group_size[k] == 1 ? " node)" : " nodes)"),
                 false));
      if (group_colour[k] != none) out << ", color=" << palette[group_colour[k]] << ", penwidth=2";
      out << "];\n";
    }
  }

  void write_clusters() {
    // Clusters by scope, and inside them a box per tensor element with the unnamed nodes
    // that feed only it (the products of z1 under z1).
    owner_element.assign(n, none);
    feeders.assign(n, {});
    for (const DotTensor& t : options.tensors) {
      if (t.nodes.size() < 2) continue;
      for (const NodeId e : t.nodes) {
        if (place[e].kind != Place::Plain || !shown(e)) continue;
        for (const Edge in : boost::make_iterator_range(boost::in_edges(e, g))) {
          const auto u = static_cast<NodeId>(boost::source(in, g));
          if (!g[u].name.empty() || place[u].kind != Place::Plain || !shown(u) || boost::out_degree(u, g) != 1)
            continue;
          if (owner_element[u] == none) {
            owner_element[u] = e;
            feeders[e].push_back(u);
          }
        }
      }
    }
    ClusterTree tree;
    std::map<std::size_t, std::vector<NodeId>> element_boxes;  // cluster -> elements with feeders
    if (options.clusters) {
      for (std::size_t v = 0; v < n; ++v) {
        if (place[v].kind != Place::Plain || !shown(v) || owner_element[v] != none || g[v].scope.empty()) continue;
        const std::size_t c = tree.of(g[v].scope);
        if (feeders[v].empty()) {
          tree.clusters[c].members.push_back(v);
        } else {
          element_boxes[c].push_back(static_cast<NodeId>(v));
        }
      }
    }
    std::size_t next_box = 0;
    auto write_element_box = [&](NodeId e) {
      out << "subgraph cluster_e" << next_box++ << " {\nlabel=\"\";\nstyle=dashed;\ncolor=grey;\n";
      for (const NodeId u : feeders[e]) out << "n" << u << ";\n";
      out << "n" << e << ";\n";
      // The feeders in operand order (w1·a1 … w9·a9): one rank, chained by invisible edges.
      // Inside the box: a rank constraint across clusters can crash dot (merge_chain).
      if (feeders[e].size() > 1) {
        out << "subgraph {rank=same;";
        for (const NodeId u : feeders[e]) out << " n" << u << ";";
        out << "}\n";
        for (std::size_t i = 0; i + 1 < feeders[e].size(); ++i) {
          out << "n" << feeders[e][i] << " -> n" << feeders[e][i + 1] << " [style=invis];\n";
        }
      }
      out << "}\n";
    };
    // Recursion depth is the scope nesting depth.
    auto write_cluster = [&](auto& self, std::size_t c) -> void {
      out << "subgraph cluster_" << c << " {\nlabel=" << dot_string(escape_label(tree.clusters[c].name, false))
          << ";\nstyle=rounded;\ncolor=grey60;\n";
      for (const std::size_t child : tree.clusters[c].children) self(self, child);
      for (const std::size_t v : tree.clusters[c].members) out << "n" << v << ";\n";
      if (auto it = element_boxes.find(c); it != element_boxes.end()) {
        for (const NodeId e : it->second) write_element_box(e);
      }
      out << "}\n";
    };
    for (const std::size_t root : tree.roots) write_cluster(write_cluster, root);
    if (!options.clusters) {
      for (std::size_t v = 0; v < n; ++v) {
        if (!feeders[v].empty()) write_element_box(static_cast<NodeId>(v));
      }
    }
  }

  void write_plain_nodes() {
    // The plain nodes.
    for (std::size_t v = 0; v < n; ++v) {
      if (place[v].kind != Place::Plain || !shown(v)) continue;
      const NodeInfo& info = g[v];
      out << "n" << v << " [id=\"n" << v << "\", tooltip=" << dot_string(escape_label(tooltip(g, v), false))
          << ", label=<";
      const bool named = !info.name.empty();
      out << (named ? "<B>" : "") << escape_html(drawn_name(g, v)) << (named ? "</B>" : "");
      std::string detail;
      if (named || info.is_tensor) detail = info.op_name;
      if (info.is_tensor && info.shape.size() != 1) {
        detail += (info.dtype == DType::f32 ? " float32 tensor" : " tensor") + info.shape.str();
      } else {
        if (options.values) detail += (detail.empty() ? "" : " ") + number(info.value);
        if (options.grads) detail += (detail.empty() ? "" : " ") + std::string("\x01") + number(info.grad);
      }
      if (!detail.empty()) {
        std::string html = escape_html(detail);
        if (const auto at = html.find('\x01'); at != std::string::npos) html.replace(at, 1, "<I>g</I> ");
        out << "<BR/><FONT POINT-SIZE=\"8\">" << html << "</FONT>";
      }
      out << ">";
      if (node_colour[v] != none) {
        out << ", color=" << palette[node_colour[v]] << ", penwidth=2, style=\"rounded,filled\", fillcolor=\""
            << pastel[node_colour[v]] << "\"";
      }
      out << "];\n";
    }
  }

  void write_order() {
    // Order: each tensor's elements in one rank, in row-major order, by invisible edges;
    // the feeders of its elements in one rank, element by element.
    auto chain = [&](const std::vector<NodeId>& nodes) {
      if (nodes.size() < 2) return;
      out << "subgraph {rank=same;";
      for (const NodeId v : nodes) out << " n" << v << ";";
      out << "}\n";
      for (std::size_t i = 0; i + 1 < nodes.size(); ++i) {
        out << "n" << nodes[i] << " -> n" << nodes[i + 1] << " [style=invis];\n";
      }
    };
    // Elements in boxes of their own are ordered by their boxes; a tensor seen twice (a
    // flatten of it) is chained once.
    std::set<std::vector<NodeId>> chained;
    for (const DotTensor& t : options.tensors) {
      std::vector<NodeId> elements;
      bool boxed = false;
      for (const NodeId e : t.nodes) {
        if (place[e].kind != Place::Plain || !shown(e)) continue;
        elements.push_back(e);
        boxed = boxed || !feeders[e].empty();
      }
      if (!boxed && chained.insert(elements).second) chain(elements);
    }
  }

  void write_edges() {
    // The edges; those touching a group merged per pair of drawn nodes.
    struct Drawn {
      std::string from, to, id, label;
      std::size_t count = 1, colour = none;
    };
    std::vector<Drawn> edges;
    std::unordered_map<std::string, std::size_t> merged;
    for (std::size_t v = 0; v < n; ++v) {
      std::size_t k = edge_base[v];
      for (const Edge e : boost::make_iterator_range(boost::out_edges(v, g))) {
        const std::size_t index = k++;
        const auto t = boost::target(e, g);
        if (!shown(v) || !shown(t)) continue;
        const Place& s = place[v];
        const Place& d = place[t];
        if (s.kind == Place::Group && d.kind == Place::Group && s.index == d.index) continue;
        if (s.kind == Place::Cell && d.kind == Place::Cell && s.index == d.index) continue;
        const EdgeInfo& info = g[e];
        std::string label;
        if (options.edge_labels) {
          label = std::isnan(info.partial) ? "input " + std::to_string(info.input_nr) : number(info.partial);
          if (index < options.edge_symbols.size() && !options.edge_symbols[index].empty() &&
              options.edge_symbols[index] != label) {
            label = options.edge_symbols[index] + " = " + label;
          }
        }
        Drawn drawn{s.end(), d.end(), "e" + std::to_string(v) + "_" + std::to_string(t), label, 1, edge_colour[index]};
        if (s.kind != Place::Group && d.kind != Place::Group) {
          edges.push_back(std::move(drawn));
          continue;
        }
        const std::string key = s.id() + ">" + d.id();
        drawn.from = s.id();
        drawn.to = d.id();
        auto [it, added] = merged.try_emplace(key, edges.size());
        if (added) {
          edges.push_back(std::move(drawn));
        } else {
          Drawn& m = edges[it->second];
          m.label = std::to_string(++m.count) + " edges";
          if (m.colour == none) m.colour = drawn.colour;
        }
      }
    }
    for (const Drawn& e : edges) {
      out << e.from << " -> " << e.to << " [id=\"" << e.id << "\"";
      if (!e.label.empty()) out << ", label=" << dot_string(escape_label(e.label, false));
      if (e.colour != none) {
        out << ", color=" << palette[e.colour] << ", penwidth=2.5";
      } else if (e.from.find(':') != std::string::npos) {
        out << ", color=\"#9aa0b8\"";  // out of a grid cell: many, so lighter
      }
      out << "];\n";
    }
  }

  void write_legend() {
    // The legend: each highlighted path with its product.
    if (options.path_products && !options.highlight_paths.empty()) {
      auto symbol_of = [&](NodeId a, NodeId b) -> std::string {
        std::size_t k = edge_base[a];
        for (const Edge e : boost::make_iterator_range(boost::out_edges(a, g))) {
          const std::size_t index = k++;
          if (boost::target(e, g) == b && index < options.edge_symbols.size()) return options.edge_symbols[index];
        }
        return "";
      };
      out << "legend [shape=plaintext, style=\"\", id=\"legend\", label=<<TABLE BORDER=\"0\" CELLBORDER=\"1\" "
             "CELLSPACING=\"0\" CELLPADDING=\"3\"><TR><TD><B>path</B></TD><TD><B>product of partials</B></TD>"
             "<TD><B>value</B></TD></TR>";
      for (auto [p, ends] : rv::enumerate(options.highlight_paths)) {
        const std::vector<Path> found = paths(g, ends.first, ends.second, 64);
        double sum = 0.0;
        for (const Path& path : found) {
          std::string route, product;
          for (auto [i, v] : rv::enumerate(path.nodes)) {
            route += (i ? " → " : "") + drawn_name(g, v);
            if (i + 1 < path.nodes.size()) {
              const std::string symbol = symbol_of(v, path.nodes[i + 1]);
              const std::string factor = symbol.empty() ? number(path.partials[i]) : symbol;
              if (factor != "1") product += (product.empty() ? "" : "·") + factor;
            }
          }
          sum += path.product;
          out << "<TR><TD ALIGN=\"LEFT\"><FONT COLOR=\"" << palette[p % palette_size] << "\">" << escape_html(route)
              << "</FONT></TD><TD ALIGN=\"LEFT\">" << escape_html(product.empty() ? "1" : product)
              << "</TD><TD ALIGN=\"RIGHT\">" << number(path.product) << "</TD></TR>";
        }
        out << "<TR><TD ALIGN=\"LEFT\" COLSPAN=\"2\">sum over " << found.size() << " paths = ∂"
            << escape_html(drawn_name(g, ends.second)) << "/∂" << escape_html(drawn_name(g, ends.first))
            << " (engine: " << number(g[ends.first].grad) << ")</TD><TD ALIGN=\"RIGHT\"><B>" << number(sum)
            << "</B></TD></TR>";
      }
      out << "</TABLE>>];\n";
    }
  }

  std::ostream& out;
  const TapeGraph& g;
  const DotOptions& options;
  const std::size_t n;
  std::vector<std::size_t> edge_base, node_colour, edge_colour;  // highlights, by node and by edge
  std::vector<DotGroup> groups;
  std::vector<Place> place;
  std::vector<const DotTensor*> grids;
  std::vector<std::size_t> group_size, group_colour;
  std::vector<std::size_t> owner_element;    // the element an unnamed feeder is boxed with
  std::vector<std::vector<NodeId>> feeders;  // an element's boxed feeders
};

void write_layered(std::ostream& out, const TapeGraph& g, const DotOptions& options) {
  LayeredWriter(out, g, options).write();
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
  if (options.layered) {
    std::ostringstream buffer;
    write_layered(buffer, g, options);
    out << buffer.view();
    return;
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

namespace gradpath::graph {

namespace {
// Up to two levels of unnamed operands are written out, (y−t) in pow((y−t)); a longer
// name falls back to op#id.
std::string derived_name(const TapeGraph& g, NodeId v, int depth) {
  const NodeInfo& info = g[v];
  if (!info.name.empty()) return info.name;
  if (depth == 0 || info.is_tensor || boost::in_degree(v, g) == 0) return {};
  std::vector<std::string> operands;
  for (const Edge e : boost::make_iterator_range(boost::in_edges(v, g))) {
    const auto u = static_cast<NodeId>(boost::source(e, g));
    std::string name = derived_name(g, u, depth - 1);
    if (name.empty()) return {};
    operands.push_back(g[u].name.empty() && boost::in_degree(u, g) > 1 ? "(" + name + ")" : name);
  }
  const auto join_with = [&](const std::string& sep) {
    std::string s;
    for (auto [i, o] : rv::enumerate(operands)) s += (i ? sep : "") + o;
    return s;
  };
  std::string name;
  switch (info.op) {
    case Op::Mul:
      name = join_with("·");
      break;
    case Op::Add:
      name = join_with("+");
      break;
    case Op::Sub:
      name = join_with("−");
      break;
    case Op::Div:
      name = join_with("/");
      break;
    default:
      name = info.op_name + "(" + join_with(", ") + ")";
  }
  return name.size() > 40 ? std::string() : name;
}
}  // namespace

std::string drawn_name(const TapeGraph& g, NodeId v) {
  std::string name = derived_name(g, v, 2);
  return name.empty() ? node_label(g, v) : name;
}

std::vector<std::string> edge_symbols(const Tape& tape, const TapeGraph& g) {
  const std::size_t n = boost::num_vertices(g);
  std::vector<std::string> out;
  out.reserve(boost::num_edges(g));
  const auto records = tape.tensor_records();
  std::unordered_map<NodeId, const TensorRecord*> record_of;
  for (const TensorRecord& r : records) record_of.emplace(r.node, &r);
  std::vector<SymbolicEdge> found;
  for (std::size_t v = 0; v < n; ++v) {
    for (const Edge e : boost::make_iterator_range(boost::out_edges(v, g))) {
      const auto t = static_cast<NodeId>(boost::target(e, g));
      std::string text;
      if (!g[t].is_tensor) {
        if (const auto m = symbolic_partial(tape, t, g[e].input_nr)) text = SymbolicSum{{*m}}.text();
      } else if (auto it = record_of.find(t); it != record_of.end() && g[t].shape.size() == 1 &&
                                              it->second->info != nullptr && it->second->info->symbolic != nullptr &&
                                              it->second->dtype == DType::f64) {
        found.clear();
        if (it->second->info->symbolic(tape, *it->second, 0, found)) {
          SymbolicSum sum;
          for (const SymbolicEdge& s : found) {
            if (tape.node_of(s.operand) == v) sum.add(Monomial{s.coeff, s.factors});
          }
          if (!sum.terms.empty()) text = sum.text();
        }
      }
      out.push_back(std::move(text));
    }
  }
  return out;
}

std::vector<char> near(const TapeGraph& g, NodeId focus, std::size_t depth) {
  const std::size_t n = boost::num_vertices(g);
  if (focus >= n) throw Error("near: node " + std::to_string(focus) + " is not in the graph");
  std::vector<std::size_t> distance(n, none);
  std::vector<NodeId> frontier{focus}, next;
  distance[focus] = 0;
  for (std::size_t d = 1; d <= depth && !frontier.empty(); ++d) {
    next.clear();
    for (const NodeId v : frontier) {
      auto visit = [&](std::size_t u) {
        if (distance[u] != none) return;
        distance[u] = d;
        next.push_back(static_cast<NodeId>(u));
      };
      for (const Edge e : boost::make_iterator_range(boost::out_edges(v, g))) visit(boost::target(e, g));
      for (const Edge e : boost::make_iterator_range(boost::in_edges(v, g))) visit(boost::source(e, g));
    }
    frontier.swap(next);
  }
  std::vector<char> mask(n, 0);
  for (std::size_t v = 0; v < n; ++v) mask[v] = distance[v] != none;
  return mask;
}

}  // namespace gradpath::graph
