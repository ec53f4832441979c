// SPDX-License-Identifier: MIT
// The gradpath command: the seed walkthrough, and grad / dot / check for a JSON model.
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <new>
#include <optional>
#include <span>

#include "autodiff/second_order.hpp"
#include "check/checker.hpp"
#include "cli/model.hpp"
#include "cli/report.hpp"
#include "cli/teach.hpp"
#include "cli/walkthrough.hpp"
#include "graph/graph.hpp"

using namespace gradpath;

namespace {

// Exit statuses: 0 all good, 1 a formula does not hold, 2 bad input.
constexpr int exit_failed_formula = 1;
constexpr int exit_bad_input = 2;

// The largest formula file check reads.
constexpr std::size_t max_formula_bytes = std::size_t{16} << 20;
// dot draws at most this many nodes: the graph view costs hundreds of bytes a node (a
// model of 18 million values took 14 GB), and Graphviz could not lay such a graph out.
constexpr std::size_t max_dot_nodes = 200000;

// Builds the model on `tape`, runs backward from its loss; returns the named tensors.
std::vector<std::pair<std::string, TensorVar>> build_and_backward(const cli::Model& model, Tape& tape) {
  auto named = model.build(tape);
  for (const auto& [name, t] : named) {
    if (name != model.loss()) continue;
    if (t.size() != 1) {
      throw cli::ModelError(cli::escaped(model.source()) + ": loss: " + cli::quote(name) + " has shape " +
                            t.shape().str() + "; a loss must hold one value");
    }
    tape.backward(t[0]);
  }
  return named;
}

// A JSON array of doubles; NaN and the infinities, which JSON numbers cannot hold, as the
// strings "nan", "inf" and "-inf" (nlohmann would print all three as null).
void write_json_numbers(std::ostream& out, std::span<const double> values) {
  out << '[';
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    if (i) out << ", ";
    if (std::isnan(v)) {
      out << "\"nan\"";
    } else if (std::isinf(v)) {
      out << (v > 0 ? "\"inf\"" : "\"-inf\"");
    } else {
      out << nlohmann::json(v).dump();
    }
  }
  out << ']';
}

// {"values": {name: [...], ...}, "grads": {...}}, streamed: an ordered_json object finds
// each key by a linear scan, which made this O(n^2) in the number of tensors.
void write_json(std::ostream& out, const std::vector<std::pair<std::string, TensorVar>>& named) {
  out << "{\n";
  for (const bool grads : {false, true}) {
    out << (grads ? ",\n  \"grads\": {" : "  \"values\": {");
    for (std::size_t i = 0; i < named.size(); ++i) {
      const auto& [name, t] = named[i];
      out << (i ? ",\n    " : "\n    ") << nlohmann::json(name).dump() << ": ";
      write_json_numbers(out, grads ? t.grads() : t.values());
    }
    out << "\n  }";
  }
  out << "\n}\n";
}

// Standard output must reach its file: a full disk or a closed pipe is an error, not a
// silently cut result.
void flush_stdout() {
  std::cout.flush();
  if (!std::cout || std::fflush(stdout) != 0 || std::ferror(stdout)) throw Error("cannot write to standard output");
}

