// SPDX-License-Identifier: MIT
// The checker's reports: names of verdicts, forms and findings, text and JSON.
#include <cstdio>
#include <map>

#include "check/checker.hpp"
#include "graph/symbolic.hpp"
#include "graph/text.hpp"

namespace gradpath::check {

using graph::number_text;

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Pass:
      return "pass";
    case Verdict::Fail:
      return "fail";
    case Verdict::Partial:
      return "partial";
    case Verdict::Error:
      return "error";
    case Verdict::Uncovered:
      return "uncovered";
  }
  return "?";
}

std::string_view mistake_name(Mistake m) {
  switch (m) {
    case Mistake::None:
      return "";
    case Mistake::Sign:
      return "sign";
    case Mistake::ConstantFactor:
      return "constant factor";
    case Mistake::MissingActivation:
      return "missing activation derivative";
    case Mistake::TransposedIndex:
      return "transposed index";
    case Mistake::WrongIndex:
      return "wrong index";
    case Mistake::MissingPath:
      return "missing path";
    case Mistake::ExtraTerm:
      return "extra term";
  }
  return "?";
}

std::string_view form_name(Form f) {
  switch (f) {
    case Form::Cut:
      return "cut";
    case Form::Expansion:
      return "expansion";
    case Form::Derivative:
      return "derivative";
    case Form::SecondDerivative:
      return "second derivative";
    case Form::Equation:
      return "equation";
    case Form::Unknown:
      return "unknown";
  }
  return "?";
}

std::string_view finding_name(FindingKind k) {
  switch (k) {
    case FindingKind::WrongTerm:
      return "wrong term";
    case FindingKind::MissingTerm:
      return "missing term";
    case FindingKind::ExtraTerm:
      return "extra term";
    case FindingKind::NotACut:
      return "not a cut";
    case FindingKind::Mismatch:
      return "mismatch";
    case FindingKind::Annotation:
      return "annotation";
    case FindingKind::NotWritten:
      return "not written";
  }
  return "?";
}

std::string Report::text() const {
  std::string s = "line " + std::to_string(line) + ": " + formula + "\n  " + std::string(verdict_name(verdict));
  if (verdict == Verdict::Error) {
    std::string indented;
    for (char c : error) indented += c == '\n' ? std::string("\n  ") : std::string(1, c);
    return s + ": " + indented + "\n";
  }
  s += " (" + std::string(form_name(form)) + " form; " + std::to_string(draws) +
       " draws; equal when |a - b| <= " + number_text(atol) + " + " + number_text(rtol) + "·max(|a|, |b|))\n";
  if (branches > 0) s += "  " + coverage_text() + "\n";
  for (const std::string& n : notes) s += "  note: " + n + "\n";
  for (const Finding& f : findings) s += "  " + f.message + "\n";
  return s;
}

std::string Report::coverage_text() const {
  const std::string ops = graph::join(switches_by_op, ", ", [](const auto& op_count) {
    const std::string& op = op_count.first;
    return std::to_string(op_count.second) + " " + op +
           (op == formula_comparisons ? ""
            : op == "max_pool2d"      ? " windows"
                                      : " units");
  });
  std::string s = "branches: " + std::to_string(branches_covered) + " of " + std::to_string(branches) +
                  " taken at some draw (" + ops + ")";
  if (uncovered.empty()) return s;
  s += "; never taken: ";
  for (std::size_t i = 0; i < uncovered.size() && i < 8; ++i) s += (i ? ", " : "") + uncovered[i];
  if (uncovered.size() > 8) s += ", … (" + std::to_string(uncovered.size()) + " in all)";
  return s + ", so the formula is not checked there";
}

nlohmann::json Report::json() const {
  nlohmann::json j = {{"formula", formula},
                      {"line", line},
                      {"verdict", verdict_name(verdict)},
                      {"form", form_name(form)},
                      {"draws", draws},
                      {"rtol", rtol},
                      {"atol", atol},
                      {"branches", branches},
                      {"branches_covered", branches_covered},
                      {"uncovered", uncovered}};
  j["findings"] = nlohmann::json::array();
  for (const Finding& f : findings) {
    nlohmann::json finding = {{"kind", finding_name(f.kind)}, {"term", f.term}, {"message", f.message}};
    if (f.mistake != Mistake::None) finding["mistake"] = mistake_name(f.mistake);
    j["findings"].push_back(std::move(finding));
  }
  if (verdict == Verdict::Error) j["error"] = error;
  if (!notes.empty()) j["notes"] = notes;
  // The formula file's text may hold bytes that are not UTF-8 (they reach the formula,
  // the messages and the caret lines): they become U+FFFD here, so the JSON dumps anywhere.
  return nlohmann::json::parse(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string text(std::span<const Report> reports) {
  std::string s;
  std::map<Verdict, std::size_t> count;
  for (const Report& r : reports) {
    s += r.text() + "\n";
    ++count[r.verdict];
  }
  const std::size_t checked = reports.size() - count[Verdict::Error];
  return s + std::to_string(reports.size()) + " formulas found, " + std::to_string(checked) +
         " checked: " + std::to_string(count[Verdict::Pass]) + " pass, " + std::to_string(count[Verdict::Fail]) +
         " fail, " + std::to_string(count[Verdict::Partial]) + " partial, " +
         std::to_string(count[Verdict::Uncovered]) + " uncovered, " + std::to_string(count[Verdict::Error]) +
         " error\n";
}

nlohmann::json json(std::span<const Report> reports) {
  nlohmann::json j = nlohmann::json::array();
  for (const Report& r : reports) j.push_back(r.json());
  return j;
}

}  // namespace gradpath::check
