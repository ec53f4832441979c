// SPDX-License-Identifier: MIT
// The checker of hand derivations: evaluates a formula against the engine at several
// points and diagnoses a wrong one term by term from the graph's path decomposition.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "autodiff/tape.hpp"
#include "check/formula.hpp"

namespace gradpath::check {

// Records the graph the formulas talk about on the tape it is given, naming the nodes
// the formulas use. It is called once per draw, each time on a fresh tape.
using BuildFn = std::function<void(Tape&)>;

struct CheckOptions {
  int redraws = 5;     // draws besides the current point, each with every leaf perturbed
  double rtol = 1e-9;  // two numbers agree when |a - b| <= atol + rtol * max(|a|, |b|)
  double atol = 1e-12;
  std::uint64_t seed = 1;  // redraw r uses seed + r
};

enum class Verdict {
  Pass,     // equal at every draw
  Fail,     // a finding below says what is wrong
  Partial,  // a sum with an ellipsis whose written terms are all right
  Error,    // the formula could not be read (parse error, unknown name)
};

// How the formula was read:
//   Cut         ∂L/∂w = Σ_k c_k · ∂L/∂z_k      each c_k against the engine's ∂z_k/∂w
//   Expansion   z = Σ products                  each product against the sum node's operands
//   Derivative  ∂z/∂w = expression              one comparison, explained symbolically
//   Equation    anything else                   both sides compared numerically
enum class Form { Cut, Expansion, Derivative, Equation, Unknown };

enum class FindingKind {
  WrongTerm,    // a written term differs from the true one
  MissingTerm,  // a true term that is not written (and there is no ellipsis)
  ExtraTerm,    // a written term that has no true counterpart
  NotACut,      // the derivative nodes named do not cross every path from w to L exactly once
  Mismatch,     // the two sides differ (reported when nothing finer applies)
  Annotation,   // an "X ⇒ Y" claim that does not hold
  NotWritten,   // terms an ellipsis leaves out (not a failure)
};

struct Finding {
  FindingKind kind = FindingKind::Mismatch;
  std::size_t term = 0;  // 1-based among the written terms of the right side (an ellipsis is no term); 0: none
  std::string message;   // e.g. "term 2: ∂z2/∂w1 is a3 (z2 = w1·a3 + w2·a4 + …), the formula has a13"
};

struct Report {
  std::string formula;  // the formula as written, whitespace collapsed
  int line = 1;         // where it starts in its file
  Verdict verdict = Verdict::Error;
  Form form = Form::Unknown;
  std::vector<Finding> findings;
  std::string error;  // Verdict::Error: the message, with line, column and a caret
  int draws = 0;      // the current point plus the redraws
  double rtol = 0.0, atol = 0.0;

  std::string text() const;  // one human-readable block
  nlohmann::json json() const;
};

std::string_view verdict_name(Verdict v);      // "pass", "fail", "partial", "error"
std::string_view form_name(Form f);            // "cut", "expansion", "derivative", "equation", "unknown"
std::string_view finding_name(FindingKind k);  // "wrong term", "missing term", ...

// Checks one formula; `formula` may span lines (an aligned LaTeX block is one formula).
Report check_formula(const BuildFn& build, std::string_view formula, const CheckOptions& options = {});
Report check_formula(const BuildFn& build, const FormulaSource& formula, const CheckOptions& options = {});
// Every formula of a file's text (see split_formulas), against one set of draws.
std::vector<Report> check_text(const BuildFn& build, std::string_view file_text, const CheckOptions& options = {});
// Reads the file; an unreadable file is an Error.
std::vector<Report> check_file(const BuildFn& build, const std::filesystem::path& path,
                               const CheckOptions& options = {});

// All blocks, then one summary line ("9 formulas: 4 pass, 3 fail, 2 partial, 0 error").
std::string text(std::span<const Report> reports);
nlohmann::json json(std::span<const Report> reports);

}  // namespace gradpath::check
