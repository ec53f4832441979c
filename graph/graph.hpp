// SPDX-License-Identifier: MIT
// The Boost.Graph view of a tape: the graph itself, topological order, paths, cuts, DOT.
#pragma once

#include <boost/graph/adjacency_list.hpp>
#include <boost/multiprecision/cpp_int.hpp>
#include <cstdint>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "autodiff/tape.hpp"

namespace gradpath::graph {

// One tape node. For a tensor node of more than one element `value` and `grad` are NaN and
// `shape` is the output shape; for a scalar node `shape` is rank 0.
struct NodeInfo {
  NodeId id = 0;
  Op op = Op::Input;
  std::string op_name;  // op_name(op) for a scalar node, the tensor op's info->name otherwise
  std::string name;     // tape.name(id), "" when unnamed
  std::string scope;    // tape.scope(id), e.g. "net/conv"
  bool is_tensor = false;
  DType dtype = DType::f64;  // float32 nodes show no per-element partials: check gradients in double
  double value = 0.0;
  double grad = 0.0;  // from the tape's last backward, 0 when there was none
  Shape shape;
};

// One operand read, directed operand -> consumer (from w to L).
struct EdgeInfo {
  std::uint32_t input_nr = 0;  // position of the operand in the consumer's operand list
  // d consumer / d operand. An edge into a one-element tensor node (a dense unit, a loss)
  // gets its partial from one vector-Jacobian product; into a larger tensor node, NaN.
  double partial = 0.0;
  std::int64_t element = -1;  // element of a tensor node read by a scalar consumer, else -1
};

// vertex == NodeId, so no id maps are needed; vertex order is tape order.
using TapeGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, NodeInfo, EdgeInfo>;
using Edge = TapeGraph::edge_descriptor;
using PathCount = boost::multiprecision::cpp_int;

// The graph of everything on `tape`, in time linear in nodes + operands. An operand of a
// scalar node is one edge. An operand of a tensor node spans a range of slots: one edge
// per node the range covers (a leaf tensor a1..a25 gives 25 edges, a tensor node one).
TapeGraph view(const Tape& tape);

// "y" for a named node, "mul#37" for an unnamed one: how every message names a node.
std::string node_label(const TapeGraph& g, NodeId v);
// The node named `name`; an Error when no node or several nodes carry that name.
NodeId node_named(const TapeGraph& g, std::string_view name);

// A topological order by boost::topological_sort (nodes first, consumers after). On a
// view it agrees with tape order on every edge; an Error if `g` has a cycle.
std::vector<NodeId> topological_order(const TapeGraph& g);

// ---- reach ---------------------------------------------------------------------------
// The nodes reachable from any of `roots` going forward (consumers), roots included, as a
// mask over all nodes; a node of `blocked` is reached but not passed through (unless it
// is a root). Linear in nodes + edges.
std::vector<char> descendants(const TapeGraph& g, std::span<const NodeId> roots, std::span<const NodeId> blocked = {});
// The nodes from which some root is reachable, roots included, the same way backward.
std::vector<char> ancestors(const TapeGraph& g, std::span<const NodeId> roots, std::span<const NodeId> blocked = {});

// ---- paths ---------------------------------------------------------------------------
// Every function below walks the ids between `from` and `to` once (dynamic programming
// over tape order), so it needs the edges of `g` to go forward in id order, as in any
// view; an Error names an edge that does not. from == to has one path of length 0.

// The exact number of paths from `from` to `to` (it can exceed 2^64: a ladder of n
// binary nodes has 2^n).
PathCount count_paths(const TapeGraph& g, NodeId from, NodeId to);

struct Path {
  std::vector<NodeId> nodes;     // from ... to
  std::vector<double> partials;  // one per edge: partials[i] on nodes[i] -> nodes[i+1]
  double product = 1.0;          // the product of the partials: this path's share of d to / d from
};

// Every path from `from` to `to`, in out-edge order (consumers in tape order), by an
// iterative depth-first search over the nodes that can reach `to`. The paths are
// counted first: more than `limit` is an Error giving the count, never a long wait.
// A path through a tensor node of more than one element has NaN partials.
std::vector<Path> paths(const TapeGraph& g, NodeId from, NodeId to, std::size_t limit = 10000);

// d to / d from = the sum over all paths of their products, by dynamic programming
// (no enumeration). An Error when a path passes through a tensor node of more than one
// element.
double derivative(const TapeGraph& g, NodeId from, NodeId to);

// ---- cuts ----------------------------------------------------------------------------
struct CutTerm {
  NodeId cut_node = 0;
  double d_cut_d_from = 0.0;   // d cut_node / d from
  double d_to_d_cut = 0.0;     // d to / d cut_node
  std::size_t path_count = 0;  // paths from -> cut_node -> to (saturates at SIZE_MAX)
};
struct CutDecomposition {
  NodeId from = 0, to = 0;
  std::vector<CutTerm> terms;  // in the order of `cut`
  double total = 0.0;          // sum of d_cut_d_from * d_to_d_cut = d to / d from
};

// The chain rule over a cut: d to/d from = sum_k d cut_k/d from * d to/d cut_k. Every
// path from `from` to `to` must pass through exactly one cut node; otherwise an Error
// names one offending path ("... avoids {z1, z2}" or "... passes through both z1 and
// z3"). Also an Error when a path passes through a tensor node of more than one element.
CutDecomposition decompose(const TapeGraph& g, NodeId from, NodeId to, std::span<const NodeId> cut);

// ---- DOT -----------------------------------------------------------------------------
// A named tensor of the caller: its element nodes in row-major order (a leaf a1..a25,
// the outputs z1..z4 of conv2d_mac), or its one tensor node.
struct DotTensor {
  std::string name;
  Shape shape;
  std::vector<NodeId> nodes;
};
struct DotGroup {
  std::string label;
  std::vector<NodeId> nodes;
};

// Every member has a default initializer, so designated initializers may name any subset.
struct DotOptions {
  bool values = true;          // a "value" field in each node
  bool grads = true;           // a "grad" field in each node
  bool edge_labels = false;    // the partial on each edge
  std::string rankdir = "LR";  // LR, RL, TB or BT
  // All paths from first to second are drawn in colour, one colour per pair.
  std::vector<std::pair<NodeId, NodeId>> highlight_paths{};
  bool clusters = true;  // a subgraph cluster per tape scope
  // Each of these scopes (with its sub-scopes) is drawn as one box labelled with the
  // scope and its node count; the edges into and out of it are merged ("N edges").
  std::vector<std::string> collapse_scopes{};

