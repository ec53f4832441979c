// SPDX-License-Identifier: MIT
// gradpath explain against the checker: every formula the writer writes, for every element
// of every parameter of several networks, in every format, must pass gradpath check on
// the same model, so the writer and the checker can never disagree.
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "check/checker.hpp"
#include "check/explain.hpp"
#include "cli/model.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;

namespace {

struct Built {
  Slot loss = 0;
  std::vector<check::ExplainTarget> params;  // every parameter tensor, whole
  std::size_t elements = 0;                  // their elements
};

Built build(const cli::Model& model, Tape& tape) {
  Built b;
  for (const auto& [name, t] : model.build(tape)) {
    if (name == model.loss()) {
      tape.backward(t[0]);
      b.loss = t[0].slot();
    } else if (tape.op(tape.node_of(t.offset())) == Op::Param) {
      check::ExplainTarget target{name, {}};
      for (std::size_t i = 0; i < t.size(); ++i) target.slots.push_back(static_cast<Slot>(t.offset() + i));
      if (t.size() == 1) target.name = t[0].name();
      b.elements += t.size();
      b.params.push_back(std::move(target));
    }
  }
  return b;
}

std::string explain_model(const cli::Model& model, const check::ExplainOptions& options, Built& built) {
  Tape tape;
  built = build(model, tape);
  return check::explain(tape, built.loss, built.params, options);
}

}  // namespace

TEST_CASE("explain: every formula it writes passes check, for every weight of every network", "[explain]") {
  const std::string file = GENERATE(
      "examples/models/seed.json", "examples/models/seed_pool.json", "examples/models/mlp_sigmoid.json",
      "examples/models/conv_relu_maxpool.json", "examples/models/softmax_ce.json", "tests/corpus/relu_mlp.json",
      "tests/corpus/tanh_mlp.json", "tests/corpus/conv_pool.json", "tests/corpus/smooth_mlp.json");
  const auto format = GENERATE(check::ExplainFormat::Text, check::ExplainFormat::Latex, check::ExplainFormat::Markdown);
  INFO(file << ", format " << static_cast<int>(format));
  const cli::Model model = cli::Model::load(GRADPATH_SOURCE_DIR "/" + file);
  check::ExplainOptions options;
  options.format = format;
  options.lr = 0.1;
  options.standalone = true;
  Built built;
  const std::string text = explain_model(model, options, built);
  const check::BuildFn rebuild = [&model](Tape& tape) { model.build(tape); };
  const std::vector<check::Report> reports = check::check_text(rebuild, text);
  // At least the chain rule, a partial and the result for each element.
  CHECK(reports.size() >= 3 * built.elements);
  std::size_t pass = 0;
  for (const check::Report& r : reports) {
    INFO("line " << r.line << ": " << r.formula << "\n" << r.text());
    CHECK(r.verdict == check::Verdict::Pass);
    pass += r.verdict == check::Verdict::Pass;
  }
  // Every element has its own section ending in its value.
  for (const check::ExplainTarget& t : built.params) {
    for (const Slot s : t.slots) {
      Tape tape;
      model.build(tape);
      const std::string name = tape.slot_name(s);
      INFO(name);
      CHECK(text.find(format == check::ExplainFormat::Text ? "# At the model's point dL/d" + name + " is "
                                                           : "At the model's point") != std::string::npos);
    }
  }
  WARN(file << ": " << pass << " of " << reports.size() << " formulas pass");
}

