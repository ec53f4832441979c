// SPDX-License-Identifier: MIT
// What the command draws: the layered DOT options from names on the command line
// (--highlight, --collapse, --focus/--depth, --partials, --products), and the
// self-contained HTML report (graph as SVG, paths, values and grads, checked formulas).
#pragma once

#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "check/checker.hpp"
#include "graph/graph.hpp"

namespace gradpath::cli {

// The named tensors of a built model, as Model::build returns them.
using NamedTensors = std::vector<std::pair<std::string, TensorVar>>;

struct DotRequest {
  std::vector<std::string> highlight;  // node or tensor names: their paths to the loss
  std::vector<std::string> collapse;   // scope, tensor or node names: one box each
  std::optional<std::string> focus;    // only the nodes within `depth` edges of this one
  std::size_t depth = 2;
  bool partials = false;  // edge labels: the local partial, in symbols where it has one
  bool products = false;  // a legend with each highlighted path's product
};

// The layered DotOptions for `request` on a view of `tape`. An Error for an unknown
// name, listing the names nearest to it.
graph::DotOptions dot_options(const Tape& tape, const graph::TapeGraph& g, const NamedTensors& named,
                              const std::string& loss, const DotRequest& request);

// Up to five names of `g` (node names, scopes) and of `named` closest to `name`, for messages.
std::vector<std::string> near_names(const graph::TapeGraph& g, const NamedTensors& named, const std::string& name);

// Graphviz's dot run on `dot_text` as a child process, its output in `format` (svg,
// png); an Error saying so when dot is not installed or fails.
std::string run_graphviz(const std::string& dot_text, const std::string& format);

struct ReportInput {
  std::string title;  // the model file's name
  const Tape* tape = nullptr;
  const NamedTensors* named = nullptr;
  std::string loss;
  std::vector<check::Report> reports;  // empty without a formula file
  std::string formulas_source;
  std::size_t collapse_above = 2000;  // more nodes than this: scopes and big leaves collapsed
  std::string katex_dir;              // KaTeX's dist folder; "" or absent: raw LaTeX
};

// The whole HTML page, self-contained: no network access, no server.
void write_report(std::ostream& out, const ReportInput& input);

// `text` safe inside HTML text and attribute values, and inside a <script> JSON block.
std::string html_escape(std::string_view text);
std::string script_json(const std::string& json_text);

}  // namespace gradpath::cli
