// SPDX-License-Identifier: MIT
// Building the Boost.Graph view of a tape, node names, and topological order.
#include <algorithm>
#include <boost/graph/topological_sort.hpp>
#include <cmath>
#include <iterator>
#include <limits>
#include <range/v3/view/enumerate.hpp>

#include "graph/graph.hpp"

namespace gradpath::graph {

namespace rv = ranges::views;

TapeGraph view(const Tape& tape) {
  const auto n = static_cast<NodeId>(tape.node_count());
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  TapeGraph g(n);
  // Operands are slots (or float32 elements): one pass maps every one to its owner.
  std::vector<NodeId> owner(tape.slot_count()), owner_f32(tape.values_f32().size());
  for (NodeId v = 0; v < n; ++v) std::fill_n(owner.begin() + tape.offset(v), tape.size(v), v);
  const auto records = tape.tensor_records();
  for (const TensorRecord& r : records) {
    if (r.dtype == DType::f32) std::fill_n(owner_f32.begin() + r.output, r.shape.size(), r.node);
  }

  std::size_t next_record = 0;
  for (NodeId v = 0; v < n; ++v) {
    NodeInfo& info = g[v];
    info.id = v;
    info.op = tape.op(v);
    info.name = tape.name(v);
    info.scope = tape.scope(v);
    // Tensor ops and float32 leaves have a record.
    if (next_record == records.size() || records[next_record].node != v) {
      info.op_name = op_name(info.op);
      info.value = tape.value(tape.offset(v));
      info.grad = tape.grad(tape.offset(v));
      const OperandSlots slots = tape.arg_slots(v);
      const OperandPartials partials = tape.partials(v);
      for (std::size_t i = 0; i < slots.size(); ++i) {
        const Slot slot = slots[i];
        const NodeId u = owner[slot];
        const std::int64_t element = tape.op(u) == Op::Tensor ? std::int64_t{slot - tape.offset(u)} : -1;
        boost::add_edge(u, v, EdgeInfo{static_cast<std::uint32_t>(i), partials[i], element}, g);
      }
      continue;
    }
    const TensorRecord& record = records[next_record++];
    info.is_tensor = true;
    info.dtype = record.dtype;
    info.op_name = record.info->name;
    info.value = info.grad = nan;
    info.shape = record.shape;
    // A one-element tensor node (a dense unit, a loss) is a scalar function of its
    // operands: one vector-Jacobian product gives the partial on every edge into it.
    // Not when float32 is involved: those edges carry no partials (check gradients in double).
    const auto args = tape.tensor_args(record);
    const bool scalar_output = record.shape.size() == 1;
    const bool f32 = record.dtype == DType::f32 ||
                     std::any_of(args.begin(), args.end(), [](const TensorArg& a) { return a.dtype == DType::f32; });
    std::vector<double> partials;
    if (scalar_output && record.dtype == DType::f32) {
      info.value = tape.values_f32()[record.output];
      info.grad = tape.has_grads() ? tape.grads_f32()[record.output] : 0.0;
    } else if (scalar_output) {
      info.value = tape.value(tape.offset(v));
      info.grad = tape.grad(tape.offset(v));
    }
    if (scalar_output && !f32) {
      partials = tape.tensor_partials(v, 0);
    }
    // A slot read by two operands (mul(x, x)) gets the summed partial on its first edge.
    auto read_earlier = [&](std::size_t i, std::size_t s) {
      return std::any_of(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(i), [s](const TensorArg& a) {
        return s >= a.offset && s < std::size_t{a.offset} + a.shape.size();
      });
    };
    std::size_t first_partial = 0;
    for (auto [i, arg] : rv::enumerate(args)) {
      const std::size_t end = std::size_t{arg.offset} + arg.shape.size();
      if (arg.dtype == DType::f32) {  // always one whole tensor node
        if (end > owner_f32.size()) {
          throw Error("view: float32 operand " + std::to_string(i) + " of " + info.op_name + " (node " +
                      std::to_string(v) + ") runs past the float32 arena");
        }
        boost::add_edge(owner_f32[arg.offset], v, EdgeInfo{static_cast<std::uint32_t>(i), nan, -1}, g);
        first_partial += arg.shape.size();
        continue;
      }
      if (end > owner.size()) {
        throw Error("view: operand " + std::to_string(i) + " of " + info.op_name + " (node " + std::to_string(v) +
                    ") reads slots " + std::to_string(arg.offset) + ".." + std::to_string(end) + " but the tape has " +
                    std::to_string(owner.size()));
      }
      // One edge per node the range covers; skip the rest of a tensor node at once.
      for (std::size_t s = arg.offset; s < end;) {
        const NodeId u = owner[s];
        double partial = nan;
        if (scalar_output && !f32 && tape.size(u) == 1) {
          partial = read_earlier(i, s) ? 0.0 : partials[first_partial + (s - arg.offset)];
        }
        boost::add_edge(u, v, EdgeInfo{static_cast<std::uint32_t>(i), partial, -1}, g);
        s = std::size_t{tape.offset(u)} + tape.size(u);
      }
      first_partial += arg.shape.size();
    }
  }
  return g;
}

std::string node_label(const TapeGraph& g, NodeId v) {
  const NodeInfo& info = g[v];
  return info.name.empty() ? info.op_name + "#" + std::to_string(v) : info.name;
}

NodeId node_named(const TapeGraph& g, std::string_view name) {
  std::vector<NodeId> found;
  for (NodeId v = 0; v < boost::num_vertices(g); ++v) {
    if (g[v].name == name) found.push_back(v);
  }
  if (found.empty()) throw Error("node_named: no node is named '" + std::string(name) + "'");
  if (found.size() > 1) {
    throw Error("node_named: " + std::to_string(found.size()) + " nodes are named '" + std::string(name) + "' (nodes " +
                std::to_string(found[0]) + " and " + std::to_string(found[1]) + ")");
  }
  return found.front();
}

std::vector<NodeId> topological_order(const TapeGraph& g) {
  std::vector<NodeId> order;
  order.reserve(boost::num_vertices(g));
  try {
    boost::topological_sort(g, std::back_inserter(order));
  } catch (const boost::not_a_dag&) {
    throw Error("topological_order: the graph has a cycle");
  }
  std::reverse(order.begin(), order.end());  // back_inserter collects it consumers-first
  return order;
}

}  // namespace gradpath::graph