TEST_CASE("explain: the seed's w1 in the note's order, with its value and update", "[explain]") {
  const cli::Model model = cli::Model::load(GRADPATH_SOURCE_DIR "/examples/models/seed.json");
  Tape tape;
  Built built = build(model, tape);
  const check::ExplainTarget w1{"w1", {built.params[0].slots[0]}};
  check::ExplainOptions options;
  options.lr = 0.1;
  const std::string text = check::explain(tape, built.loss, std::span(&w1, 1), options);
  const auto at = [&](const std::string& s) {
    INFO(s);
    const std::size_t p = text.find(s);
    CHECK(p != std::string::npos);
    return p;
  };
  const std::size_t chain = at("\ndL/dw1 = dz1/dw1*dL/dz1 + dz2/dw1*dL/dz2 + dz3/dw1*dL/dz3 + dz4/dw1*dL/dz4\n");
  const std::size_t z2 = at("\nz2 = w1*a3 + w2*a4 + w3*a5 + w4*a8 + w5*a9 + w6*a10 + w7*a13 + w8*a14 + w9*a15\n");
  const std::size_t partial = at("\ndz2/dw1 = a3\n");
  const std::size_t down = at("\ndL/dz1 = dy/dz1*dL/dy\n");
  const std::size_t result = at("\ndL/dw1 = a1*dL/dz1 + a3*dL/dz2 + a11*dL/dz3 + a13*dL/dz4\n");
  const std::size_t value = at("# At the model's point dL/dw1 is -0.13485.");
  const std::size_t rate = at("\nalpha := 0.1\n");
  const std::size_t update = at("\nw1^* = w1 - alpha*dL/dw1\n");
  at("# which gives w1* = 0.1 - 0.1·(-0.13485) = 0.113485");  // w1 = 0.1, dL/dw1 = -0.13485
  CHECK(rate < chain);
  CHECK(value < update);
  CHECK(chain < z2);
  CHECK(z2 < partial);
  CHECK(partial < down);
  CHECK(down < result);
  CHECK(result < value);
  // The same input gives the same text.
  Tape again;
  build(model, again);
  CHECK(check::explain(again, built.loss, std::span(&w1, 1), options) == text);
}

TEST_CASE("explain: a dot product node is written out as its pairs, and check passes it", "[explain][dot]") {
  // The note's stride-2 convolution with each output one dot node; returns L and w1.
  const auto build = [](Tape& tape) {
    std::vector<double> image(25), filter(9);
    for (std::size_t i = 0; i < image.size(); ++i) image[i] = 0.1 * static_cast<double>(i % 7) - 0.3;
    for (std::size_t i = 0; i < filter.size(); ++i) filter[i] = 0.05 * static_cast<double>(i) - 0.2;
    const TensorVar a = tape.input(image, Shape{5, 5}, "a");
    const TensorVar w = tape.param(filter, Shape{3, 3}, "w");
    const Var t = tape.input(0.25, "t");
    std::vector<Var> z;
    for (std::size_t k = 0; k < 4; ++k) {
      std::vector<Var> window;
      for (std::size_t i = 0; i < 9; ++i) window.push_back(a[(2 * (k / 2) + i / 3) * 5 + 2 * (k % 2) + i % 3]);
      z.push_back(dot(w.elements(), window).named("z" + std::to_string(k + 1)));
    }
    const Var d = (sum(z) - t).named("d");
    return std::pair{(d * d * 0.5).named("L"), w[0].slot()};
  };
  Tape tape;
  const auto [L, w1_slot] = build(tape);
  tape.backward(L);
  const check::ExplainTarget w1{"w1", {w1_slot}};
  const std::string text = check::explain(tape, L.slot(), std::span(&w1, 1));
  INFO(text);
  CHECK_THAT(text,
             Catch::Contains("\nz2 = w1*a3 + w2*a4 + w3*a5 + w4*a8 + w5*a9 + w6*a10 + w7*a13 + w8*a14 + w9*a15\n"));
  CHECK_THAT(text, Catch::Contains("\ndz2/dw1 = a3\n"));
  CHECK_THAT(text, Catch::Contains("\ndL/dw1 = a1*dL/dz1 + a3*dL/dz2 + a11*dL/dz3 + a13*dL/dz4\n"));
  std::size_t checked = 0;
  for (std::size_t begin = 0; begin < text.size();) {
    const std::size_t end = std::min(text.find('\n', begin), text.size());
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const check::Report r = check::check_formula([&](Tape& t) { build(t); }, line);
    INFO(line << "\n" << r.text());
    CHECK(r.verdict == check::Verdict::Pass);
    ++checked;
  }
  CHECK(checked > 20);
}

