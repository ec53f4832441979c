// SPDX-License-Identifier: MIT
// libFuzzer harness: node and scope names are the input; write_dot must escape them so that
// boost::read_graphviz reads back every node with its name as given. The input's first
// five bytes also pick the drawing options: flags, and any 32-bit node id to highlight a
// path to, which write_dot must refuse with an Error when it is not in the graph.
#include <boost/graph/graphviz.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "autodiff/tensor.hpp"
#include "graph/graph.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;

namespace {
struct ReadNode {
  std::string id, label;
};
using ReadGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, ReadNode>;

[[noreturn]] void fail(const std::string& what, const std::string& dot) {
  std::cerr << "dot_fuzz: " << what << "\n--- DOT ---\n" << dot << "\n";
  std::abort();
}

// The first field of a record label "{ name | op | ... }" as Graphviz shows it: up to the
// first unescaped " | ", with \x giving x and \n a newline.
std::string first_field(const std::string& label, const std::string& dot) {
  if (label.size() < 4 || label.compare(0, 2, "{ ") != 0 || label.compare(label.size() - 2, 2, " }") != 0) {
    fail("not a record label: " + label, dot);
  }
  std::string field;
  for (std::size_t i = 2; i + 2 < label.size(); ++i) {
    if (label[i] == '\\' && i + 3 < label.size()) {
      field += label[i + 1] == 'n' ? '\n' : label[i + 1];
      ++i;
    } else if (label.compare(i, 3, " | ") == 0) {
      return field;
    } else {
      field += label[i];
    }
  }
  fail("record label without an op field: " + label, dot);
}

// What the drawing shows for a name: Graphviz has no use for a carriage return, so
// write_dot drops it; an unnamed node shows its id.
std::string shown(std::string_view name, NodeId id) {
  std::string out;
  for (const char c : name) {
    if (c != '\r') out += c;
  }
  return name.empty() ? "#" + std::to_string(id) : out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  graph::DotOptions options{.edge_labels = true};
  std::uint32_t highlight_to = 0;
  bool highlight = false, collapse = false;
  if (size >= 5) {
    const std::uint8_t flags = data[0];
    options.values = (flags & 1) != 0;
    options.grads = (flags & 2) != 0;
    options.clusters = (flags & 4) != 0;
    options.rankdir = (flags & 8) != 0 ? "TB" : "LR";
    highlight = (flags & 16) != 0;
    collapse = (flags & 32) != 0;
    std::memcpy(&highlight_to, data + 1, sizeof highlight_to);
    data += 5;
    size -= 5;
  }
  const std::string_view name(reinterpret_cast<const char*>(data), size);
  // The name goes on a scalar leaf, on an op node inside a scope of the same name (when
  // it is a valid scope name), and as the base name of a leaf tensor (name_t1, name_t2).
  // The op and the tensor add a suffix ending in a letter: one name twice is refused
  // (Note [Name clashes] in autodiff/names.cpp), and a letter keeps them from spelling
  // one another's element numbers.
  Tape tape;
  const Var x = tape.input(1.5, name);
  Var y;
  const bool scoped = !name.empty() && name.find('/') == std::string_view::npos;
  if (scoped) tape.push_scope(name);
  y = x * 2.0;
  tape.set_name(y.node(), std::string(name) + "_op");
  if (scoped) tape.pop_scope();
  const std::vector<double> values{1.0, 2.0};
  const TensorVar t = tape.input(values, Shape{2}, std::string(name) + "_t");
  const Var loss = y + t[0] * t[1];
  tape.backward(loss);

  std::vector<std::string> expected;
  for (NodeId n = 0; n < tape.node_count(); ++n) expected.push_back(shown(tape.name(n), n));

  if (highlight) options.highlight_paths = {{0, highlight_to}};
  if (collapse && scoped) options.collapse_scopes = {std::string(name)};
  std::ostringstream out;
  try {
    graph::write_dot(out, graph::view(tape), options);
  } catch (const Error&) {
    if (highlight && highlight_to < tape.node_count()) fail("a highlight id inside the graph was refused", "");
    return 0;  // an id outside the graph
  }
  if (highlight && highlight_to >= tape.node_count()) fail("a highlight id outside the graph was drawn", out.str());
  const std::string dot = out.str();
  ReadGraph r;
  boost::dynamic_properties dp(boost::ignore_other_properties);
  dp.property("node_id", boost::get(&ReadNode::id, r));
  dp.property("label", boost::get(&ReadNode::label, r));
  try {
    if (!boost::read_graphviz(dot, r, dp)) fail("read_graphviz rejected the file", dot);
  } catch (const std::exception& e) {
    fail(std::string("read_graphviz: ") + e.what(), dot);
  }
  if (!options.collapse_scopes.empty()) return 0;  // ids and names of collapsed boxes differ
  if (boost::num_vertices(r) != expected.size()) fail("wrong node count", dot);
  for (std::size_t v = 0; v < boost::num_vertices(r); ++v) {
    const std::size_t id = std::stoul(r[v].id);
    if (id >= expected.size()) fail("unknown node id " + r[v].id, dot);
    if (first_field(r[v].label, dot) != expected[id]) fail("node " + r[v].id + " reads back with another name", dot);
  }
  return 0;
}
