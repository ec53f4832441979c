// SPDX-License-Identifier: MIT
// Misuse of the tape, tensors, the checker and the model loader: each raises an Error whose
// text names the call and what was wrong with its arguments.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "autodiff/gradcheck.hpp"
#include "autodiff/tensor.hpp"
#include "check/checker.hpp"
#include "cli/model.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;
using Catch::Contains;
using check::BuildFn;
using check::check_formula;
using check::CheckOptions;

TEST_CASE("names: set_name and set_range_name refuse nodes off the tape or already named", "[errors]") {
  Tape tape;
  tape.input(1.0);
  tape.input(2.0);
  CHECK_THROWS_WITH(tape.set_range_name(1, 5, "x"), Contains("set_name: nodes 1+5 are not on the tape"));
  tape.set_range_name(0, 2, "a");
  CHECK_THROWS_WITH(tape.set_name(1, "b"), Contains("node 1 already belongs to the named range 'a'"));
}

TEST_CASE("scopes: an empty or '/'-holding name, and popping with none open", "[errors]") {
  Tape tape;
  CHECK_THROWS_WITH(tape.pop_scope(), Contains("pop_scope: no scope is open"));
  CHECK_THROWS_WITH(tape.push_scope(""), Contains("push_scope: a scope name must be non-empty"));
  CHECK_THROWS_WITH(tape.push_scope("conv/dense"), Contains("got 'conv/dense'"));
}

TEST_CASE("set_value only overwrites leaves", "[errors]") {
  Tape tape;
  Var x = tape.input(1.0, "x");
  Var y = (x * x).named("y");
  CHECK_THROWS_WITH(tape.set_value(y, 2.0), Contains("set_value: node 1 ('y') is a mul"));
}

TEST_CASE("node_of, tensor_record and tensor_partials name the node or slot out of range", "[errors]") {
  Tape tape;
  const double values[] = {1.0, 2.0, 3.0};
  TensorVar a = tape.input(values, Shape{3}, "a");
  TensorVar e = ops::exp(a);
  CHECK_THROWS_WITH(tape.node_of(1000), Contains("node_of: slot 1000 is not on the tape"));
  CHECK_THROWS_WITH(tape.tensor_record(0), Contains("tensor_record: node 0 is not a tensor node"));
  const NodeId exp_node = tape.node_of(e.offset());
  CHECK_THROWS_WITH(tape.tensor_partials(exp_node, 3), Contains("tensor_partials: element 3 is out of range"));
}

TEST_CASE("shapes: rank and dimension limits", "[errors]") {
  Shape shape;
  for (std::size_t i = 0; i < Shape::max_rank; ++i) shape.push_back(1);
  CHECK_THROWS_WITH(shape.push_back(1), Contains("shape: rank above " + std::to_string(Shape::max_rank)));
  CHECK_THROWS_WITH(Shape{}.push_back(std::size_t{1} << 33), Contains("shape: dimension 8589934592 is too large"));
}

TEST_CASE("tensors: empty shapes, shapes past the tape, element indices", "[errors]") {
  Tape tape;
  const double values[] = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0};
  TensorVar a = tape.input(values, Shape{2, 3}, "a");
  CHECK_THROWS_WITH(TensorVar(a.first(), Shape{0}), Contains("tensor: empty shape"));
  CHECK_THROWS_WITH(TensorVar(a.first(), Shape{7}), Contains("tensor: shape [7] from slot 0"));
  CHECK_THROWS_WITH(a[6], Contains("element: index 6 is out of range for shape [2, 3]"));
  CHECK_THROWS_WITH(a.at({1}), Contains("element: 1 indices for shape [2, 3]"));
  CHECK_THROWS_WITH(a.at({0, 3}), Contains("element: index 3 on axis 1"));
}

TEST_CASE("tensors: grads before backward, naming part of a tensor node", "[errors]") {
  Tape tape;
  const double values[] = {1.0, 2.0, 3.0, 4.0};
  TensorVar e = ops::exp(tape.input(values, Shape{4}, "a"));
  CHECK_THROWS_WITH(e.grads(), Contains("grads: backward() has not run on this tape"));
  TensorVar half = TensorVar(e.first(), Shape{2});
  CHECK_THROWS_WITH(half.named("h"), Contains("named: tensor [2] spans part of a tensor node"));
  CHECK_THROWS_WITH(e[1].named("e2"), Contains("named: 'e2' would name one element of a tensor node"));
}

