// SPDX-License-Identifier: MIT
#include "cli/model.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>

#include "autodiff/functions.hpp"
#include "graph/text.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/pool.hpp"
#include "ops/tensor.hpp"

namespace gradpath::cli {

// std::map objects: an ordered_json object finds a key by a linear scan, which made
// loading a model with n leaves O(n^2). The file's order of leaves is kept apart.
using Json = nlohmann::json;

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
// JSON keeps a non-negative integer as unsigned and a negative one as signed; any other
// kind is refused rather than converted. The op checks the range it accepts.
std::size_t size_option(const Json& entry, const char* key, std::size_t fallback) {
  if (!entry.contains(key)) return fallback;
  const Json& v = entry[key];
  if (!v.is_number_unsigned()) {
    throw Error(std::string("option '") + key + "' must be a non-negative integer, got " + brief(v));
  }
  return v.get<std::size_t>();
}

// An integer JSON value that fits an int, never truncated from a larger one.
std::optional<int> int_of(const Json& v) {
  if (v.is_number_unsigned() ? v.get<std::uint64_t>() > INT_MAX
                             : !v.is_number_integer() || v.get<std::int64_t>() < INT_MIN) {
    return std::nullopt;
  }
  return v.get<int>();
}

// An axis, negative from the end; the op checks it against the rank.
int axis_of(const Json& v, const std::string& what) {
  const auto axis = int_of(v);
  if (!axis) throw Error(what + " must be an axis (an integer, negative from the end), got " + brief(v));
  return *axis;
}

bool keepdim_option(const Json& entry) {
  if (!entry.contains("keepdim")) return false;
  const Json& v = entry["keepdim"];
  if (!v.is_boolean()) throw Error("option 'keepdim' must be true or false, got " + brief(v));
  return v.get<bool>();
}

Shape shape_of(const Json& dims) {
  if (!dims.is_array()) throw Error("'shape' must be an array of sizes, got " + brief(dims));
  Shape shape;
  std::size_t elements = 1;
  for (const Json& d : dims) {
    if (!d.is_number_unsigned()) {
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
    const auto label = int_of(l);
    if (!label) throw Error("labels must be integer class indices, got " + brief(l));
    labels.push_back(*label);
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
      what << "labels " << quote(name) << " " << t.shape().str() << ": element " << i << " is " << v
           << (integral ? ", out of range for a class index" : ", not an integer class index");
      throw Error(what.str());
    }
    labels.push_back(static_cast<int>(v));
  }
  return labels;
}

// A function of the table (autodiff/functions.hpp) by its name; a function with a parameter
// takes it as the option named after it: {"op": "leaky_relu", "slope": 0.2}.
OpBuilder function_builder(const FunctionInfo& f) {
  return {1, 1, [&f](const Inputs& in, const Json& e, const std::string& out) {
            std::optional<double> p;
            if (f.has_parameter() && e.contains(f.parameter.name)) {
              const Json& v = e[std::string(f.parameter.name)];
              if (!v.is_number()) {
                throw Error(std::string(f.name) + ": option '" + std::string(f.parameter.name) +
                            "' must be a number, got " + brief(v));
              }
              p = v.get<double>();
            }
            return ops::apply_function(f.id, in[0], p, out);
          }};
}

// The ops listed, and every function of the table.
std::map<std::string, OpBuilder, std::less<>> with_functions(std::map<std::string, OpBuilder, std::less<>> ops) {
  for (const FunctionInfo& f : functions) ops.emplace(f.name, function_builder(f));
  return ops;
}

// Every op of ops/ a model can use, by the name the C++ API gives it.
const std::map<std::string, OpBuilder, std::less<>>& op_table() {
  static const std::map<std::string, OpBuilder, std::less<>> table = with_functions({
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
      {"max", binary<ops::max>()},
      {"min", binary<ops::min>()},
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
          if (!axes.is_array() || axes.size() != 2)
            throw Error("option 'axes' must be two integers, got " + brief(axes));
          return ops::transpose(in[0], axis_of(axes[0], "option 'axes'"), axis_of(axes[1], "option 'axes'"), out);
        }}},
      {"sum",
       {1, 1,
        [](const Inputs& in, const Json& e, const std::string& out) {
          const auto keep = keepdim_option(e) ? ops::KeepDim::yes : ops::KeepDim::no;
          if (!e.contains("axis")) return ops::sum(in[0], out);
          return ops::sum(in[0], axis_of(e["axis"], "option 'axis'"), keep, out);
        }}},
      {"mean",
       {1, 1,
        [](const Inputs& in, const Json& e, const std::string& out) {
          const auto keep = keepdim_option(e) ? ops::KeepDim::yes : ops::KeepDim::no;
          if (!e.contains("axis")) return ops::mean(in[0], out);
          return ops::mean(in[0], axis_of(e["axis"], "option 'axis'"), keep, out);
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
  });
  return table;
}

// A SAX pass over the text, after the DOM parse: refuses a key given twice in one object
// (the JSON library keeps the last silently) and notes the order of the leaves in
// "inputs" and "params", which a std::map object forgets. (nlohmann's parser callback
// could do this in the DOM parse, but rescans the parent object at every object's end.)
class KeyCheck : public nlohmann::json_sax<Json> {
 public:
  std::map<std::string, std::vector<std::string>, std::less<>> leaf_order;

