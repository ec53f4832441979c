// SPDX-License-Identifier: MIT
// The commands for teachers: explain (write the derivation of ∂L/∂w) and check over many
// submissions (grade a folder).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace gradpath::cli {

struct ExplainArgs {
  std::string model;
  std::vector<std::string> wrt;  // names of tensors or elements; empty: every parameter
  std::string format = "text";   // text, markdown, latex
  std::optional<double> lr;
  bool standalone = false;
  std::string output;  // empty or "-": standard output
  std::size_t memory_limit = 0;
};
// Writes the derivation; returns the exit status (an Error for bad input).
int explain_command(const ExplainArgs& args);

struct GradeArgs {
  std::string model;
  std::vector<std::string> submissions;  // files and directories
  std::string csv;                       // write CSV here ("-": standard output)
  bool as_json = false;
  int redraws = 5;
  std::optional<double> learning_rate;  // for update rules (w^* = w - α ∂L/∂w)
  std::size_t memory_limit = 0;
  std::size_t max_formula_bytes = 0;
};
// True when check's arguments ask for grading rather than one file's report: more than
// one submission, --csv or --grade. A lone directory without them stays the error it
// always was (with a hint), so `check MODEL FILE` and its tests never change meaning.
bool is_grading(const std::vector<std::string>& submissions, const std::string& csv, bool grade);
// Checks every submission; 0 when every formula of every one holds, 1 otherwise (an
// unreadable submission included), an Error (exit 2) for a model that cannot be built.
int grade_command(const GradeArgs& args);

}  // namespace gradpath::cli
