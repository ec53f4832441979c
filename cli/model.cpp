// SPDX-License-Identifier: MIT
#include "cli/model.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/pool.hpp"
#include "ops/tensor.hpp"

namespace gradpath::cli {

using Json = nlohmann::ordered_json;

namespace {

constexpr std::size_t max_elements = std::size_t{1} << 26;  // per leaf: 512 MiB of doubles

// The line and column where arrays and objects nest deeper than max_nesting, if they do:
// checked before parsing, since the JSON library copies nested values recursively.
constexpr int max_nesting = 64;
std::optional<std::pair<int, int>> too_deep(std::string_view text) {
  int depth = 0, line = 1, column = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    ++column;
    if (c == '\n') line += 1, column = 0;
    if (in_string) {
      in_string = escaped || c != '"';
      escaped = !escaped && c == '\\';
    } else if (c == '"') {
      in_string = true;
    } else if ((c == '[' || c == '{') && ++depth > max_nesting) {
      return std::pair{line, column};
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::nullopt;
}

// A bad value as shown in a message: a short scalar, or only the kind and size of an
// array or object (dumping those whole could be huge or recurse without bound).
std::string brief(const Json& v) {
  if (v.is_array()) return "an array of " + std::to_string(v.size()) + " entries";
  if (v.is_object()) return "an object of " + std::to_string(v.size()) + " keys";
  const std::string text = v.dump();
  return text.size() <= 40 ? text : text.substr(0, 37) + "...";
}

bool is_identifier(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// Reads option `key` of a graph entry as a non-negative integer, or `fallback` when absent.
std::size_t size_option(const Json& entry, const char* key, std::size_t fallback) {
  if (!entry.contains(key)) return fallback;
  const Json& v = entry[key];
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0) {
    throw Error(std::string("option '") + key + "' must be a non-negative integer, got " + brief(v));
  }
  return v.get<std::size_t>();
}

int axis_option(const Json& entry, const char* key) {
  const Json& v = entry[key];
  if (!v.is_number_integer()) throw Error(std::string("option '") + key + "' must be an integer, got " + brief(v));
  return v.get<int>();
}

Shape shape_of(const Json& dims) {
  if (!dims.is_array()) throw Error("'shape' must be an array of sizes, got " + brief(dims));
  Shape shape;
  std::size_t elements = 1;
  for (const Json& d : dims) {
    if (!d.is_number_integer() || d.get<std::int64_t>() < 0) {
      throw Error("'shape' entries must be non-negative integers, got " + brief(d));
    }
    const auto n = d.get<std::size_t>();
    if (n != 0 && elements > max_elements / n) {
      throw Error("shape " + shape.str() + " times " + std::to_string(n) + " has more than " +
                  std::to_string(max_elements) + " elements");
    }
    elements *= n;
    shape.push_back(n);
  }
  return shape;
}

using Inputs = std::vector<TensorVar>;
struct OpBuilder {
  std::size_t min_in, max_in;
  std::function<TensorVar(const Inputs&, const Json&, const std::string&)> build;
};

ops::Conv2dOptions conv_options(const Json& e) {
  return {.stride = size_option(e, "stride", 1), .padding = size_option(e, "padding", 0)};
}
ops::Pool2dOptions pool_options(const Json& e) {
  ops::Pool2dOptions o{.kernel = size_option(e, "kernel", 2), .padding = size_option(e, "padding", 0)};
  if (e.contains("stride")) o.stride = size_option(e, "stride", 0);
  return o;
}

template <TensorVar (*F)(const TensorVar&, std::string_view)>
OpBuilder unary() {
  return {1, 1, [](const Inputs& in, const Json&, const std::string& out) { return F(in[0], out); }};
}
template <TensorVar (*F)(const ops::Operand&, const ops::Operand&, std::string_view)>
OpBuilder binary() {
  return {2, 2, [](const Inputs& in, const Json&, const std::string& out) { return F(in[0], in[1], out); }};
}

template <TensorVar (*F)(const TensorVar&, const ops::Operand&, std::string_view)>
OpBuilder binary_loss() {
  return {2, 2, [](const Inputs& in, const Json&, const std::string& out) { return F(in[0], in[1], out); }};
}

// softmax_cross_entropy's class indices, from the option "labels": [0, 2, ...].
std::vector<int> labels_option(const Json& e) {
  if (!e.contains("labels") || !e["labels"].is_array()) {
    throw Error("option 'labels' (an array of class indices) or a second input holding them is required");
  }
  std::vector<int> labels;
  for (const Json& l : e["labels"]) {
    if (!l.is_number_integer() || l.get<std::int64_t>() < INT_MIN || l.get<std::int64_t>() > INT_MAX) {
      throw Error("labels must be integer class indices, got " + brief(l));
    }
    labels.push_back(l.get<int>());
  }
  return labels;
}

// The class indices held by a tensor (PyTorch's integer target): each value must be an
// integer; the op itself checks the range against the number of classes.
std::vector<int> labels_of(const TensorVar& t, const std::string& name) {
  std::vector<int> labels;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const double v = t.values()[i];
    const bool integral = std::floor(v) == v;  // false for NaN and infinities
    if (!integral || v < INT_MIN || v > INT_MAX) {
      std::ostringstream what;
      what << "labels '" << name << "' " << t.shape().str() << ": element " << i << " is " << v
           << (integral ? ", out of range for a class index" : ", not an integer class index");
      throw Error(what.str());
    }
    labels.push_back(static_cast<int>(v));
  }
  return labels;
}

// Every op of ops/ a model can use, by the name the C++ API gives it.
const std::map<std::string, OpBuilder, std::less<>>& op_table() {
  static const std::map<std::string, OpBuilder, std::less<>> table = {
      {"conv2d_mac",
       {2, 3,
        [](const Inputs& in, const Json& e, const std::string& out) {
          return in.size() == 3 ? ops::conv2d_mac(in[0], in[1], in[2], conv_options(e), out)
                                : ops::conv2d_mac(in[0], in[1], conv_options(e), out);
        }}},
      {"conv2d",
       {2, 3,
        [](const Inputs& in, const Json& e, const std::string& out) {
          return in.size() == 3 ? ops::conv2d(in[0], in[1], in[2], conv_options(e), out)
                                : ops::conv2d(in[0], in[1], conv_options(e), out);
        }}},
      {"max_pool2d",
       {1, 1,
        [](const Inputs& in, const Json& e, const std::string& out) {
          return ops::max_pool2d(in[0], pool_options(e), out);
        }}},
      {"avg_pool2d",
       {1, 1,
        [](const Inputs& in, const Json& e, const std::string& out) {
          return ops::avg_pool2d(in[0], pool_options(e), out);
        }}},
      {"dense",
       {2, 3,
        [](const Inputs& in, const Json&, const std::string& out) {
          return in.size() == 3 ? ops::dense(in[0], in[1], in[2], out) : ops::dense(in[0], in[1], out);
        }}},
      {"matmul",
       {2, 2, [](const Inputs& in, const Json&, const std::string& out) { return ops::matmul(in[0], in[1], out); }}},
      {"add", binary<ops::add>()},
      {"sub", binary<ops::sub>()},
      {"mul", binary<ops::mul>()},
      {"div", binary<ops::div>()},
      {"relu", unary<ops::relu>()},
      {"tanh", unary<ops::tanh>()},
      {"sigmoid", unary<ops::sigmoid>()},
      {"exp", unary<ops::exp>()},
      {"log", unary<ops::log>()},
      {"sqrt", unary<ops::sqrt>()},
      {"abs", unary<ops::abs>()},
      {"neg", unary<ops::neg>()},
      {"softmax", unary<ops::softmax>()},
      {"log_softmax", unary<ops::log_softmax>()},
      {"pow",
       {1, 1,
        [](const Inputs& in, const Json& e, const std::string& out) {
          if (!e.contains("exponent") || !e["exponent"].is_number()) {
            throw Error("option 'exponent' (a number) is required");
          }
          return ops::pow(in[0], e["exponent"].get<double>(), out);
        }}},
      {"flatten",
       {1, 1,
        [](const Inputs& in, const Json& e, const std::string&) {
          return ops::flatten(in[0], size_option(e, "start_axis", 0));
        }}},
      {"reshape",
       {1, 1,
        [](const Inputs& in, const Json& e, const std::string&) {
          if (!e.contains("shape")) throw Error("option 'shape' is required");
          return ops::reshape(in[0], shape_of(e["shape"]));
        }}},
      {"transpose",
       {1, 1,
        [](const Inputs& in, const Json& e, const std::string& out) {
          if (!e.contains("axes")) return ops::transpose(in[0], out);
          const Json& axes = e["axes"];
          if (!axes.is_array() || axes.size() != 2 || !axes[0].is_number_integer() || !axes[1].is_number_integer()) {
            throw Error("option 'axes' must be two integers, got " + brief(axes));
          }
          return ops::transpose(in[0], axes[0].get<int>(), axes[1].get<int>(), out);
        }}},
      {"sum",
       {1, 1,
        [](const Inputs& in, const Json& e, const std::string& out) {
          if (!e.contains("axis")) return ops::sum(in[0], out);
          const auto keep = e.value("keepdim", false) ? ops::KeepDim::yes : ops::KeepDim::no;
          return ops::sum(in[0], axis_option(e, "axis"), keep, out);
        }}},
      {"mean",
       {1, 1,
        [](const Inputs& in, const Json& e, const std::string& out) {
          if (!e.contains("axis")) return ops::mean(in[0], out);
          const auto keep = e.value("keepdim", false) ? ops::KeepDim::yes : ops::KeepDim::no;
          return ops::mean(in[0], axis_option(e, "axis"), keep, out);
        }}},
      {"half_squared_error", binary_loss<ops::half_squared_error>()},
      {"mse", binary_loss<ops::mse>()},
      {"softmax_cross_entropy",
       {1, 2,
        [](const Inputs& in, const Json& e, const std::string& out) {
          const std::vector<int> labels =
              in.size() == 2 ? labels_of(in[1], e["in"][1].get<std::string>()) : labels_option(e);
          return ops::softmax_cross_entropy(in[0], labels, out);
        }}},
  };
  return table;
}

}  // namespace

void Model::fail(const std::string& where, const std::string& problem) const {
  throw ModelError(source_ + ": " + where + ": " + problem);
}

Model Model::load(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw ModelError(path + ": cannot open the model file");
  std::stringstream text;
  text << file.rdbuf();
  return parse(text.str(), path);
}

Model Model::parse(std::string_view json_text, std::string source) {
  Model m;
  m.source_ = std::move(source);
  if (const auto at = too_deep(json_text)) {
    m.fail("malformed JSON", "arrays and objects nest deeper than " + std::to_string(max_nesting) + " levels at line " +
                                 std::to_string(at->first) + ", column " + std::to_string(at->second));
  }
  Json doc;
  try {
    doc = Json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {  // a syntax error, or a number out of range
    m.fail("malformed JSON", e.what());
  }
  if (!doc.is_object()) m.fail("top level", "expected an object with \"inputs\", \"params\", \"graph\" and \"loss\"");
  for (const auto& [key, _] : doc.items()) {
    if (key != "inputs" && key != "params" && key != "graph" && key != "loss")
      m.fail("top level", "unknown key '" + key + "'");
  }
  std::set<std::string, std::less<>> defined;
  for (const char* section : {"inputs", "params"}) {
    if (!doc.contains(section)) continue;
    if (!doc[section].is_object()) m.fail(section, "expected an object of named tensors");
    for (const auto& [name, spec] : doc[section].items()) {
      const std::string where = std::string(section) + "." + name;
      if (!is_identifier(name)) m.fail(where, "a name must be letters, digits and '_', not starting with a digit");
      if (!defined.insert(name).second) m.fail(where, "the name is defined twice");
      if (!spec.is_object() || !spec.contains("shape") || !spec.contains("values")) {
        m.fail(where, "expected {\"shape\": [...], \"values\": [...]}");
      }
      Leaf leaf{name, {}, {}, std::string_view(section) == "params"};
      try {
        leaf.shape = shape_of(spec["shape"]);
      } catch (const Error& e) {
        m.fail(where, e.what());
      }
      if (!spec["values"].is_array()) m.fail(where, "'values' must be an array of numbers");
      if (spec["values"].size() != leaf.shape.size()) {
        m.fail(where, std::to_string(spec["values"].size()) + " values for shape " + leaf.shape.str() + " (" +
                          std::to_string(leaf.shape.size()) + " elements)");
      }
      if (leaf.shape.size() == 0) m.fail(where, "empty tensor of shape " + leaf.shape.str());
      for (const Json& v : spec["values"]) {
        if (!v.is_number()) m.fail(where, "values must be numbers, got " + brief(v));
        leaf.values.push_back(v.get<double>());
      }
      m.leaves_.push_back(std::move(leaf));
    }
  }
  if (!doc.contains("graph") || !doc["graph"].is_array()) m.fail("graph", "expected an array of op entries");
  for (std::size_t i = 0; i < doc["graph"].size(); ++i) {
    const Json& e = doc["graph"][i];
    const std::string where = "graph[" + std::to_string(i) + "]";
    if (!e.is_object() || !e.contains("op") || !e["op"].is_string()) m.fail(where, "expected an object with an \"op\"");
    Step step{i, e["op"].get<std::string>(), {}, {}, e};
    const auto op = op_table().find(step.op);
    if (op == op_table().end()) {
      std::string known;
      for (const auto& [name, _] : op_table()) known += (known.empty() ? "" : ", ") + name;
      m.fail(where, "unknown op '" + step.op + "' (known: " + known + ")");
    }
    if (!e.contains("in") || !e["in"].is_array()) m.fail(where + " (" + step.op + ")", "expected \"in\": [names]");
    for (const Json& in : e["in"]) {
      if (!in.is_string()) m.fail(where + " (" + step.op + ")", "\"in\" names must be strings, got " + brief(in));
      step.in.push_back(in.get<std::string>());
    }
    if (step.in.size() < op->second.min_in || step.in.size() > op->second.max_in) {
      m.fail(where + " (" + step.op + ")",
             "takes " + std::to_string(op->second.min_in) +
                 (op->second.max_in > op->second.min_in ? " or " + std::to_string(op->second.max_in) : "") +
                 " inputs, got " + std::to_string(step.in.size()));
    }
    if (!e.contains("out") || !e["out"].is_string() || !is_identifier(e["out"].get<std::string>())) {
      m.fail(where + " (" + step.op + ")", "expected \"out\": a name of letters, digits and '_'");
    }
    step.out = e["out"].get<std::string>();
    if (!defined.insert(step.out).second) m.fail(where + " (" + step.op + ")", "'" + step.out + "' is defined twice");
    m.steps_.push_back(std::move(step));
  }
  if (!doc.contains("loss") || !doc["loss"].is_string()) m.fail("loss", "expected the name of the loss tensor");
  m.loss_ = doc["loss"].get<std::string>();
  if (!defined.contains(m.loss_)) m.fail("loss", "'" + m.loss_ + "' is not defined");
  m.order_steps();
  return m;
}

// Kahn's algorithm over the entries, so a file may list them in any order.
void Model::order_steps() {
  std::set<std::string, std::less<>> ready;
  for (const Leaf& l : leaves_) ready.insert(l.name);
  std::vector<Step> ordered, pending = std::move(steps_);
  while (!pending.empty()) {
    auto next = std::find_if(pending.begin(), pending.end(), [&](const Step& s) {
      return std::all_of(s.in.begin(), s.in.end(), [&](const std::string& n) { return ready.contains(n); });
    });
    if (next == pending.end()) {
      const Step& stuck = pending.front();
      std::set<std::string, std::less<>> outs;
      for (const Step& s : pending) outs.insert(s.out);
      for (const std::string& n : stuck.in) {
        if (ready.contains(n)) continue;
        fail("graph[" + std::to_string(stuck.index) + "] (" + stuck.op + ")",
             outs.contains(n) ? "input '" + n + "' depends on this entry's own output (a cycle)"
                              : "undefined name '" + n + "'");
      }
    }
    ready.insert(next->out);
    ordered.push_back(std::move(*next));
    pending.erase(next);
  }
  steps_ = std::move(ordered);
}

std::vector<std::pair<std::string, TensorVar>> Model::build(Tape& tape) const {
  std::vector<std::pair<std::string, TensorVar>> named;
  auto find = [&](const std::string& name) {
    return std::find_if(named.begin(), named.end(), [&](const auto& p) { return p.first == name; })->second;
  };
  std::set<std::string, std::less<>> labels;  // leaves holding class indices
  for (const Step& s : steps_) {
    if (s.op == "softmax_cross_entropy" && s.in.size() == 2) labels.insert(s.in[1]);
  }
  for (const Leaf& l : leaves_) {
    const TensorVar t = l.is_param ? tape.param(l.values, l.shape, l.name) : tape.input(l.values, l.shape, l.name);
    // Class indices are data, not a point: a redraw (the check command) must not move
    // them off the integers, so they keep the file's values.
    if (labels.contains(l.name)) {
      for (std::size_t i = 0; i < t.size(); ++i) tape.set_value(t[i], l.values[i]);
    }
    named.emplace_back(l.name, t);
  }
  for (const Step& s : steps_) {
    Inputs in;
    for (const std::string& n : s.in) in.push_back(find(n));
    try {
      named.emplace_back(s.out, op_table().find(s.op)->second.build(in, s.entry, s.out));
    } catch (const ModelError&) {
      throw;
    } catch (const Error& e) {
      fail("graph[" + std::to_string(s.index) + "] (" + s.op + ")", e.what());
    }
  }
  return named;
}

}  // namespace gradpath::cli
