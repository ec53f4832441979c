// SPDX-License-Identifier: MIT
// The branches of a tape's piecewise nodes: where relu, abs, max, min and max-pool choose
// one rule or another, and which choice the tape's values make.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "autodiff/tape.hpp"

namespace gradpath::graph {

// Every switch on the tape, in tape order: one per scalar node of a kinked function (relu,
// abs, leaky_relu, elu) and per max and min node, and those a tensor op declares
// (TensorOpInfo::switches: one per element of a kinked function, max or min, one per
// max-pool window). Float32 nodes declare none.
std::vector<Switch> switches(const Tape& tape);

// value(greater) - value(less): the condition holds when this is above zero (or zero,
// for an or_equal condition).
double margin(const Tape& tape, const Condition& c);
// The branch the tape's values take: the one whose every condition holds; none on a tie
// (an input exactly at zero, two equal cells).
std::optional<std::size_t> branch_taken(const Tape& tape, const Switch& s);

// A branch in words, from the slots' names: "z3 > 0", "z3 < 0", "O5 wins Z1's window",
// "a > b".
std::string branch_text(const Tape& tape, const Switch& s, std::size_t branch);

}  // namespace gradpath::graph