int grad_command(const std::string& path, bool as_json, std::size_t memory_limit) {
  const cli::Model model = cli::Model::load(path);
  Tape tape;
  tape.set_memory_limit(memory_limit);
  const auto named = build_and_backward(model, tape);
  if (as_json) {
    write_json(std::cout, named);
    flush_stdout();
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
  flush_stdout();
  return 0;
}

// The param tensors among a built model's named tensors (each leaf once, not its views).
std::vector<std::pair<std::string, TensorVar>> params_of(const Tape& tape,
                                                         const std::vector<std::pair<std::string, TensorVar>>& named) {
  std::vector<std::pair<std::string, TensorVar>> out;
  for (const auto& entry : named) {
    const TensorVar& t = entry.second;
    if (t.dtype() != DType::f64 || tape.op(tape.node_of(t.offset())) != Op::Param) continue;
    const auto same = [&t](const auto& p) { return p.second.offset() == t.offset(); };
    if (std::none_of(out.begin(), out.end(), same)) out.push_back(entry);
  }
  return out;
}

// --hvp NAME=FILE: the direction for param NAME, a JSON array of its values in row-major
// order, read into its place in `v` (params order); the params not named stay 0.
void read_direction(const std::string& arg, const std::vector<std::pair<std::string, TensorVar>>& params,
                    std::vector<double>& v) {
  const std::size_t eq = arg.find('=');
  if (eq == std::string::npos) throw Error("--hvp " + cli::quote(arg) + ": expected NAME=FILE");
  const std::string name = arg.substr(0, eq), path = arg.substr(eq + 1);
  std::size_t at = 0;
  for (const auto& [param, t] : params) {
    if (param != name) {
      at += t.size();
      continue;
    }
    nlohmann::json values;
    try {
      values = nlohmann::json::parse(cli::read_file(path, "direction file", cli::max_model_bytes));
    } catch (const nlohmann::json::exception& e) {
      throw Error(cli::escaped(path) + ": not JSON: " + e.what());
    }
    if (!values.is_array() || values.size() != t.size() ||
        !std::all_of(values.begin(), values.end(), [](const nlohmann::json& x) { return x.is_number(); })) {
      throw Error(cli::escaped(path) + ": the direction for " + cli::quote(name) + " must be an array of " +
                  std::to_string(t.size()) + " numbers (shape " + t.shape().str() + ")");
    }
    for (std::size_t i = 0; i < t.size(); ++i) v[at + i] = values[i].get<double>();
    return;
  }
  throw Error("--hvp: " + cli::quote(name) + " is not a param of the model");
}

// grad --hessian / --hvp: second derivatives of the loss in the model's params
// (autodiff/second_order.hpp), as a matrix or one product per param.
int second_order_command(const std::string& path, bool as_json, std::size_t memory_limit, bool want_hessian,
                         const std::vector<std::string>& directions) {
  const cli::Model model = cli::Model::load(path);
  Tape tape;
  tape.set_memory_limit(memory_limit);
  const auto named = build_and_backward(model, tape);
  const auto loss = std::find_if(named.begin(), named.end(), [&](const auto& n) { return n.first == model.loss(); });
  if (loss == named.end()) throw Error(cli::escaped(model.source()) + ": the model has no loss");
  const auto params = params_of(tape, named);
  std::vector<TensorVar> tensors;
  std::vector<std::string> elements;  // the name of every param element, in order
  for (const auto& [name, t] : params) {
    tensors.push_back(t);
    for (std::size_t i = 0; i < t.size(); ++i) {
      const std::string e = t[i].name();
      elements.push_back(e.empty() ? name + "[" + std::to_string(i) + "]" : e);
    }
  }
  const std::size_t n = elements.size();
  std::vector<double> result;
  if (want_hessian) {
    result = hessian(tape, loss->second, tensors);
  } else {
    std::vector<double> v(n, 0.0);
    for (const std::string& d : directions) read_direction(d, params, v);
    result = hvp(tape, loss->second, tensors, v);
  }
  const std::size_t columns = want_hessian ? n : 1;
  if (as_json) {
    std::cout << "{\n  \"params\": " << nlohmann::json(elements).dump() << ",\n  \""
              << (want_hessian ? "hessian" : "hvp") << "\": [";
    for (std::size_t i = 0; i < n; ++i) {
      std::cout << (i ? ",\n    " : "\n    ");
      write_json_numbers(std::cout, std::span(result).subspan(i * columns, columns));
    }
    std::cout << "\n  ]\n}\n";
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      std::printf("%-8s", elements[i].c_str());
      for (std::size_t j = 0; j < columns; ++j) std::printf(" %14.8g", result[i * columns + j]);
      std::printf("\n");
    }
  }
  flush_stdout();
  return 0;
}

