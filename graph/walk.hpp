// SPDX-License-Identifier: MIT
// Internal to graph/: the nodes lying on paths between two nodes, and the passes over them.
#pragma once

#include <string_view>
#include <vector>

#include "graph/graph.hpp"

namespace gradpath::graph::detail {

// The nodes on some path from `from` to `to`, both included. Only ids in [from, to]
// can lie on such a path, so the mask covers just that range (empty when from > to).
struct Between {
  NodeId from = 0, to = 0;
  std::vector<char> on;  // on[v - from]
  bool contains(NodeId v) const { return v >= from && v - from < on.size() && on[v - from]; }
  bool empty() const { return !contains(from); }
};

// One forward pass (reachable from `from`) and one backward pass (reaches `to`). An
// Error, prefixed by `what`, for an id out of range or an edge going back in id order.
Between between(const TapeGraph& g, NodeId from, NodeId to, std::string_view what);

// Per node on the paths: d v / d from (forward) and d to / d v (backward), each the sum
// over paths of edge-partial products. An Error when a tensor node of more than one
// element lies on a path.
std::vector<double> derivatives_from(const TapeGraph& g, const Between& b, std::string_view what);
std::vector<double> derivatives_to(const TapeGraph& g, const Between& b, std::string_view what);

// Per node on the paths: the number of paths from `from` to v, and from v to `to`.
std::vector<PathCount> counts_from(const TapeGraph& g, const Between& b);
std::vector<PathCount> counts_to(const TapeGraph& g, const Between& b);

}  // namespace gradpath::graph::detail
