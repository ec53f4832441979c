// SPDX-License-Identifier: MIT
// A small network described in JSON, rebuilt on a tape on demand: what the gradpath
// command grads, draws and checks without the user writing C++.
#pragma once

#include <map>
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
    nlohmann::ordered_json entry;
  };

  [[noreturn]] void fail(const std::string& where, const std::string& problem) const;
  void order_steps();  // dependency order; a cycle or an undefined name is an error

  std::string source_;
  std::vector<Leaf> leaves_;
  std::vector<Step> steps_;
  std::string loss_;
};

}  // namespace gradpath::cli
