// SPDX-License-Identifier: MIT
#include "cli/teach.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "check/explain.hpp"
#include "check/grading.hpp"
#include "cli/model.hpp"

namespace gradpath::cli {

namespace {

void flush_stdout() {
  std::cout.flush();
  if (!std::cout || std::fflush(stdout) != 0 || std::ferror(stdout)) throw Error("cannot write to standard output");
}

// `text` to standard output ("" or "-") or to a file, written beside it and renamed over
// it only once complete, so a failed write leaves the old file whole.
void write_output(const std::string& path, const std::string& text, std::string_view command) {
  if (path.empty() || path == "-") {
    std::cout << text;
    flush_stdout();
    return;
  }
  const std::string temporary = path + ".tmp";
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    if (!file) throw Error(std::string(command) + ": cannot write " + quote(path));
    file << text;
    file.close();
    if (!file) {
      std::error_code ec;
      std::filesystem::remove(temporary, ec);
      throw Error(std::string(command) + ": writing " + quote(path) + " failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) throw Error(std::string(command) + ": cannot write " + quote(path) + ": " + ec.message());
}

// The loss's slot after building the model and running backward from it.
Slot build_and_backward(const Model& model, Tape& tape, std::vector<std::pair<std::string, TensorVar>>& named) {
  named = model.build(tape);
  for (const auto& [name, t] : named) {
    if (name != model.loss()) continue;
    if (t.size() != 1 || t.dtype() != DType::f64) {
      throw ModelError(escaped(model.source()) + ": loss: " + quote(name) + " must be one float64 value");
    }
    tape.backward(t[0]);
    return t[0].slot();
  }
  throw ModelError(escaped(model.source()) + ": no loss");
}

}  // namespace

int explain_command(const ExplainArgs& args) {
  const auto format = check::explain_format(args.format);
  if (!format) throw Error("explain: --format " + quote(args.format) + ": write text, markdown or latex");
  const Model model = Model::load(args.model);
  Tape tape;
  tape.set_memory_limit(args.memory_limit);
  std::vector<std::pair<std::string, TensorVar>> named;
  const Slot loss = build_and_backward(model, tape, named);

  std::vector<check::ExplainTarget> targets;
  auto tensor_target = [](const std::string& name, const TensorVar& t) {
    check::ExplainTarget target{name, {}};
    for (std::size_t i = 0; i < t.size(); ++i) target.slots.push_back(static_cast<Slot>(t.offset() + i));
    if (t.size() == 1) target.name = t[0].name().empty() ? name : t[0].name();
    return target;
  };
  std::string params;
  for (const auto& [name, t] : named) {
    if (t.dtype() != DType::f64 || tape.op(tape.node_of(t.offset())) != Op::Param) continue;
    params += (params.empty() ? "" : ", ") + name;
    if (args.wrt.empty()) targets.push_back(tensor_target(name, t));
  }
  for (const std::string& w : args.wrt) {
    const auto whole = std::find_if(named.begin(), named.end(), [&](const auto& n) { return n.first == w; });
    if (whole != named.end() && whole->second.dtype() == DType::f64) {
      targets.push_back(tensor_target(w, whole->second));
      continue;
    }
    std::optional<Slot> element;
    for (const auto& [name, t] : named) {
      for (std::size_t i = 0; i < t.size() && !element && t.dtype() == DType::f64; ++i) {
        if (tape.slot_name(static_cast<Slot>(t.offset() + i)) == w) element = static_cast<Slot>(t.offset() + i);
      }
    }
    if (!element) {
      throw Error("explain: --wrt " + quote(w) + ": no tensor or element of " + escaped(args.model) +
                  " has that name; its parameters are " + params);
    }
    targets.push_back({w, {*element}});
  }
  check::ExplainOptions options;
  options.format = *format;
  options.lr = args.lr;
  options.standalone = args.standalone;
  options.title = std::filesystem::path(args.model).filename().string();
  write_output(args.output, check::explain(tape, loss, targets, options), "explain");
  return 0;
}

bool is_grading(const std::vector<std::string>& submissions, const std::string& csv, bool grade) {
  return submissions.size() > 1 || !csv.empty() || grade;
}

int grade_command(const GradeArgs& args) {
  const Model model = Model::load(args.model);
  const check::BuildFn build = [&model, limit = args.memory_limit](Tape& tape) {
    tape.set_memory_limit(limit);
    model.build(tape);
  };
  {
    Tape tape;  // a model that cannot be built is bad input, not a failing submission
    build(tape);
  }
  const std::vector<std::string> files = check::submission_files(args.submissions);
  if (files.empty()) {
    throw Error(escaped(args.submissions.front()) + ": holds no submission to grade (.txt, .tex or .md files)");
  }
  check::CheckOptions options;
  options.redraws = args.redraws;
  options.learning_rate = args.learning_rate;
  options.loss = model.loss();
  std::vector<check::Submission> submissions;
  bool all_hold = true;
  for (const std::string& path : files) {
    check::Submission s{path, {}, {}};
    try {
      const std::string text = read_file(path, "formula file", args.max_formula_bytes);
      s.reports = check::check_text(build, text, options, path);
    } catch (const Error& e) {
      s.error = e.what();
    }
    all_hold &= s.error.empty();
    for (const check::Report& r : s.reports)
      all_hold &= r.verdict == check::Verdict::Pass || r.verdict == check::Verdict::Partial;
    submissions.push_back(std::move(s));
  }
  if (!args.csv.empty()) write_output(args.csv, check::grading_csv(submissions), "check");
  if (args.as_json) {
    std::cout << check::grading_json(submissions).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else if (args.csv != "-") {
    std::cout << check::grading_text(submissions);
  }
  flush_stdout();
  return all_hold ? 0 : 1;
}

}  // namespace gradpath::cli