// Writes `output` through `write`. A regular file (or a new one) is written to a
// temporary file next to it and renamed over it only once every byte is written, so a
// failed write leaves the previous file as it was; anything else (/dev/full, a pipe)
// cannot be replaced by renaming and is written in place. Either way the stream is
// checked after closing.
void write_file(const std::string& output, const std::function<void(std::ostream&)>& write) {
  std::error_code ec;
  const auto status = std::filesystem::status(output, ec);
  const bool replace = !std::filesystem::exists(status) || std::filesystem::is_regular_file(status);
  const std::string target = replace ? output + ".tmp" + std::to_string(::getpid()) : output;
  const auto discard = [&] {
    if (replace) std::filesystem::remove(target, ec);
  };
  std::ofstream file(target, std::ios::binary | std::ios::trunc);
  if (!file) throw Error("dot: cannot write " + cli::quote(output));
  write(file);
  file.close();
  if (!file) {
    discard();
    throw Error("dot: writing " + cli::quote(output) + " failed (disk full?)" +
                (replace ? "; the previous file is left as it was" : ""));
  }
  if (replace) {
    std::filesystem::rename(target, output, ec);
    if (ec) {
      discard();
      throw Error("dot: cannot write " + cli::quote(output) + ": " + ec.message());
    }
  }
}

int dot_command(const std::string& path, const std::string& output, const cli::DotRequest& request, bool plain,
                std::size_t memory_limit) {
  const cli::Model model = cli::Model::load(path);
  Tape tape;
  tape.set_memory_limit(memory_limit);
  const auto named = build_and_backward(model, tape);
  if (tape.node_count() > max_dot_nodes) {
    throw Error("dot: " + cli::escaped(path) + " records " + std::to_string(tape.node_count()) +
                " nodes, more than dot draws (" + std::to_string(max_dot_nodes) + "); grad gives its values");
  }
  const graph::TapeGraph g = graph::view(tape);
  graph::DotOptions options = cli::dot_options(tape, g, named, model.loss(), request);
  if (plain) {  // one record per node, scopes as clusters, as before the layered layout
    graph::DotOptions record{.edge_labels = options.edge_labels, .highlight_paths = options.highlight_paths};
    for (const auto& group : request.collapse) record.collapse_scopes.push_back(group);
    options = record;
  }
  if (output.empty() || output == "-") {
    graph::write_dot(std::cout, g, options);
    flush_stdout();
    return 0;
  }
  write_file(output, [&](std::ostream& out) { graph::write_dot(out, g, options); });
  return 0;
}

int report_command(const std::string& path, const std::string& formulas_path, const std::string& output,
                   std::size_t collapse_above, std::size_t memory_limit) {
  const cli::Model model = cli::Model::load(path);
  Tape tape;
  tape.set_memory_limit(memory_limit);
  const auto named = build_and_backward(model, tape);
  cli::ReportInput input;
  input.title = std::filesystem::path(path).filename().string();
  input.tape = &tape;
  input.named = &named;
  input.loss = model.loss();
  input.collapse_above = collapse_above;
  // KaTeX's folder: $GRADPATH_KATEX_DIR, else the one found at build time.
  const char* katex = std::getenv("GRADPATH_KATEX_DIR");
  input.katex_dir = katex != nullptr ? katex : GRADPATH_KATEX_DIR;
  if (!formulas_path.empty()) {
    const std::string formulas = cli::read_file(formulas_path, "formula file", max_formula_bytes);
    const check::BuildFn build = [&model, memory_limit](Tape& t) {
      t.set_memory_limit(memory_limit);
      model.build(t);
    };
    check::CheckOptions options;
    options.loss = model.loss();
    input.reports = check::check_text(build, formulas, options, formulas_path);
    input.formulas_source = std::filesystem::path(formulas_path).filename().string();
  }
  if (output.empty() || output == "-") {
    cli::write_report(std::cout, input);
    flush_stdout();
    return 0;
  }
  write_file(output, [&](std::ostream& out) { cli::write_report(out, input); });
  return 0;
}

