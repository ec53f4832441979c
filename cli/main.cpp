// SPDX-License-Identifier: MIT
// The gradpath command: the seed walkthrough, and grad / dot / check for a JSON model.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "check/checker.hpp"
#include "cli/model.hpp"
#include "cli/walkthrough.hpp"
#include "graph/graph.hpp"

using namespace gradpath;

namespace {

// Exit statuses: 0 all good, 1 a formula does not hold, 2 bad input.
constexpr int exit_failed_formula = 1;
constexpr int exit_bad_input = 2;

// Builds the model on `tape`, runs backward from its loss; returns the named tensors.
std::vector<std::pair<std::string, TensorVar>> build_and_backward(const cli::Model& model, Tape& tape) {
  auto named = model.build(tape);
  for (const auto& [name, t] : named) {
    if (name != model.loss()) continue;
    if (t.size() != 1) {
      throw cli::ModelError(model.source() + ": loss: '" + name + "' has shape " + t.shape().str() +
                            "; a loss must hold one value");
    }
    tape.backward(t[0]);
  }
  return named;
}

int grad_command(const std::string& path, bool as_json) {
  const cli::Model model = cli::Model::load(path);
  Tape tape;
  const auto named = build_and_backward(model, tape);
  if (as_json) {
    nlohmann::ordered_json out = {{"values", nlohmann::ordered_json::object()},
                                  {"grads", nlohmann::ordered_json::object()}};
    for (const auto& [name, t] : named) {
      out["values"][name] = std::vector<double>(t.values().begin(), t.values().end());
      out["grads"][name] = std::vector<double>(t.grads().begin(), t.grads().end());
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& [name, t] : named) {
    std::printf("%s %s\n", name.c_str(), t.shape().str().c_str());
    for (std::size_t i = 0; i < t.size(); ++i) {
      const Var e = t[i];
      const std::string element = e.name().empty() ? name + "[" + std::to_string(i) + "]" : e.name();
      std::printf("  %-8s value %14.8g   d%s/d%s %14.8g\n", element.c_str(), e.value(), model.loss().c_str(),
                  element.c_str(), e.grad());
    }
  }
  return 0;
}

int dot_command(const std::string& path, const std::string& output, const std::vector<std::string>& collapse) {
  const cli::Model model = cli::Model::load(path);
  Tape tape;
  build_and_backward(model, tape);
  graph::DotOptions options;
  options.collapse_scopes = collapse;
  const graph::TapeGraph g = graph::view(tape);
  if (output.empty() || output == "-") {
    graph::write_dot(std::cout, g, options);
    return 0;
  }
  std::ofstream file(output);
  if (!file) throw Error("dot: cannot write '" + output + "'");
  graph::write_dot(file, g, options);
  return 0;
}

int check_command(const std::string& model_path, const std::string& formulas_path, bool as_json, int redraws) {
  const cli::Model model = cli::Model::load(model_path);
  const check::BuildFn build = [&model](Tape& tape) { model.build(tape); };
  check::CheckOptions options;
  options.redraws = redraws;
  const std::vector<check::Report> reports = check::check_file(build, formulas_path, options);
  if (as_json) {
    std::cout << check::json(reports).dump(2) << "\n";
  } else {
    std::cout << check::text(reports);
  }
  const bool all_hold = std::all_of(reports.begin(), reports.end(), [](const check::Report& r) {
    return r.verdict == check::Verdict::Pass || r.verdict == check::Verdict::Partial;
  });
  return all_hold ? 0 : exit_failed_formula;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "gradpath: reverse-mode autodiff whose graph you can see, walk and check.\n"
      "With no command, runs the seed walkthrough."};
  app.require_subcommand(0, 1);
  std::string out_dir = ".";
  app.add_option("--out-dir", out_dir, "where the walkthrough writes seed.dot and seed.svg");

  std::string model, formulas, output;
  bool as_json = false;
  int redraws = 5;
  std::vector<std::string> collapse;
  auto* grad = app.add_subcommand("grad", "values and gradients of every named tensor of a JSON model");
  grad->add_option("MODEL", model, "the model (.json)")->required();
  grad->add_flag("--json", as_json, "print {\"values\": {...}, \"grads\": {...}}");
  auto* dot = app.add_subcommand("dot", "the model's graph as Graphviz DOT");
  dot->add_option("MODEL", model, "the model (.json)")->required();
  dot->add_option("-o,--output", output, "write to FILE instead of standard output");
  dot->add_option("--collapse", collapse, "draw this scope (an op's output name) as one box");
  auto* check = app.add_subcommand("check", "check hand-written derivations against the model");
  check->add_option("MODEL", model, "the model (.json)")->required();
  check->add_option("FORMULAS", formulas, "formulas, one per line (ASCII) or per $$ block (LaTeX)")->required();
  check->add_flag("--json", as_json, "print the reports as JSON");
  check->add_option("--redraws", redraws, "random re-draws of the inputs besides the given point")
      ->check(CLI::Range(0, 1000));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : exit_bad_input;
  }
  try {
    if (*grad) return grad_command(model, as_json);
    if (*dot) return dot_command(model, output, collapse);
    if (*check) return check_command(model, formulas, as_json, redraws);
    return cli::run_walkthrough(std::cout, out_dir);
  } catch (const Error& e) {
    std::cerr << "gradpath: " << e.what() << "\n";
    return exit_bad_input;
  }
}
