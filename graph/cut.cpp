// SPDX-License-Identifier: MIT
// The chain rule over a cut: checking that a set of nodes cuts every path exactly once,
// and splitting d to / d from into one term per cut node.
#include <algorithm>
#include <limits>

#include "graph/graph.hpp"
#include "graph/text.hpp"
#include "graph/walk.hpp"

namespace gradpath::graph {

namespace {
constexpr NodeId none = std::numeric_limits<NodeId>::max();

std::string path_text(const TapeGraph& g, const std::vector<NodeId>& nodes) {
  return join(nodes, " -> ", [&](NodeId v) { return node_label(g, v); });
}

// Note [Cut check]: one pass in id order labels every node on the paths with how the
// paths reaching it from `from` meet the cut: `clean` when some path reached it through
// no cut node, `hit` when some path reached it through exactly one. A cut node with a
// hit in-neighbour closes a path through two cut nodes; a clean `to` means a path that
// avoids the cut. The parents record one such path, to name it in the message.
struct CutCheck {
  const TapeGraph& g;
  const detail::Between& b;
  std::vector<char> in_cut, clean, hit;
  std::vector<NodeId> clean_parent, hit_parent;

  std::size_t at(NodeId v) const { return v - b.from; }

  // The path from `from` to v that `hit` (or `clean`) records; `first_cut` gets its cut node.
  std::vector<NodeId> path_to(NodeId v, bool through_cut, NodeId& first_cut) const {
    std::vector<NodeId> nodes{v};
    while (v != b.from) {
      if (through_cut && in_cut[at(v)]) {
        first_cut = v;
        through_cut = false;
        v = hit_parent[at(v)];
      } else {
        v = through_cut ? hit_parent[at(v)] : clean_parent[at(v)];
      }
      nodes.push_back(v);
    }
    if (through_cut) first_cut = b.from;
    std::reverse(nodes.begin(), nodes.end());
    return nodes;
  }

  // Appends some path from the last node on to `to`.
  void extend_to_end(std::vector<NodeId>& nodes) const {
    for (NodeId v = nodes.back(); v != b.to;) {
      for (const Edge e : boost::make_iterator_range(boost::out_edges(v, g))) {
        const auto t = static_cast<NodeId>(boost::target(e, g));
        if (b.contains(t)) {
          v = t;
          break;
        }
      }
      nodes.push_back(v);
    }
  }

  void mark(std::vector<char>& flag, std::vector<NodeId>& parent, bool from_u, NodeId u, NodeId v) {
    if (from_u && !flag[at(v)]) {
      flag[at(v)] = 1;
      parent[at(v)] = u;
    }
  }

  void run(std::span<const NodeId> cut) {
    const std::size_t n = b.on.size();
    in_cut.assign(n, 0);
    clean.assign(n, 0);
    hit.assign(n, 0);
    clean_parent.assign(n, none);
    hit_parent.assign(n, none);
    for (const NodeId c : cut) {
      if (b.contains(c)) in_cut[at(c)] = 1;
    }
    clean[0] = !in_cut[0];
    hit[0] = in_cut[0];
    for (NodeId v = b.from + 1; v <= b.to; ++v) {
      if (!b.contains(v)) continue;
      for (const Edge e : boost::make_iterator_range(boost::in_edges(v, g))) {
        const auto u = static_cast<NodeId>(boost::source(e, g));
        if (!b.contains(u)) continue;
        if (in_cut[at(v)]) {
          if (hit[at(u)]) {
            NodeId first_cut = none;
            std::vector<NodeId> nodes = path_to(u, true, first_cut);
            nodes.push_back(v);
            extend_to_end(nodes);
            throw Error("decompose: not a cut: path " + path_text(g, nodes) + " passes through both " +
                        node_label(g, first_cut) + " and " + node_label(g, v));
          }
          mark(hit, hit_parent, clean[at(u)], u, v);
        } else {
          mark(clean, clean_parent, clean[at(u)], u, v);
          mark(hit, hit_parent, hit[at(u)], u, v);
        }
      }
    }
    if (clean[at(b.to)]) {
      NodeId unused = none;
      throw Error("decompose: not a cut: path " + path_text(g, path_to(b.to, false, unused)) + " avoids {" +
                  join(cut, ", ", [&](NodeId c) { return node_label(g, c); }) + "}");
    }
  }
};

std::size_t saturating(const PathCount& count) {
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  return count > max ? max : static_cast<std::size_t>(count);
}
}  // namespace

CutDecomposition decompose(const TapeGraph& g, NodeId from, NodeId to, std::span<const NodeId> cut) {
  std::vector<NodeId> sorted(cut.begin(), cut.end());
  std::sort(sorted.begin(), sorted.end());
  if (!sorted.empty() && sorted.back() >= boost::num_vertices(g)) {
    throw Error("decompose: cut node " + std::to_string(sorted.back()) + " is not in the graph (it has " +
                std::to_string(boost::num_vertices(g)) + " nodes)");
  }
  if (auto twice = std::adjacent_find(sorted.begin(), sorted.end()); twice != sorted.end()) {
    throw Error("decompose: the cut lists " + node_label(g, *twice) + " twice");
  }
  const detail::Between b = detail::between(g, from, to, "decompose");
  CutDecomposition result{from, to, {}, 0.0};
  if (!b.empty()) CutCheck{g, b, {}, {}, {}, {}, {}}.run(cut);
  const std::vector<double> d_from = detail::derivatives_from(g, b, "decompose");
  const std::vector<double> d_to = detail::derivatives_to(g, b, "decompose");
  const std::vector<PathCount> n_from = detail::counts_from(g, b), n_to = detail::counts_to(g, b);
  for (const NodeId c : cut) {
    // A cut node off every path contributes 0, but its factors are still reported
    // (d z/d w can be nonzero when z does not reach L): one more pass for each.
    const std::size_t i = c - from;
    const CutTerm term = b.contains(c) ? CutTerm{c, d_from[i], d_to[i], saturating(n_from[i] * n_to[i])}
                                       : CutTerm{c, derivative(g, from, c), derivative(g, c, to), 0};
    result.total += term.d_cut_d_from * term.d_to_d_cut;
    result.terms.push_back(term);
  }
  return result;
}

}  // namespace gradpath::graph
