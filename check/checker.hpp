// SPDX-License-Identifier: MIT
// The checker of hand derivations: evaluates a formula against the engine at several
// points and diagnoses a wrong one term by term from the graph's path decomposition.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
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
  // The update rule w_i^* = w_i - α ∂L/∂w_i is checked against one gradient-descent step
  // of the loss with this learning rate (else the number the file defines as \alpha or
  // \eta); the loss is the node of this name (else the tape's last node).
  std::optional<double> learning_rate;
  std::string loss;
};

enum class Verdict {
  Pass,       // equal at every draw, and the draws take every branch of every piecewise node
  Fail,       // a finding below says what is wrong
  Partial,    // a sum with an ellipsis whose written terms are all right
  Error,      // the formula could not be read (parse error, unknown name)
  Uncovered,  // equal at every draw, but a branch was never taken: not checked, never a pass
};

// How the formula was read:
//   Cut         ∂L/∂w = Σ_k c_k · ∂L/∂z_k      each c_k against the engine's ∂z_k/∂w
//   Expansion   z = Σ products                  each product against the sum node's operands
//   Derivative  ∂z/∂w = expression              one comparison, explained symbolically
//   SecondDerivative  ∂²L/∂a∂b = expression     against the engine's exact Hessian element
//   Equation    anything else                   both sides compared numerically
enum class Form { Cut, Expansion, Derivative, SecondDerivative, Equation, Unknown };

enum class FindingKind {
  WrongTerm,    // a written term differs from the true one
  MissingTerm,  // a true term that is not written (and there is no ellipsis)
  ExtraTerm,    // a written term that has no true counterpart
  NotACut,      // the derivative nodes named do not cross every path from w to L exactly once
  Mismatch,     // the two sides differ (reported when nothing finer applies)
  Annotation,   // an "X ⇒ Y" claim that does not hold
  NotWritten,   // terms an ellipsis leaves out (not a failure)
};

// The kind of mistake a wrong term is, when it is a common one.
enum class Mistake {
  None,
  Sign,               // the term is the negative of the right one
  ConstantFactor,     // off by a constant: 2, 1/2, 1/n
  MissingActivation,  // σ′(z1), tanh′(z2) or [z3 > 0] is missing (or extra)
  TransposedIndex,    // W4 = W_{2,1} written for W2 = W_{1,2}
  WrongIndex,         // another element of the same tensor (a13 for a3)
  MissingPath,        // the paths through one node are left out
  ExtraTerm,          // a term that is not there
};

struct Finding {
  FindingKind kind = FindingKind::Mismatch;
  Mistake mistake = Mistake::None;
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
  int draws = 0;      // the points the formula was evaluated at
  double rtol = 0.0, atol = 0.0;
  // The branches of the piecewise nodes the formula depends on, and how many of them
  // some draw took ("relu" -> 3 switches); a failure names the draw it fails at.
  std::size_t branches = 0, branches_covered = 0;
  std::map<std::string, std::size_t> switches_by_op;
  std::vector<std::string> uncovered;
  // How the notation was read where it could be read two ways ("W_{12} is read as W12, …").
  std::vector<std::string> notes;

  std::string text() const;           // one human-readable block
  std::string coverage_text() const;  // "branches: 6 of 6 taken at some draw (3 relu units)"
  nlohmann::json json() const;
};

// The key of Report::switches_by_op under which the formula's own comparisons count.
inline constexpr std::string_view formula_comparisons = "comparisons in the formula";

std::string_view verdict_name(Verdict v);      // "pass", "fail", "partial", "error", "uncovered"
std::string_view mistake_name(Mistake m);      // "sign", "constant factor", ..., "" for None
std::string_view form_name(Form f);            // "cut", "expansion", "derivative", "equation", "unknown"
std::string_view finding_name(FindingKind k);  // "wrong term", "missing term", ...

// Checks one formula; `formula` may span lines (an aligned LaTeX block is one formula).
// An Error (not a report) when the build throws: the model, not the formula, is wrong.
Report check_formula(const BuildFn& build, std::string_view formula, const CheckOptions& options = {});
Report check_formula(const BuildFn& build, const FormulaSource& formula, const CheckOptions& options = {});
// Every formula of a file's text (see split_formulas), against one set of draws. An
// Error when the text holds no formula (naming `source`, the file it came from, when
// given), or the build throws.
std::vector<Report> check_text(const BuildFn& build, std::string_view file_text, const CheckOptions& options = {},
                               std::string_view source = {});
// Reads the file; an unreadable file (or a directory) is an Error.
std::vector<Report> check_file(const BuildFn& build, const std::filesystem::path& path,
                               const CheckOptions& options = {});

// All blocks, then one summary line ("9 formulas: 4 pass, 3 fail, 2 partial, 0 error").
std::string text(std::span<const Report> reports);
nlohmann::json json(std::span<const Report> reports);

}  // namespace gradpath::check