  // ---- the layered layout (the command's dot and report draw this way) ----
  // Layer by layer (rank constraints, newrank), each tensor's elements in grid order
  // (invisible ordering edges), a leaf tensor of at most grid_limit elements as one
  // table node with a cell (port) per element, the unnamed nodes feeding one element of
  // a tensor in a box under it, and an unnamed node named from its operands (w1·a3,
  // relu(z1)) instead of #id. Drawn ids: "n<id>" for a node, "t<k>" for a grid
  // (cell port "c<i>"), "g<k>" for a collapsed group; every node, cell and edge carries
  // an id ("n<id>", "e<from>_<to>") and a tooltip, which the HTML report uses.
  bool layered = false;
  std::size_t grid_limit = 100;
  std::vector<DotTensor> tensors{};  // the named tensors whose element order is kept
  // Each group is drawn as one box "label (N nodes)", its edges merged, as collapse_scopes.
  std::vector<DotGroup> collapse_groups{};
  // With edge_labels: the local partial in symbols (a3, σ′(z1)) before its value, one
  // string per edge in out-edge order of the nodes in id order ("" for none); see
  // edge_symbols().
  std::vector<std::string> edge_symbols{};
  // A legend node listing every path of each highlight pair with its product, their sum
  // and the grad of the pair's first node.
  bool path_products = false;
  // Only the nodes with shown[v] != 0 are drawn (empty: all); see near().
  std::vector<char> shown{};
};

// Writes `g` in Graphviz DOT through boost::write_graphviz: record nodes
// { name | op | value | grad } ("#id" for an unnamed node; a tensor node shows
// "tensor[8, 26, 26]" instead of value and grad), escaped for any characters in names;
// highlighted nodes and edges get color=red, blue, ... per pair, penwidth=2. Drawn ids
// are tape ids unless scopes are collapsed. Deterministic, linear time. An Error for an
// unknown rankdir, a highlight id outside the graph, or a collapse scope with no node.
void write_dot(std::ostream& out, const TapeGraph& g, const DotOptions& options = {});

// The symbolic local partial of every edge of `g` (a view of `tape`), in out-edge order
// of the nodes in id order: symbolic_partial for a scalar consumer, the op's
// TensorOpInfo::symbolic for a one-element tensor consumer; "" where there is none.
std::vector<std::string> edge_symbols(const Tape& tape, const TapeGraph& g);

// The nodes within `depth` edges of `focus`, either direction, as a mask for DotOptions::shown.
std::vector<char> near(const TapeGraph& g, NodeId focus, std::size_t depth);

// The name the layered DOT gives node v: its own name, else one made from its operands'
// (w1·a3, a+b, relu(z1)), else node_label's op#id.
std::string drawn_name(const TapeGraph& g, NodeId v);

}  // namespace gradpath::graph