TEST_CASE("an empty n-ary sum has no tape", "[errors]") {
  CHECK_THROWS_WITH(gradpath::sum(std::span<const Var>{}), Contains("sum: no terms"));
}

TEST_CASE("gradcheck refuses a function that answers on another tape", "[errors]") {
  Tape other;
  Var elsewhere = other.input(1.0);
  const double point[] = {0.5};
  CHECK_THROWS_WITH(gradcheck([&](Tape&, std::span<const Var>) { return elsewhere; }, point),
                    Contains("gradcheck: the function returned a Var from another tape"));
}

TEST_CASE("the checker reports negative redraws and a build that records another graph each time", "[errors]") {
  const BuildFn build = [](Tape& tape) { tape.input(1.0, "x"); };
  CheckOptions options;
  options.redraws = -1;
  CHECK_THROWS_WITH(check_formula(build, "x = 1", options), Contains("check: redraws must be >= 0, got -1"));
  int calls = 0;
  const BuildFn growing = [&calls](Tape& tape) {
    for (int i = 0; i <= calls; ++i) tape.input(1.0);
    ++calls;
  };
  CHECK_THROWS_WITH(check_formula(growing, "x = 1"),
                    Contains("check: the build recorded 1 nodes at the current point but 2 at redraw 1"));
}

TEST_CASE("more tapes alive than the registry holds is an Error, not a wrap-around", "[errors]") {
  std::vector<std::unique_ptr<Tape>> tapes;
  const auto make_all = [&tapes] {
    for (std::uint32_t i = 0; i <= detail::max_live_tapes; ++i) tapes.push_back(std::make_unique<Tape>());
  };
  CHECK_THROWS_WITH(make_all(), Contains("Tape: more than " + std::to_string(detail::max_live_tapes) + " tapes alive"));
  tapes.clear();
  Tape after;  // indices are free again
  CHECK(after.input(2.0).value() == 2.0);
}

namespace {
// A model with input a of shape (2, 2) and one graph entry.
std::string model_with(const std::string& entry, const std::string& input_shape = "[2, 2]") {
  return R"({"inputs": {"a": {"shape": )" + input_shape + R"(, "values": [1, 2, 3, 4]}}, "graph": [)" + entry +
         R"(], "loss": "L"})";
}
// Parses the model and records it on a tape, where op options are read.
void parse(const std::string& text) {
  Tape tape;
  cli::Model::parse(text, "m.json").build(tape);
}
}  // namespace

TEST_CASE("model options: each missing or malformed option is named", "[errors][cli]") {
  CHECK_THROWS_WITH(parse(model_with(R"({"op": "sum", "in": ["a"], "out": "L"})", "4")),
                    Contains("'shape' must be an array of sizes, got 4"));
  CHECK_THROWS_WITH(parse(model_with(R"({"op": "pow", "in": ["a"], "out": "L"})")),
                    Contains("option 'exponent' (a number) is required"));
  CHECK_THROWS_WITH(parse(model_with(R"({"op": "reshape", "in": ["a"], "out": "L"})")),
                    Contains("option 'shape' is required"));
  CHECK_THROWS_WITH(parse(model_with(R"({"op": "transpose", "in": ["a"], "axes": [1], "out": "L"})")),
                    Contains("option 'axes' must be two integers, got an array of 1 entries"));
  CHECK_THROWS_WITH(parse(model_with(R"({"op": "softmax_cross_entropy", "in": ["a"], "out": "L"})")),
                    Contains("option 'labels' (an array of class indices) or a second input holding them"));
  CHECK_THROWS_WITH(
      parse(model_with(R"({"op": "softmax_cross_entropy", "in": ["a"], "labels": [0, 0.5], "out": "L"})")),
      Contains("labels must be integer class indices, got 0.5"));
}
