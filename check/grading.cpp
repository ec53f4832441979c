// SPDX-License-Identifier: MIT
#include "check/grading.hpp"

#include <algorithm>
#include <cstdio>
#include <system_error>

#include "check/formula.hpp"

namespace gradpath::check {

std::vector<std::string> submission_files(std::span<const std::string> arguments) {
  std::vector<std::string> out;
  for (const std::string& a : arguments) {
    std::error_code ec;
    if (!std::filesystem::is_directory(a, ec)) {
      out.push_back(a);
      continue;
    }
    std::vector<std::string> found;
    auto it = std::filesystem::recursive_directory_iterator(a, ec);
    for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.starts_with(".")) {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      const std::string ext = it->path().extension().string();
      const bool formulas = ext == ".txt" || ext == ".tex" || ext == ".md";
      if (formulas && it->is_regular_file(ec)) found.push_back(it->path().generic_string());
    }
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

namespace {

// A finding about one term: a wrong one, a missing one (also a path left out, which the
// checker may report as the two sides differing), an extra one.
bool is_missing(const Finding& f) { return f.kind == FindingKind::MissingTerm || f.mistake == Mistake::MissingPath; }
bool is_extra(const Finding& f) { return f.kind == FindingKind::ExtraTerm || f.mistake == Mistake::ExtraTerm; }
bool counts_terms(const Finding& f) { return f.kind == FindingKind::WrongTerm || is_missing(f) || is_extra(f); }
bool fails(const Finding& f) { return f.kind != FindingKind::NotWritten; }

// The terms written on the right side, the ellipsis not counted; 0 when it cannot be read.
std::size_t written_terms(const Report& r) {
  try {
    const Formula f = parse_formula(r.formula, r.line);
    if (f.rhs.kind != ExprKind::Sum) return 1;
    return static_cast<std::size_t>(std::count_if(f.rhs.args.begin(), f.rhs.args.end(),
                                                  [](const Expr& e) { return e.kind != ExprKind::Ellipsis; }));
  } catch (const Error&) {
    return 0;
  }
}

std::string number(double v, const char* format) {
  char buf[32];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string credit_text(double c) { return number(c, "%.3g"); }

// One row per formula and a total per submission, the fields in CSV order.
using Row = std::vector<std::string>;
const Row header{"submission", "line", "verdict", "credit", "mistake", "right term", "message"};

std::vector<Row> rows(std::span<const Submission> submissions) {
  std::vector<Row> out;
  for (const Submission& s : submissions) {
    double points = 0.0;
    if (!s.error.empty()) {
      out.push_back({s.path, "", "error", "0", "unreadable", "", s.error});
    }
    for (const Report& r : s.reports) {
      const double c = credit(r);
      points += c;
      const std::string message = r.verdict == Verdict::Error ? r.error : finding_of(r);
      out.push_back({s.path, std::to_string(r.line), std::string(verdict_name(r.verdict)), credit_text(c),
                     mistake_of(r), right_term_of(r), message});
    }
    const std::size_t n = s.reports.size();
    out.push_back({s.path, "", "total", number(points, "%.4g"), "", "",
                   number(points, "%.4g") + " of " + std::to_string(n) + " formulas (" +
                       number(n == 0 ? 0.0 : 100.0 * points / static_cast<double>(n), "%.1f") + "%)"});
  }
  return out;
}

}  // namespace

double credit(const Report& r) {
  if (r.verdict == Verdict::Pass || r.verdict == Verdict::Partial) return 1.0;
  if (r.verdict != Verdict::Fail) return 0.0;
  const auto term_findings = std::count_if(r.findings.begin(), r.findings.end(), counts_terms);
  const auto other = std::count_if(r.findings.begin(), r.findings.end(),
                                   [](const Finding& f) { return fails(f) && !counts_terms(f); });
  if (term_findings == 0 || other != 0) return 0.0;
  std::size_t wrong = 0, missing = 0, extra = 0, highest = 0;
  for (const Finding& f : r.findings) {
    missing += is_missing(f);
    extra += !is_missing(f) && is_extra(f);
    wrong += !is_missing(f) && !is_extra(f) && f.kind == FindingKind::WrongTerm;
    highest = std::max(highest, f.term);
  }
  const std::size_t written = std::max(written_terms(r), highest);
  const std::size_t right = written - std::min(written, wrong + extra);
  return written + missing == 0 ? 0.0 : static_cast<double>(right) / static_cast<double>(written + missing);
}

std::string mistake_of(const Report& r) {
  if (r.verdict == Verdict::Error) return "unreadable";
  if (r.verdict == Verdict::Uncovered) return "uncovered";
  for (const Finding& f : r.findings) {
    if (fails(f) && f.mistake != Mistake::None) return std::string(mistake_name(f.mistake));
  }
  for (const Finding& f : r.findings) {
    if (fails(f)) return std::string(finding_name(f.kind));
  }
  return "";
}

std::string finding_of(const Report& r) {
  std::string out;
  for (const Finding& f : r.findings) {
    if (fails(f)) out += (out.empty() ? "" : "; ") + f.message;
  }
  return out;
}

std::string right_term_of(const Report& r) {
  std::string out;
  for (const Finding& f : r.findings) {
    if (!fails(f)) continue;
    const std::string& m = f.message;
    std::string right;
    if (const auto add = m.find(": add "); add != std::string::npos) {
      right =
          m.substr(add + 6, m.find(". ", add) == std::string::npos ? std::string::npos : m.find(". ", add) - add - 6);
    } else if (const auto missing = m.find("missing term: "); missing != std::string::npos) {
      right = m.substr(missing + 14);
    } else if (const auto has = m.find(", the formula has"); has != std::string::npos) {
      const auto is = m.rfind(" is ", has);
      if (is != std::string::npos) right = m.substr(is + 4, has - is - 4);
      if (const auto paren = right.find(" ("); paren != std::string::npos) right.erase(paren);
    }
    if (!right.empty()) out += (out.empty() ? "" : "; ") + right;
  }
  return out;
}

std::string csv_field(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (const char c : field) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string grading_csv(std::span<const Submission> submissions) {
  std::string out;
  auto line = [&](const Row& row) {
    for (std::size_t i = 0; i < row.size(); ++i) out += (i ? "," : "") + csv_field(row[i]);
    out += "\r\n";
  };
  line(header);
  for (const Row& row : rows(submissions)) line(row);
  return out;
}

std::string grading_text(std::span<const Submission> submissions) {
  std::string out;
  for (const Row& row : rows(submissions)) {
    if (row[2] == "total") {
      out += row[0] + ": " + row[6] + "\n\n";
      continue;
    }
    std::string where = row[0] + (row[1].empty() ? "" : ":" + row[1]);
    out += where + "  " + row[2] + "  credit " + row[3];
    if (!row[4].empty()) out += "  [" + row[4] + "]";
    if (!row[5].empty()) out += "  right: " + row[5];
    out += "\n";
    if (!row[6].empty()) {
      // A message that spans lines (a parse error with its caret) stays indented.
      std::string message = "    " + row[6];
      for (std::size_t p = 0; (p = message.find('\n', p)) != std::string::npos; p += 5) message.insert(p + 1, "    ");
      out += message + "\n";
    }
  }
  return out;
}

nlohmann::json grading_json(std::span<const Submission> submissions) {
  nlohmann::json out = nlohmann::json::array();
  for (const Submission& s : submissions) {
    nlohmann::json formulas = nlohmann::json::array();
    double points = 0.0;
    for (const Report& r : s.reports) {
      nlohmann::json j = r.json();
      j["credit"] = credit(r);
      j["mistake"] = mistake_of(r);
      j["right_term"] = right_term_of(r);
      points += credit(r);
      formulas.push_back(std::move(j));
    }
    nlohmann::json entry = {
        {"submission", s.path}, {"formulas", std::move(formulas)}, {"points", points}, {"count", s.reports.size()}};
    if (!s.error.empty()) entry["error"] = s.error;
    out.push_back(std::move(entry));
  }
  return {{"submissions", std::move(out)}};
}

}  // namespace gradpath::check
