// SPDX-License-Identifier: MIT
#include "graph/branches.hpp"

#include <algorithm>

#include "autodiff/functions.hpp"

namespace gradpath::graph {

namespace {

// A kinked function (relu, abs, leaky_relu, elu) turns at zero; max and min pick the
// operand that is larger or smaller. Tensor ops describe their own switches next to their
// rules in ops/.
void scalar_switches(const Tape& tape, NodeId n, std::vector<Switch>& out) {
  const auto args = tape.arg_slots(n);
  if (const std::optional<FnId> f = function_of(tape.op(n))) {
    // Above zero, or at or below it (where the function takes its x <= 0 side).
    if (function_info(*f).kinked)
      out.push_back({n, 0, {Branch{{Condition{args[0], {}, false}}}, Branch{{Condition{{}, args[0], true}}}}});
    return;
  }
  switch (tape.op(n)) {
    case Op::Max:  // a tie goes to the first operand
      if (args.size() == 2 && args[0] != args[1])
        out.push_back(
            {n, 0, {Branch{{Condition{args[0], args[1], true}}}, Branch{{Condition{args[1], args[0], false}}}}});
      break;
    case Op::Min:
      if (args.size() == 2 && args[0] != args[1])
        out.push_back(
            {n, 0, {Branch{{Condition{args[1], args[0], true}}}, Branch{{Condition{args[0], args[1], false}}}}});
      break;
    default:
      break;
  }
}

std::string slot_text(const Tape& tape, std::optional<Slot> s) {
  if (!s) return "0";
  std::string name = tape.slot_name(*s);
  if (!name.empty()) return name;
  const NodeId n = tape.node_of(*s);
  const std::string op =
      tape.op(n) == Op::Tensor ? std::string(tape.tensor_record(n).info->name) : std::string(op_name(tape.op(n)));
  if (tape.size(n) == 1) return op + "#" + std::to_string(n);
  return op + "#" + std::to_string(n) + "[" + std::to_string(*s - tape.offset(n)) + "]";
}

}  // namespace

std::vector<Switch> switches(const Tape& tape) {
  std::vector<Switch> out;
  for (NodeId n = 0; n < tape.node_count(); ++n) {
    if (tape.op(n) != Op::Tensor) {
      scalar_switches(tape, n, out);
      continue;
    }
    const TensorRecord& r = tape.tensor_record(n);
    if (r.info->switches != nullptr) r.info->switches(tape, r, out);
  }
  return out;
}

double margin(const Tape& tape, const Condition& c) {
  return (c.greater ? tape.value(*c.greater) : 0.0) - (c.less ? tape.value(*c.less) : 0.0);
}

std::optional<std::size_t> branch_taken(const Tape& tape, const Switch& s) {
  for (std::size_t b = 0; b < s.branches.size(); ++b) {
    const auto& conditions = s.branches[b].conditions;
    if (std::all_of(conditions.begin(), conditions.end(),
                    [&](const Condition& c) { return c.or_equal ? margin(tape, c) >= 0 : margin(tape, c) > 0; }))
      return b;
  }
  return std::nullopt;
}

std::string branch_text(const Tape& tape, const Switch& s, std::size_t branch) {
  const Branch& b = s.branches.at(branch);
  const Slot out = tape.offset(s.node) + static_cast<Slot>(s.element);
  if (b.conditions.empty()) return "the only cell of " + slot_text(tape, out) + "'s window";
  const Condition& c = b.conditions[0];
  // A tensor op comparing two of its input's cells: a pooling window and its winner.
  if (tape.op(s.node) == Op::Tensor && c.greater && c.less) {
    return slot_text(tape, c.greater) + " wins " + slot_text(tape, out) + "'s window";
  }
  if (!c.less) return slot_text(tape, c.greater) + " > 0";
  if (!c.greater) return slot_text(tape, c.less) + " < 0";
  return slot_text(tape, c.greater) + " > " + slot_text(tape, c.less);
}

}  // namespace gradpath::graph