  bool start_object(std::size_t) override {
    open_.push_back({{}, key_});
    return true;
  }
  bool end_object() override {
    open_.pop_back();
    return true;
  }
  bool key(string_t& key) override {
    key_ = key;
    if (!open_.back().keys.insert(key).second) {
      throw Error(
          "key " + quote(key) + " appears twice in " +
          (open_.size() == 1 ? std::string("the top-level object") : "the object of " + quote(open_.back().name)));
    }
    if (open_.size() == 1) section_ = key;
    if (open_.size() == 2 && arrays_ == 0 && (section_ == "inputs" || section_ == "params")) {
      leaf_order[section_].push_back(key);
    }
    return true;
  }
  bool start_array(std::size_t) override {
    ++arrays_;
    return true;
  }
  bool end_array() override {
    --arrays_;
    return true;
  }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  struct Object {
    std::set<std::string, std::less<>> keys;
    std::string name;  // the key it is the value of
  };
  std::vector<Object> open_;
  std::string key_, section_;
  std::size_t arrays_ = 0;  // open arrays: an object inside one is no leaf section
};

}  // namespace

std::string escaped(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (u < 0x20 || u == 0x7f) {
      out += {'\\', 'x', hex[u >> 4], hex[u & 15]};
    } else {
      out += c;
    }
  }
  return out;
}

std::string quote(std::string_view text) { return "'" + escaped(text) + "'"; }

std::string read_file(const std::string& path, std::string_view what, std::size_t max_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(escaped(path) + ": is a directory, not a " + std::string(what));
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error(escaped(path) + ": cannot open the " + std::string(what));
  // Read in blocks up to the cap: a size from stat means nothing for /dev/zero or a pipe.
  std::string text;
  std::array<char, 1 << 16> block{};
  while (file.read(block.data(), block.size()) || file.gcount() > 0) {
    text.append(block.data(), static_cast<std::size_t>(file.gcount()));
    if (text.size() > max_bytes) {
      throw Error(escaped(path) + ": the " + std::string(what) + " is larger than " + std::to_string(max_bytes >> 20) +
                  " MiB");
    }
  }
  if (file.bad()) throw Error(escaped(path) + ": cannot read the " + std::string(what));
  return text;
}

std::size_t memory_limit_bytes(const std::optional<std::string>& option) {
  const char* env = std::getenv("GRADPATH_MEMORY_LIMIT");
  const std::string from = option ? "--memory-limit" : env ? "GRADPATH_MEMORY_LIMIT" : "";
  if (from.empty()) return default_memory_limit_mib << 20;
  const std::string text = option ? *option : env;
  // Whole MiB, small enough that the bytes fit in 64 bits.
  constexpr std::size_t max_mib = std::size_t{1} << 40;
  std::size_t mib = 0;
  const bool digits = !text.empty() && text.size() <= 13 &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) mib = std::stoull(text);
  if (!digits || mib > max_mib) {
    throw Error(from + ": the tape memory limit must be a whole number of MiB up to " + std::to_string(max_mib) +
                " (0 for none), got " + quote(text));
  }
  return mib << 20;
}

void Model::fail(const std::string& where, const std::string& problem) const {
  throw ModelError(escaped(source_) + ": " + where + ": " + problem);
}

Model Model::load(const std::string& path) {
  std::string text;
  try {
    text = read_file(path, "model file", max_model_bytes);
  } catch (const Error& e) {
    throw ModelError(e.what());
  }
  return parse(text, path);
}

