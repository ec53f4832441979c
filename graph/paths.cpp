// SPDX-License-Identifier: MIT
// Paths between two nodes: counting and summing them by dynamic programming over tape
// order, and enumerating them by an iterative depth-first search with a hard limit.
#include <cmath>
#include <limits>

#include "graph/graph.hpp"
#include "graph/walk.hpp"

namespace gradpath::graph {

namespace detail {

namespace {
[[noreturn]] void throw_backward_edge(const TapeGraph& g, std::string_view what, NodeId u, NodeId v) {
  throw Error(std::string(what) + ": edge " + node_label(g, u) + " -> " + node_label(g, v) +
              " goes backwards in id order; the graph is not in tape order");
}

// acc[v] = sum over edges u -> v between on-path nodes of weight(e) * acc[u], in id
// order from `from` (forward) or from `to` down (backward, over out-edges).
template <typename T, typename Weight>
std::vector<T> sum_forward(const TapeGraph& g, const Between& b, Weight weight) {
  std::vector<T> acc(b.on.size(), T(0));
  if (b.empty()) return acc;
  acc[0] = T(1);
  for (NodeId v = b.from + 1; v <= b.to; ++v) {
    if (!b.contains(v)) continue;
    T total(0);
    for (const Edge e : boost::make_iterator_range(boost::in_edges(v, g))) {
      const NodeId u = static_cast<NodeId>(boost::source(e, g));
      if (b.contains(u)) total += weight(e) * acc[u - b.from];
    }
    acc[v - b.from] = total;
  }
  return acc;
}

template <typename T, typename Weight>
std::vector<T> sum_backward(const TapeGraph& g, const Between& b, Weight weight) {
  std::vector<T> acc(b.on.size(), T(0));
  if (b.empty()) return acc;
  acc[b.to - b.from] = T(1);
  for (NodeId v = b.to; v-- > b.from;) {
    if (!b.contains(v)) continue;
    T total(0);
    for (const Edge e : boost::make_iterator_range(boost::out_edges(v, g))) {
      const NodeId t = static_cast<NodeId>(boost::target(e, g));
      if (b.contains(t)) total += weight(e) * acc[t - b.from];
    }
    acc[v - b.from] = total;
  }
  return acc;
}

void check_scalar(const TapeGraph& g, const Between& b, std::string_view what) {
  for (NodeId v = b.from; v <= b.to && !b.empty(); ++v) {
    if (!b.contains(v) || !g[v].is_tensor || g[v].shape.size() == 1) continue;
    throw Error(std::string(what) + ": " + node_label(g, v) + " (" + g[v].op_name + ", tensor" + g[v].shape.str() +
                ") lies on a path from " + node_label(g, b.from) + " to " + node_label(g, b.to) +
                "; the edges of a tensor node of more than one element hold no scalar partials (its grads come from "
                "tape.backward)");
  }
}
}  // namespace

Between between(const TapeGraph& g, NodeId from, NodeId to, std::string_view what) {
  const std::size_t n = boost::num_vertices(g);
  for (const NodeId v : {from, to}) {
    if (v >= n) {
      throw Error(std::string(what) + ": node " + std::to_string(v) + " is not in the graph (it has " +
                  std::to_string(n) + " nodes)");
    }
  }
  Between b{from, to, {}};
  if (from > to) return b;
  // Forward: reachable from `from`; then backward, keeping the ones that reach `to`.
  std::vector<char> reached(to - from + 1, 0);
  reached[0] = 1;
  for (NodeId v = from + 1; v <= to; ++v) {
    for (const Edge e : boost::make_iterator_range(boost::in_edges(v, g))) {
      const NodeId u = static_cast<NodeId>(boost::source(e, g));
      if (u >= v) throw_backward_edge(g, what, u, v);
      if (u >= from && reached[u - from]) reached[v - from] = 1;
    }
  }
  b.on.assign(reached.size(), 0);
  b.on.back() = reached.back();
  for (NodeId v = to; v-- > from;) {
    if (!reached[v - from]) continue;
    for (const Edge e : boost::make_iterator_range(boost::out_edges(v, g))) {
      const NodeId t = static_cast<NodeId>(boost::target(e, g));
      if (t <= v) throw_backward_edge(g, what, v, t);
      if (t <= to && b.on[t - from]) b.on[v - from] = 1;
    }
  }
  return b;
}

std::vector<double> derivatives_from(const TapeGraph& g, const Between& b, std::string_view what) {
  check_scalar(g, b, what);
  return sum_forward<double>(g, b, [&g](Edge e) { return g[e].partial; });
}

std::vector<double> derivatives_to(const TapeGraph& g, const Between& b, std::string_view what) {
  check_scalar(g, b, what);
  return sum_backward<double>(g, b, [&g](Edge e) { return g[e].partial; });
}

std::vector<PathCount> counts_from(const TapeGraph& g, const Between& b) {
  return sum_forward<PathCount>(g, b, [](Edge) { return 1; });
}

std::vector<PathCount> counts_to(const TapeGraph& g, const Between& b) {
  return sum_backward<PathCount>(g, b, [](Edge) { return 1; });
}

}  // namespace detail

namespace {
std::vector<char> mask(const TapeGraph& g, std::span<const NodeId> nodes) {
  std::vector<char> m(boost::num_vertices(g), 0);
  for (NodeId v : nodes) m.at(v) = 1;
  return m;
}
}  // namespace

// Vertex order is tape order, so one pass in id order (forward) or against it (backward)
// settles every node after the nodes it depends on.
std::vector<char> descendants(const TapeGraph& g, std::span<const NodeId> roots, std::span<const NodeId> blocked) {
  std::vector<char> seen = mask(g, roots);
  const std::vector<char> root = seen, stop = mask(g, blocked);
  for (NodeId v = 0; v < seen.size(); ++v) {
    if (!seen[v] || (stop[v] && !root[v])) continue;
    for (const Edge e : boost::make_iterator_range(boost::out_edges(v, g))) seen[boost::target(e, g)] = 1;
  }
  return seen;
}

std::vector<char> ancestors(const TapeGraph& g, std::span<const NodeId> roots, std::span<const NodeId> blocked) {
  std::vector<char> seen = mask(g, roots);
  const std::vector<char> root = seen, stop = mask(g, blocked);
  for (NodeId v = static_cast<NodeId>(seen.size()); v-- > 0;) {
    if (!seen[v] || (stop[v] && !root[v])) continue;
    for (const Edge e : boost::make_iterator_range(boost::in_edges(v, g))) seen[boost::source(e, g)] = 1;
  }
  return seen;
}

PathCount count_paths(const TapeGraph& g, NodeId from, NodeId to) {
  const detail::Between b = detail::between(g, from, to, "count_paths");
  return b.empty() ? PathCount(0) : detail::counts_from(g, b).back();
}

double derivative(const TapeGraph& g, NodeId from, NodeId to) {
  const detail::Between b = detail::between(g, from, to, "derivative");
  return b.empty() ? 0.0 : detail::derivatives_from(g, b, "derivative").back();
}

std::vector<Path> paths(const TapeGraph& g, NodeId from, NodeId to, std::size_t limit) {
  const detail::Between b = detail::between(g, from, to, "paths");
  if (b.empty()) return {};
  const PathCount count = detail::counts_from(g, b).back();
  if (count > limit) {
    throw Error("paths: there are " + count.str() + " paths from " + node_label(g, from) + " to " + node_label(g, to) +
                ", more than the limit of " + std::to_string(limit) +
                " (count_paths counts them and derivative sums them without listing)");
  }
  std::vector<Path> result;
  result.reserve(static_cast<std::size_t>(count));
  // The search stack: a node and the out-edges of it still to try. `nodes` and
  // `partials` hold the current path from `from`.
  using OutEdges = TapeGraph::out_edge_iterator;
  struct Frame {
    NodeId node;
    OutEdges next, end;
  };
  auto frame = [&g](NodeId v) {
    const auto [first, last] = boost::out_edges(v, g);
    return Frame{v, first, last};
  };
  std::vector<Frame> stack{frame(from)};
  std::vector<NodeId> nodes{from};
  std::vector<double> partials;
  while (!stack.empty()) {
    Frame& top = stack.back();
    while (top.node != to && top.next != top.end && !b.contains(static_cast<NodeId>(boost::target(*top.next, g)))) {
      ++top.next;
    }
    if (top.node == to || top.next == top.end) {
      if (top.node == to) {
        double product = 1.0;
        for (const double p : partials) product *= p;
        result.push_back(Path{nodes, partials, product});
      }
      stack.pop_back();
      nodes.pop_back();
      if (!partials.empty()) partials.pop_back();
      continue;
    }
    const Edge e = *top.next++;
    const auto t = static_cast<NodeId>(boost::target(e, g));
    nodes.push_back(t);
    partials.push_back(g[e].partial);
    stack.push_back(frame(t));
  }
  return result;
}

}  // namespace gradpath::graph
