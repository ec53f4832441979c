// SPDX-License-Identifier: MIT
// A small network described in JSON, rebuilt on a tape on demand: what the gradpath
// command grads, draws and checks without the user writing C++.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "autodiff/tensor.hpp"

namespace gradpath::cli {

// A bad model file: the message is one line naming the file, the entry and the problem.
class ModelError : public Error {
 public:
  using Error::Error;
};

// `text` as it may appear in a one-line message: control characters (a newline, ESC)
// and backslashes escaped (\n, \x1b, \\), so a name from a file can neither break the
// line nor reach the terminal raw. quote() adds the single quotes messages put around names.
std::string escaped(std::string_view text);
std::string quote(std::string_view text);

// The whole of a file the command reads (a model, a formula file), at most `max_bytes`;
// an Error naming the path for a directory, a file that cannot be opened or read, or
// one that is larger. `what` names the file's role: "model file", "formula file".
std::string read_file(const std::string& path, std::string_view what, std::size_t max_bytes);

// The largest model file the command reads: 64 MiB of JSON (about 6 million values).
inline constexpr std::size_t max_model_bytes = std::size_t{64} << 20;

// The cap the command puts on each tape's memory (Tape::set_memory_limit), in MiB: the
// --memory-limit option, else the GRADPATH_MEMORY_LIMIT environment variable, else this
// default; 0 is none. The fuzz harness takes its limit the same way.
inline constexpr std::size_t default_memory_limit_mib = 2048;
// The limit in bytes from the option's text when given, else as above; an Error for
// anything but a whole number of MiB.
std::size_t memory_limit_bytes(const std::optional<std::string>& option);

class Model {
 public:
  // Parses and validates; `source` names the file in error messages.
  static Model parse(std::string_view json_text, std::string source);
  static Model load(const std::string& path);

  // Records the leaves and every op on `tape`; returns every named tensor, leaves first.
  std::vector<std::pair<std::string, TensorVar>> build(Tape& tape) const;
  // The loss tensor among those build() returned.
  const std::string& loss() const { return loss_; }
  const std::string& source() const { return source_; }

 private:
  struct Leaf {
    std::string name;
    Shape shape;
    std::vector<double> values;
    bool is_param;
  };
  struct Step {
    std::size_t index;  // position in the file's "graph" array
    std::string op;
    std::vector<std::string> in;
    std::string out;
    nlohmann::json entry;
  };

  [[noreturn]] void fail(const std::string& where, const std::string& problem) const;
  void order_steps();  // dependency order; a cycle or an undefined name is an error

  std::string source_;
  std::vector<Leaf> leaves_;
  std::vector<Step> steps_;
  std::string loss_;
};

}  // namespace gradpath::cli