Model Model::parse(std::string_view json_text, std::string source) {
  Model m;
  m.source_ = std::move(source);
  if (const auto at = too_deep(json_text)) {
    m.fail("malformed JSON", "arrays and objects nest deeper than " + std::to_string(max_nesting) + " levels at line " +
                                 std::to_string(at->first) + ", column " + std::to_string(at->second));
  }
  Json doc;
  KeyCheck keys;
  try {
    doc = Json::parse(json_text);
    Json::sax_parse(json_text, &keys);
  } catch (const nlohmann::json::exception& e) {  // a syntax error, or a number out of range
    m.fail("malformed JSON", e.what());
  } catch (const Error& e) {
    m.fail("malformed JSON", e.what());
  }
  if (!doc.is_object()) m.fail("top level", "expected an object with \"inputs\", \"params\", \"graph\" and \"loss\"");
  for (const auto& [key, _] : doc.items()) {
    if (key != "inputs" && key != "params" && key != "graph" && key != "loss")
      m.fail("top level", "unknown key " + quote(key));
  }
  std::set<std::string, std::less<>> defined;
  for (const char* section : {"inputs", "params"}) {
    if (!doc.contains(section)) continue;
    if (!doc[section].is_object()) m.fail(section, "expected an object of named tensors");
    for (const std::string& name : keys.leaf_order[section]) {
      const Json& spec = doc[section][name];
      const std::string where = std::string(section) + "." + escaped(name);
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
      m.fail(where, "unknown op " + quote(step.op) + " (known: " + graph::join(op_table(), ", ", [](const auto& entry) {
                      return entry.first;
                    }) + ")");
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
    if (!defined.insert(step.out).second) m.fail(where + " (" + step.op + ")", quote(step.out) + " is defined twice");
    m.steps_.push_back(std::move(step));
  }
  if (!doc.contains("loss") || !doc["loss"].is_string()) m.fail("loss", "expected the name of the loss tensor");
  m.loss_ = doc["loss"].get<std::string>();
  if (!defined.contains(m.loss_)) m.fail("loss", quote(m.loss_) + " is not defined");
  m.order_steps();
  return m;
}

// Kahn's algorithm over the entries, so a file may list them in any order: each entry
// counts its inputs not yet made, and making a name releases the entries waiting on it.
// Among the entries ready at once the file's order wins, so a file already in order keeps
// it (node ids, the graph's layout). Not boost::topological_sort: its reverse DFS
// postorder reorders independent entries. O(n log n) in all.
void Model::order_steps() {
  std::unordered_map<std::string_view, std::size_t> producer;  // out name -> step
  for (std::size_t i = 0; i < steps_.size(); ++i) producer.emplace(steps_[i].out, i);
  std::set<std::string_view> leaves;
  for (const Leaf& l : leaves_) leaves.insert(l.name);
  std::vector<std::size_t> waiting(steps_.size(), 0);
  std::vector<std::vector<std::size_t>> consumers(steps_.size());
  std::set<std::size_t> ready;
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    for (const std::string& n : steps_[i].in) {
      if (leaves.contains(n)) continue;
      const auto from = producer.find(n);
      if (from == producer.end()) {
        fail("graph[" + std::to_string(steps_[i].index) + "] (" + steps_[i].op + ")", "undefined name " + quote(n));
      }
      consumers[from->second].push_back(i);
      ++waiting[i];
    }
    if (waiting[i] == 0) ready.insert(i);
  }
  std::vector<std::size_t> order;
  while (!ready.empty()) {
    const std::size_t next = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(next);
    for (std::size_t c : consumers[next]) {
      if (--waiting[c] == 0) ready.insert(c);
    }
  }
  if (order.size() != steps_.size()) {
    // What is left waits on itself: the first such entry names an input made by the cycle.
    const auto stuck = std::find_if(waiting.begin(), waiting.end(), [](std::size_t w) { return w > 0; });
    const Step& s = steps_[static_cast<std::size_t>(stuck - waiting.begin())];
    const auto input = std::find_if(s.in.begin(), s.in.end(), [&](const std::string& n) {
      return !leaves.contains(n) && waiting[producer.at(n)] > 0;
    });
    fail("graph[" + std::to_string(s.index) + "] (" + s.op + ")",
         "input " + quote(*input) + " depends on this entry's own output (a cycle)");
  }
  std::vector<Step> ordered;
  ordered.reserve(steps_.size());
  for (std::size_t i : order) ordered.push_back(std::move(steps_[i]));
  steps_ = std::move(ordered);
}

std::vector<std::pair<std::string, TensorVar>> Model::build(Tape& tape) const {
  std::vector<std::pair<std::string, TensorVar>> named;
  named.reserve(leaves_.size() + steps_.size());
  std::unordered_map<std::string_view, std::size_t> index;  // name -> position in `named`
  auto add = [&](const std::string& name, const TensorVar& t) {
    index.emplace(name, named.size());
    named.emplace_back(name, t);
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
    add(l.name, t);
  }
  for (const Step& s : steps_) {
    Inputs in;
    for (const std::string& n : s.in) in.push_back(named[index.at(n)].second);
    try {
      add(s.out, op_table().find(s.op)->second.build(in, s.entry, s.out));
    } catch (const ModelError&) {
      throw;
    } catch (const Error& e) {
      fail("graph[" + std::to_string(s.index) + "] (" + s.op + ")", e.what());
    }
  }
  return named;
}

}  // namespace gradpath::cli