TEST_CASE("explain: LaTeX is the note's \\frac{\\partial …}, a document only when standalone", "[explain]") {
  const cli::Model model = cli::Model::load(GRADPATH_SOURCE_DIR "/examples/models/mlp_sigmoid.json");
  check::ExplainOptions options;
  options.format = check::ExplainFormat::Latex;
  Built built;
  const std::string fragment = explain_model(model, options, built);
  CHECK(fragment.find("\\documentclass") == std::string::npos);
  CHECK(fragment.find("\\frac{\\partial L}{\\partial W_{1}}") != std::string::npos);
  CHECK(fragment.find("\\sigma'(z_{1})") != std::string::npos);
  // The dense weight's indexed formula.
  CHECK(fragment.find("\\frac{\\partial L}{\\partial W_{i,j}} = x_{j} \\cdot \\frac{\\partial L}{\\partial z_{i}}") !=
        std::string::npos);
  options.standalone = true;
  const std::string document = explain_model(model, options, built);
  CHECK(document.starts_with("\\documentclass{article}"));
  CHECK(document.ends_with("\\end{document}\n"));
}

TEST_CASE("explain: a weight whose derivation has no symbols is an error naming the op", "[explain]") {
  Tape tape;
  const Var w = tape.param(0.7, "w"), x = tape.input(1.5, "x");
  const Var z = (w * x).named("z");
  const Var h = leaky_relu(z, 0.2).named("h");  // a scalar node keeps no slope to write
  const Var L = (h * h).named("L");
  tape.backward(L);
  const check::ExplainTarget target{"w", {w.slot()}};
  CHECK_THROWS_WITH(check::explain(tape, L.slot(), std::span(&target, 1)),
                    Catch::Contains("dh/dz") || Catch::Contains("∂h/∂z"));
  CHECK_THROWS_AS(check::explain(tape, L.slot(), std::span(&target, 1)), check::ExplainError);
  try {
    check::explain(tape, L.slot(), std::span(&target, 1));
  } catch (const check::ExplainError& e) {
    CHECK(std::string(e.what()).find("leaky_relu") != std::string::npos);
  }
}

TEST_CASE("explain: the command writes a file check passes, and refuses what it cannot explain", "[explain][cli]") {
  const auto run = [](const std::string& args) {
    const std::string line = std::string(GRADPATH_COMMAND) + " " + args + " 2>&1";
    FILE* pipe = popen(line.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string out;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
    const int status = pclose(pipe);
    return std::pair{WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
  };
  const std::string seed = GRADPATH_SOURCE_DIR "/examples/models/seed.json";
  const std::string out =
      (std::filesystem::temp_directory_path() / ("gradpath_explain_test_" + std::to_string(::getpid()) + ".tex"))
          .string();
  const auto [status, text] = run("explain " + seed + " --wrt w1,v --format latex --standalone -o " + out);
  CHECK(status == 0);
  CHECK(text.empty());
  const auto [checked, report] = run("check " + seed + " " + out);
  CHECK(checked == 0);
  CHECK(report.find(" 0 fail, 0 partial, 0 uncovered, 0 error") != std::string::npos);
  std::filesystem::remove(out);

  const auto [unknown, unknown_text] = run("explain " + seed + " --wrt q");
  CHECK(unknown == 2);
  CHECK(unknown_text.find("--wrt 'q': no tensor or element") != std::string::npos);
  CHECK(unknown_text.find("its parameters are w, v, b") != std::string::npos);
  const auto [format, format_text] = run("explain " + seed + " --format pdf");
  CHECK(format == 2);
  CHECK(format_text.find("write text, markdown or latex") != std::string::npos);
}
