// SPDX-License-Identifier: MIT
// Grading a folder of submissions: every formula of every file checked against one model,
// one row per formula with its verdict, the mistake named and its partial credit, and a
// total per submission, as text, CSV (RFC 4180) or JSON.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "check/checker.hpp"

namespace gradpath::check {

// One submitted file: its reports, or the error that kept it from being checked (a file
// that cannot be read, holds no formula, or is too large).
struct Submission {
  std::string path;  // as given, or found under a directory given
  std::vector<Report> reports;
  std::string error;
};

// The files to grade: each argument that is not a directory, as given, and every .txt,
// .tex and .md file under each argument that is a directory (recursively; names starting
// with '.' are skipped), in order of their paths, so the same folder always grades the
// same way. An argument that does not exist is kept: reading it gives the submission
// its error.
std::vector<std::string> submission_files(std::span<const std::string> arguments);

// The share of a formula that is right. Pass and Partial (an ellipsis; every written
// term right) earn 1. A failing sum whose findings are about single terms earns
// (terms right) / (terms written + terms missing): a wrong or extra term is written but
// not right, a missing one (a path left out) is counted as not right. Any other
// failure, an error and an uncovered verdict earn 0.
double credit(const Report& report);

// The mistake a report names ("wrong index", "missing path", ..., or the kind of the
// first failing finding, "mismatch") and its message; empty for a pass.
std::string mistake_of(const Report& report);
std::string finding_of(const Report& report);
// The right term, when the finding says what it is ("a3·∂L/∂z2"); else empty.
std::string right_term_of(const Report& report);

// Header, one row per formula (an unreadable submission: one row with its error), then
// a total row per submission. Fields are quoted when they hold a comma, a quote or a
// line break, quotes doubled (RFC 4180); lines end in CRLF.
std::string grading_csv(std::span<const Submission> submissions);
// The same as aligned text lines for a terminal, then one summary line per submission.
std::string grading_text(std::span<const Submission> submissions);
nlohmann::json grading_json(std::span<const Submission> submissions);

// One CSV field, quoted when it must be.
std::string csv_field(const std::string& field);

}  // namespace gradpath::check
