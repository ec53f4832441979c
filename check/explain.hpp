// SPDX-License-Identifier: MIT
// The derivation of ∂L/∂w written out as the seed note writes it by hand: the chain rule
// over the layer below the weight, each node of that layer and its partial, ∂L/∂z down
// the rest of the graph, and the result with its value (gradpath explain). Every formula
// it writes is one the checker reads and passes: tests/explain_test.cpp checks them all.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "autodiff/tape.hpp"

namespace gradpath::check {

enum class ExplainFormat { Text, Markdown, Latex };
// "text", "markdown" (also "md"), "latex" (also "tex"); none for anything else.
std::optional<ExplainFormat> explain_format(std::string_view name);

struct ExplainOptions {
  ExplainFormat format = ExplainFormat::Text;
  std::optional<double> lr;     // also write the update w* = w − α ∂L/∂w, as prose
  bool standalone = false;      // LaTeX: a whole document (\documentclass … \end{document})
  std::size_t max_terms = 256;  // a fully expanded result with more terms is left out
  std::string title;            // the model's name, for the heading
};

// What to explain: one element (`slots` of size 1, `name` its name, "w1"), or a whole
// tensor (`name` "w", `slots` its elements in order), which gets the general indexed
// formula first where one can be written, then every element.
struct ExplainTarget {
  std::string name;
  std::vector<Slot> slots;
};

// A derivation that cannot be written: a node on the way has no name, or an op whose
// partial has no symbols (sqrt, softmax). The message names the weight and the node.
class ExplainError : public Error {
 public:
  using Error::Error;
};

// `tape` holds the network with backward(loss) run (the values and grads are quoted).
std::string explain(const Tape& tape, Slot loss, std::span<const ExplainTarget> targets,
                    const ExplainOptions& options = {});

}  // namespace gradpath::check