int check_command(const std::string& model_path, const std::string& formulas_path, bool as_json,
                  check::CheckOptions options, std::size_t memory_limit) {
  const cli::Model model = cli::Model::load(model_path);
  const std::string formulas = cli::read_file(formulas_path, "formula file", max_formula_bytes);
  // A model that cannot be built, or a file with no formula, is an Error from the
  // checker: bad input (exit 2), not a formula that fails.
  const check::BuildFn build = [&model, memory_limit](Tape& tape) {
    tape.set_memory_limit(memory_limit);
    model.build(tape);
  };
  options.loss = model.loss();
  const std::vector<check::Report> reports = check::check_text(build, formulas, options, formulas_path);
  if (as_json) {
    std::cout << check::json(reports).dump(2) << "\n";
  } else {
    std::cout << check::text(reports);
  }
  flush_stdout();
  const bool all_hold = std::all_of(reports.begin(), reports.end(), [](const check::Report& r) {
    return r.verdict == check::Verdict::Pass || r.verdict == check::Verdict::Partial;
  });
  return all_hold ? 0 : exit_failed_formula;
}

// The one line main prints for an error: a message that still holds a control character
// (one the library made from user text) cannot break the line or reach the terminal raw.
void report(const std::string& message) {
  std::string line;
  for (const char c : message)
    line += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? cli::escaped({&c, 1}) : std::string(1, c);
  std::cerr << "gradpath: " << line << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "gradpath: reverse-mode autodiff whose graph you can see, walk and check.\n"
      "With no command, runs the seed walkthrough."};
  app.require_subcommand(0, 1);
  std::optional<std::string> out_dir;
  app.add_option("--out-dir", out_dir, "write the walkthrough's graph as seed.dot and seed.svg in this folder");

  std::string model, output;
  std::vector<std::string> formulas;
  bool as_json = false;
  int redraws = 5;
  std::optional<std::string> memory_limit;
  const std::string memory_help =
      "cap on the tape's memory in MiB, 0 for none (default: $GRADPATH_MEMORY_LIMIT, else " +
      std::to_string(cli::default_memory_limit_mib) + ")";
  auto* grad = app.add_subcommand("grad", "values and gradients of every named tensor of a JSON model");
  grad->add_option("MODEL", model, "the model (.json)")->required();
  grad->add_flag("--json", as_json,
                 "print {\"values\": {...}, \"grads\": {...}}; NaN and infinities as \"nan\", \"inf\", \"-inf\"");
  grad->add_option("--memory-limit", memory_limit, memory_help);
  bool want_hessian = false;
  std::vector<std::string> directions;
  grad->add_flag("--hessian", want_hessian,
                 "the Hessian of the loss in every param element instead (one row each; at most " +
                     std::to_string(max_hessian_size) + " elements)");
  grad->add_option("--hvp", directions,
                   "NAME=FILE: the Hessian of the loss times the direction FILE gives param NAME (a JSON array; "
                   "several allowed, other params 0), one value per param element")
      ->excludes("--hessian");
  auto* dot = app.add_subcommand("dot", "the model's graph as Graphviz DOT, layer by layer");
  cli::DotRequest dot_request;
  bool plain = false;
  dot->add_option("MODEL", model, "the model (.json)")->required();
  dot->add_option("-o,--output", output, "write to FILE instead of standard output");
  dot->add_option("--collapse", dot_request.collapse,
                  "draw this tensor, op output or scope as one box (several allowed)");
  dot->add_option("--highlight", dot_request.highlight,
                  "colour the paths from this node (or each element of this tensor) to the loss (several allowed)");
  dot->add_flag("--products", dot_request.products, "with --highlight: a table of each path's product and their sum");
  dot->add_flag("--partials", dot_request.partials, "label each edge with its local partial (a3, σ′(z1), value)");
  dot->add_option("--focus", dot_request.focus, "draw only the nodes within --depth edges of this node or tensor");
  dot->add_option("--depth", dot_request.depth, "with --focus: how many edges away (default 2)");
  dot->add_flag("--plain", plain, "one record node per tape node, without the layered layout");
  dot->add_option("--memory-limit", memory_limit, memory_help);
  auto* report_cmd =
      app.add_subcommand("report", "one self-contained HTML page: graph, paths, values, checked formulas");
  std::size_t collapse_above = 2000;
  report_cmd->add_option("MODEL", model, "the model (.json)")->required();
  report_cmd->add_option("FORMULAS", formulas, "a formula file to check and show (optional)")->expected(0, 1);
  report_cmd->add_option("-o,--output", output, "write to FILE instead of standard output");
  report_cmd->add_option("--collapse-above", collapse_above,
                         "more nodes than this: draw scopes and large leaf tensors as boxes (default 2000)");
  report_cmd->add_option("--memory-limit", memory_limit, memory_help);
  auto* check = app.add_subcommand("check", "check hand-written derivations against the model");
  check->add_option("MODEL", model, "the model (.json)")->required();
  check
      ->add_option("FORMULAS", formulas,
                   "formulas, one per line (ASCII) or per $$ block (LaTeX); several files (or --grade, --csv) are "
                   "graded as submissions, a directory standing for its .txt, .tex and .md files")
      ->required();
  std::string csv;
  check->add_option("--csv", csv, "grading: write one CSV row per submission and formula to FILE (- for stdout)");
  bool grade = false;
  check->add_flag("--grade", grade,
                  "grade each file (each .txt, .tex, .md file under a directory) as a submission; implied by "
                  "several files or --csv");
  check->add_flag("--json", as_json, "print the reports as JSON");
  check->add_option("--redraws", redraws, "random re-draws of the inputs besides the given point")
      ->check(CLI::Range(0, 1000));
  check->add_option("--memory-limit", memory_limit, memory_help);
  check::CheckOptions check_options;
  check->add_option(
      "--lr", check_options.learning_rate,
      "the learning rate an update rule w^* = w - \\alpha dL/dw is checked with (else the file's \\alpha)");
  cli::ExplainArgs explain_args;
  auto* explain = app.add_subcommand("explain", "write the derivation of dL/dw, as text or LaTeX the checker reads");
  explain->add_option("MODEL", explain_args.model, "the model (.json)")->required();
  explain
      ->add_option("--wrt", explain_args.wrt,
                   "weights: tensors (w) or elements (w1), comma-separated; default every parameter")
      ->delimiter(',');
  explain->add_option("--format", explain_args.format, "text, markdown or latex")->default_val("text");
  explain->add_option("--lr", explain_args.lr, "also write the update w* = w - lr * dL/dw (as prose)");
  explain->add_flag("--standalone", explain_args.standalone, "latex: a complete document");
  explain->add_option("-o,--output", explain_args.output, "write to FILE instead of standard output");
  explain->add_option("--memory-limit", memory_limit, memory_help);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : exit_bad_input;
  }
  // Nothing escapes: every failure is exit 2 with one line on standard error.
  try {
    if (*grad && (want_hessian || !directions.empty())) {
      return second_order_command(model, as_json, cli::memory_limit_bytes(memory_limit), want_hessian, directions);
    }
    if (*grad) return grad_command(model, as_json, cli::memory_limit_bytes(memory_limit));
    if (*dot) return dot_command(model, output, dot_request, plain, cli::memory_limit_bytes(memory_limit));
    if (*report_cmd) {
      return report_command(model, formulas.empty() ? std::string() : formulas[0], output, collapse_above,
                            cli::memory_limit_bytes(memory_limit));
    }
    if (*check && cli::is_grading(formulas, csv, grade)) {
      return cli::grade_command({model, formulas, csv, as_json, redraws, check_options.learning_rate,
                                 cli::memory_limit_bytes(memory_limit), max_formula_bytes});
    }
    if (*check && std::filesystem::is_directory(formulas[0])) {
      throw Error(cli::escaped(formulas[0]) +
                  ": is a directory, not a formula file; to grade the submissions in it: "
                  "gradpath check MODEL DIR --grade (or --csv FILE)");
    }
    if (*check) {
      check_options.redraws = redraws;
      return check_command(model, formulas[0], as_json, check_options, cli::memory_limit_bytes(memory_limit));
    }
    if (*explain) {
      explain_args.memory_limit = cli::memory_limit_bytes(memory_limit);
      return cli::explain_command(explain_args);
    }
    const int status = cli::run_walkthrough(std::cout, out_dir);
    flush_stdout();
    return status;
  } catch (const Error& e) {
    report(e.what());
  } catch (const std::bad_alloc&) {
    report("out of memory (lower --memory-limit so the tape stops first, or give the process more memory)");
  } catch (const std::exception& e) {
    report(std::string("internal error: ") + e.what());
  }
  return exit_bad_input;
}
