// SPDX-License-Identifier: MIT
// The gradpath command and its JSON models: gradients equal the C++ API's, and every
// kind of bad input gets a one-line error naming the file and entry, with exit status 2.
#include <sys/wait.h>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/model.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/pool.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;

namespace {

const std::string models = GRADPATH_SOURCE_DIR "/examples/models/";

struct Run {
  int status;
  std::string out;  // standard output and standard error together
};

Run run(const std::string& args) {
  const std::string command = std::string(GRADPATH_COMMAND) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Writes `text` to a fresh file in the temporary directory and returns its path.
std::string temp_file(const std::string& name, const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path() / ("gradpath_cli_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::ofstream(path) << text;
  return path.string();
}

// The seed network through the C++ API, with the values of examples/models/seed.json.
std::vector<double> seed_grads_by_api(bool pooling) {
  std::vector<double> image, filter;
  for (int j = 1; j <= 25; ++j) image.push_back(0.1 * j);
  for (int i = 1; i <= 9; ++i) filter.push_back((i % 2 ? 0.1 : -0.1) * i);
  const double dense[] = {0.5, -0.3, 0.2, 0.1};
  Tape tape;
  TensorVar a = tape.input(image, Shape{5, 5}, "a");
  Var t = tape.input(1.0, "t");
  TensorVar w = tape.param(filter, Shape{3, 3}, "w");
  TensorVar v = tape.param(dense, Shape{4}, "v");
  Var b = tape.param(0.1, "b");
  TensorVar c = ops::conv2d_mac(a, w, {.stride = pooling ? 1u : 2u});
  if (pooling) c = ops::max_pool2d(c, {.kernel = 2, .stride = 1});
  TensorVar L = ops::half_squared_error(ops::dense(ops::flatten(c), v, b), t);
  tape.backward(L[0]);
  return {w.grads().begin(), w.grads().end()};
}

}  // namespace

TEST_CASE("gradpath grad --json matches the C++ API", "[cli]") {
  const bool pooling = GENERATE(false, true);
  const Run r = run("grad " + models + (pooling ? "seed_pool.json" : "seed.json") + " --json");
  REQUIRE(r.status == 0);
  const auto doc = nlohmann::json::parse(r.out);
  const auto expected = seed_grads_by_api(pooling);
  const auto grads = doc["grads"]["w"].get<std::vector<double>>();
  REQUIRE(grads.size() == 9);
  for (std::size_t i = 0; i < 9; ++i) CHECK(grads[i] == Approx(expected[i]).epsilon(1e-15).margin(1e-300));
  CHECK(doc["values"]["a"].size() == 25);
  CHECK(doc["values"].contains(pooling ? "Z" : "z"));
  CHECK(doc["grads"]["L"][0].get<double>() == 1.0);
}

TEST_CASE("gradpath check: exit 0 when every formula holds, 1 when one fails", "[cli]") {
  const Run good = run("check " + models + "seed.json " + models + "seed_formulas.txt");
  INFO(good.out);
  CHECK(good.status == 0);
  CHECK_THAT(good.out, Catch::Contains("4 pass"));
  const std::string wrong = temp_file("wrong.txt", "dL/dw1 = a1*dL/dz1 + a13*dL/dz2 + a11*dL/dz3 + a13*dL/dz4\n");
  const Run bad = run("check " + models + "seed.json " + wrong);
  INFO(bad.out);
  CHECK(bad.status == 1);
  CHECK_THAT(bad.out, Catch::Contains("term 2") && Catch::Contains("a3") && Catch::Contains("a13"));
  const Run as_json = run("check " + models + "seed.json " + wrong + " --json");
  CHECK(as_json.status == 1);
  CHECK_NOTHROW(nlohmann::json::parse(as_json.out));
}

TEST_CASE("gradpath dot writes a graph Graphviz can read", "[cli]") {
  const std::string out = temp_file("seed.dot", "");
  const Run r = run("dot " + models + "seed.json -o " + out);
  REQUIRE(r.status == 0);
  std::ifstream file(out);
  const std::string dot((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  CHECK_THAT(dot, Catch::StartsWith("digraph") && Catch::Contains("z1") && Catch::Contains("w9"));
}

TEST_CASE("an output path that cannot be written is named; exit 2", "[cli][errors]") {
  const Run dot = run("dot " + models + "seed.json -o /nonexistent-dir/seed.dot");
  CHECK(dot.status == 2);
  CHECK_THAT(dot.out, Catch::Contains("dot: cannot write '/nonexistent-dir/seed.dot'"));
  const Run walkthrough = run("--out-dir /nonexistent-dir");
  CHECK(walkthrough.status == 2);
  CHECK_THAT(walkthrough.out, Catch::Contains("walkthrough: cannot write /nonexistent-dir/seed.dot"));
}

TEST_CASE("bad model files: one line naming the file, the entry and the problem; exit 2", "[cli][errors]") {
  struct Case {
    const char* what;
    std::string json;
    std::string message;
  };
  auto model = [](const std::string& graph, const std::string& extra_inputs = "") {
    return R"({"inputs": {"a": {"shape": [2, 2], "values": [1, 2, 3, 4]})" + extra_inputs +
           R"(}, "params": {"w": {"shape": [2], "values": [0.5, -1]}}, "graph": [)" + graph + R"(], "loss": "L"})";
  };
  const std::vector<Case> cases = {
      {"malformed JSON", R"({"inputs": {)", "malformed JSON"},
      {"unknown op", model(R"({"op": "convolve", "in": ["a"], "out": "L"})"), "graph[0]: unknown op 'convolve'"},
      {"wrong shapes",
       model(R"({"op": "conv2d", "in": ["w", "a"], "out": "c"}, {"op": "sum", "in": ["c"], "out": "L"})"),
       "graph[0] (conv2d): conv2d: input [2], filter [2, 2]"},
      {"value count", model(R"({"op": "sum", "in": ["a"], "out": "L"})", R"(, "t": {"shape": [3], "values": [1, 2]})"),
       "inputs.t: 2 values for shape [3] (3 elements)"},
      {"negative size", model(R"({"op": "sum", "in": ["a"], "out": "L"})", R"(, "t": {"shape": [-3], "values": []})"),
       "inputs.t: 'shape' entries must be non-negative integers"},
      {"huge shape",
       model(R"({"op": "sum", "in": ["a"], "out": "L"})",
             R"(, "t": {"shape": [100000, 100000, 100000], "values": []})"),
       "inputs.t: shape [100000] times 100000 has more than"},
      {"cycle",
       model(
           R"({"op": "relu", "in": ["q"], "out": "p"}, {"op": "relu", "in": ["p"], "out": "q"}, {"op": "sum", "in": ["q"], "out": "L"})"),
       "a cycle"},
      {"undefined name", model(R"({"op": "sum", "in": ["nope"], "out": "L"})"),
       "graph[0] (sum): undefined name 'nope'"},
      {"missing option", model(R"({"op": "pow", "in": ["a"], "out": "p"}, {"op": "sum", "in": ["p"], "out": "L"})"),
       "graph[0] (pow): option 'exponent'"},
      {"bad label", model(R"({"op": "softmax_cross_entropy", "in": ["a"], "labels": [0, 7], "out": "L"})"),
       "graph[0] (softmax_cross_entropy)"},
      {"undefined loss", R"({"inputs": {"a": {"shape": [1], "values": [1]}}, "graph": [], "loss": "L"})",
       "loss: 'L' is not defined"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const std::string path = temp_file(std::string(c.what) + ".json", c.json);
    const Run r = run("grad '" + path + "'");
    CHECK(r.status == 2);
    CHECK_THAT(r.out, Catch::StartsWith("gradpath: " + path + ": ") && Catch::Contains(c.message));
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  }
  const Run missing = run("grad /nonexistent/model.json");
  CHECK(missing.status == 2);
  CHECK_THAT(missing.out, Catch::Contains("/nonexistent/model.json: cannot open"));
}

TEST_CASE("softmax_cross_entropy takes its labels as an option or as an input tensor", "[cli]") {
  // logits (2, 3), labels [2, 0]: dL/dlogits = (softmax - onehot) / 2, by hand.
  const std::string logits = R"("z": {"shape": [2, 3], "values": [0.5, -1, 2, 1, 0, -0.5]})";
  auto model = [&](const std::string& labels_input, const std::string& entry) {
    return R"({"inputs": {)" + logits + labels_input + R"(}, "graph": [)" + entry + R"(], "loss": "L"})";
  };
  const auto by_option = cli::Model::parse(
      model("", R"({"op": "softmax_cross_entropy", "in": ["z"], "labels": [2, 0], "out": "L"})"), "option");
  const auto by_tensor = cli::Model::parse(model(R"(, "y": {"shape": [2], "values": [2, 0]})",
                                                 R"({"op": "softmax_cross_entropy", "in": ["z", "y"], "out": "L"})"),
                                           "tensor");
  const double z[2][3] = {{0.5, -1, 2}, {1, 0, -0.5}};
  const int label[2] = {2, 0};
  for (const cli::Model* m : {&by_option, &by_tensor}) {
    Tape tape;
    const auto named = m->build(tape);
    tape.backward(named.back().second[0]);
    double loss = 0;
    for (std::size_t i = 0; i < 2; ++i) {
      const double total = std::exp(z[i][0]) + std::exp(z[i][1]) + std::exp(z[i][2]);
      loss -= std::log(std::exp(z[i][label[i]]) / total) / 2;
      for (std::size_t j = 0; j < 3; ++j) {
        const double want = (std::exp(z[i][j]) / total - (int(j) == label[i] ? 1.0 : 0.0)) / 2;
        CHECK(named[0].second.grads()[i * 3 + j] == Approx(want).epsilon(1e-12));
      }
    }
    CHECK(named.back().second[0].value() == Approx(loss).epsilon(1e-12));
  }
  SECTION("class indices keep the file's values when the leaves are moved") {
    Tape tape;
    tape.set_leaf_values([](std::size_t, double given) { return given * 1.5 + 0.25; });
    const auto named = by_tensor.build(tape);
    CHECK(named[1].second.values()[0] == 2.0);
    CHECK(named[1].second.values()[1] == 0.0);
    CHECK(named[0].second.values()[0] != 0.5);  // the logits did move
  }
  SECTION("bad class indices in a tensor: one line naming the entry and the value; exit 2") {
    const auto [values, message] = GENERATE(
        std::pair<std::string, std::string>{"[2, 0.5]", "labels 'y' [2]: element 1 is 0.5, not an integer class index"},
        std::pair<std::string, std::string>{"[3, 0]", "label 3 (row 0) is out of range for 3 classes, logits [2, 3]"},
        std::pair<std::string, std::string>{"[-1, 0]", "label -1 (row 0) is out of range"},
        std::pair<std::string, std::string>{"[1e30, 0]",
                                            "labels 'y' [2]: element 0 is 1e+30, out of range for a class index"});
    const std::string path =
        temp_file("labels.json", model(R"(, "y": {"shape": [2], "values": )" + values + "}",
                                       R"({"op": "softmax_cross_entropy", "in": ["z", "y"], "out": "L"})"));
    const Run r = run("grad " + path);
    CHECK(r.status == 2);
    CHECK_THAT(r.out, Catch::StartsWith("gradpath: " + path + ": graph[0] (softmax_cross_entropy): ") &&
                          Catch::Contains(message));
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  }
}

TEST_CASE("Model::parse keeps the file's names and orders entries by dependency", "[cli]") {
  const auto m = cli::Model::parse(
      R"({"inputs": {"x": {"shape": [2], "values": [1, -2]}}, "graph": [
           {"op": "sum", "in": ["r"], "out": "L"}, {"op": "relu", "in": ["x"], "out": "r"}], "loss": "L"})",
      "inline");
  Tape tape;
  const auto named = m.build(tape);
  REQUIRE(named.size() == 3);
  CHECK(named[1].first == "r");
  CHECK(named[2].second[0].value() == 1.0);
}
