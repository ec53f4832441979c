// SPDX-License-Identifier: MIT
// gradpath explain: the derivation of ∂L/∂w in the seed note's order, from the graph's
// symbolic partials (graph/symbolic.hpp), written as text or LaTeX the checker reads.
#include "check/explain.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "autodiff/functions.hpp"
#include "graph/symbolic.hpp"

namespace gradpath::check {

std::optional<ExplainFormat> explain_format(std::string_view name) {
  if (name == "text" || name == "txt") return ExplainFormat::Text;
  if (name == "markdown" || name == "md") return ExplainFormat::Markdown;
  if (name == "latex" || name == "tex") return ExplainFormat::Latex;
  return std::nullopt;
}

namespace {

using graph::Monomial;
using graph::SymbolicSum;

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

// A name without its element number: "a13" -> "a", "y" -> "y".
std::string stem(std::string_view name) {
  const std::size_t end = name.find_last_not_of("0123456789");
  return std::string(name.substr(0, end == std::string_view::npos ? 0 : end + 1));
}

// The number as the formula should hold it exactly: an integer, a fraction p/q with a
// small q (2/3 from mse over three outputs), else 17 significant digits.
std::string coefficient_text(double v) {
  for (int q = 1; q <= 64; ++q) {
    const double p = std::round(v * q);
    if (std::abs(v * q - p) <= 1e-12 * std::max(1.0, std::abs(p)) && std::abs(p) < 1e9) {
      const std::string num = graph::number_text(p);
      return q == 1 ? num : num + "/" + std::to_string(q);
    }
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// A sum in the notation of SymbolicSum::text (names, ·, σ′(z1), [z1 > 0], ∂Z1/∂R5), with
// coefficients written exactly.
std::string sum_text(const SymbolicSum& s) {
  std::string out;
  for (const Monomial& m : s.terms) {
    if (m.coeff == 0.0) continue;
    const double magnitude = std::abs(m.coeff);
    std::string body = magnitude != 1.0 || m.factors.empty() ? coefficient_text(magnitude) : "";
    for (const std::string& f : m.factors) body += (body.empty() ? "" : "·") + f;
    out += out.empty() ? (m.coeff < 0 ? "-" : "") + body : (m.coeff < 0 ? " - " : " + ") + body;
  }
  return out.empty() ? "0" : out;
}

// s · tail, parenthesised when s has more than one term.
std::string times(const SymbolicSum& s, const std::string& tail) {
  if (s.terms.size() == 1) {
    Monomial m = s.terms[0];
    m.factors.push_back(tail);
    return sum_text(SymbolicSum{{m}});
  }
  return "(" + sum_text(s) + ")·" + tail;
}

std::string join_terms(const std::vector<std::string>& terms) {
  std::string out;
  for (const std::string& t : terms) {
    if (out.empty()) {
      out = t;
    } else {
      out += t.starts_with("-") ? " - " + t.substr(1) : " + " + t;
    }
  }
  return out.empty() ? "0" : out;
}

std::string d(const std::string& of, const std::string& wrt) { return "∂" + of + "/∂" + wrt; }

// ---- rendering --------------------------------------------------------------------------
// A name in LaTeX: a13 -> a_{13}, W_{i,j} as written, a name of several letters in \text.
std::string latex_name(std::string_view name) {
  std::string base, sub;
  if (const std::size_t u = name.find('_'); u != std::string_view::npos) {
    base = name.substr(0, u);
    sub = name.substr(u + 1);
    if (!sub.starts_with("{")) sub = "{" + sub + "}";
  } else {
    base = stem(name);
    if (base.size() < name.size()) sub = "{" + std::string(name.substr(base.size())) + "}";
  }
  if (base.size() > 1) base = "\\text{" + base + "}";
  return sub.empty() ? base : base + "_" + sub;
}

// Renders a formula written in the notation above as ASCII (latex false) or LaTeX.
std::string render(std::string_view f, bool latex) {
  std::string out;
  std::size_t i = 0;
  auto starts = [&](std::string_view s) { return f.substr(i).starts_with(s); };
  auto read_name = [&] {
    const std::size_t begin = i;
    while (i < f.size() && is_alnum(f[i])) ++i;
    if (i < f.size() && f[i] == '_') {
      ++i;
      if (i < f.size() && f[i] == '{') {
        while (i < f.size() && f[i] != '}') ++i;
        ++i;
      } else {
        while (i < f.size() && is_alnum(f[i])) ++i;
      }
    }
    return f.substr(begin, i - begin);
  };
  // LaTeX has these as commands; any other function of the table is an \operatorname.
  static constexpr std::string_view latex_commands[] = {"exp", "log", "tanh", "sqrt", "sin", "cos"};
  while (i < f.size()) {
    if (starts("∂")) {
      i += std::string_view("∂").size();
      const std::string_view of = read_name();
      i += std::string_view("/∂").size();
      const std::string_view wrt = read_name();
      out += latex ? "\\frac{\\partial " + latex_name(of) + "}{\\partial " + latex_name(wrt) + "}"
                   : "d" + std::string(of) + "/d" + std::string(wrt);
    } else if (starts("Σ_")) {
      i += std::string_view("Σ_").size();
      const std::string_view k = read_name();
      out += latex ? "\\sum_{" + std::string(k) + "} " : "Σ_" + std::string(k) + " ";
      while (i < f.size() && f[i] == ' ') ++i;
    } else if (starts("σ′")) {
      i += std::string_view("σ′").size();
      out += latex ? "\\sigma'" : "sigmoid'";
    } else if (starts("·")) {
      i += std::string_view("·").size();
      out += latex ? " \\cdot " : "*";
    } else if (starts("≥") || starts("≤")) {
      out += starts("≥") ? (latex ? "\\geq" : ">=") : (latex ? "\\leq" : "<=");
      i += std::string_view("≥").size();
    } else if (starts("′")) {
      i += std::string_view("′").size();
      out += "'";
    } else if (is_alpha(f[i])) {
      const std::string_view name = read_name();
      const bool call = i < f.size() && (f[i] == '(' || f.substr(i).starts_with("′"));
      const bool function = call && function_spelled(name) != nullptr;
      const bool command =
          std::find(std::begin(latex_commands), std::end(latex_commands), name) != std::end(latex_commands);
      if (!function) {
        out += latex ? latex_name(name) : name;
      } else if (!latex) {
        out += name;
      } else {
        out += command ? "\\" + std::string(name) : "\\operatorname{" + std::string(name) + "}";
      }
    } else if (is_digit(f[i])) {
      while (i < f.size() &&
             (is_digit(f[i]) || f[i] == '.' || f[i] == 'e' || ((f[i] == '-' || f[i] == '+') && f[i - 1] == 'e'))) {
        out += f[i++];
      }
    } else {
      out += f[i++];
    }
  }
  return out;
}

// Prose for LaTeX: the characters LaTeX treats specially, escaped; anything not ASCII
// (a path with é) as '?', since pdflatex without packages has no glyph for it.
std::string latex_escape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80 || static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else if (std::string_view("_%&#${}").find(c) != std::string_view::npos) {
      out += std::string("\\") + c;
    } else if (c == '\\') {
      out += "\\textbackslash{}";
    } else if (c == '~' || c == '^') {
      out += c == '~' ? "\\textasciitilde{}" : "\\textasciicircum{}";
    } else {
      out += c;
    }
  }
  return out;
}

// A sum cut into rows of `per_row` terms, at its top-level " + " and " - " (none inside
// brackets); the rows after the first start with their sign.
std::vector<std::string> rows_of(const std::string& sum, std::size_t per_row) {
  std::vector<std::string> rows{""};
  std::size_t terms = 0;
  int depth = 0;
  for (std::size_t i = 0; i < sum.size(); ++i) {
    const char c = sum[i];
    depth += c == '(' || c == '[' || c == '{' ? 1 : c == ')' || c == ']' || c == '}' ? -1 : 0;
    const bool split =
        depth == 0 && c == ' ' && i + 2 < sum.size() && (sum[i + 1] == '+' || sum[i + 1] == '-') && sum[i + 2] == ' ';
    if (split && ++terms % per_row == 0) {
      rows.emplace_back();
      continue;
    }
    rows.back() += c;
  }
  return rows;
}

// The document: prose with inline math, headings and displayed equations, in one format.
// Only displayed equations are formulas the checker reads: inline math never holds "=".
class Doc {
 public:
  explicit Doc(ExplainFormat format) : format_(format) {}
  bool latex() const { return format_ != ExplainFormat::Text; }
  // A formula fragment inside prose (no "=": the checker would read it as a claim).
  std::string math(std::string_view f) const { return latex() ? "$" + render(f, true) + "$" : render(f, false); }
  std::string text(std::string_view s) const {
    return format_ == ExplainFormat::Latex ? latex_escape(s) : std::string(s);
  }
  void heading(const std::string& s) {
    if (format_ == ExplainFormat::Text) out_ += "\n# ==== " + s + " ====\n";
    if (format_ == ExplainFormat::Markdown) out_ += "\n## " + s + "\n\n";
    if (format_ == ExplainFormat::Latex) out_ += "\n\\subsection*{" + s + "}\n\n";
  }
  void prose(const std::string& s) {
    if (format_ == ExplainFormat::Text) {
      out_ += "# " + s + "\n";
    } else {
      out_ += s + "\n\n";
    }
  }
  void equation(const std::string& lhs, const std::string& rhs) {
    if (format_ == ExplainFormat::Text) out_ += render(lhs, false) + " = " + render(rhs, false) + "\n";
    if (format_ == ExplainFormat::Markdown) out_ += "$$" + render(lhs, true) + " = " + render(rhs, true) + "$$\n\n";
    if (format_ == ExplainFormat::Latex) {
      // A long sum is broken into rows of a few terms (multline*: a row without "=" goes
      // on with the sum, as the checker reads it), so it stays on the page.
      const std::vector<std::string> rows = rows_of(rhs, 3);
      if (rows.size() == 1) {
        out_ += "\\[ " + render(lhs, true) + " = " + render(rhs, true) + " \\]\n\n";
        return;
      }
      out_ += "\\begin{multline*}\n" + render(lhs, true) + " = " + render(rows[0], true);
      for (std::size_t r = 1; r < rows.size(); ++r) out_ += " \\\\\n  " + render(rows[r], true);
      out_ += "\n\\end{multline*}\n\n";
    }
  }
  // The learning rate the update rules below step with: α := rate, a definition the
  // checker reads.
  void learning_rate(double rate) {
    const std::string value = graph::number_text(rate);
    if (format_ == ExplainFormat::Text) out_ += "alpha := " + value + "\n";
    if (format_ != ExplainFormat::Text) out_ += "$$\\alpha := " + value + "$$\n\n";
  }
  // w^* = w - α ∂L/∂w: the update rule, which the checker checks against one step.
  void update(const std::string& w, const std::string& derivative) {
    if (format_ == ExplainFormat::Text) out_ += w + "^* = " + w + " - alpha*" + render(derivative, false) + "\n";
    if (format_ != ExplainFormat::Text) {
      const std::string open = format_ == ExplainFormat::Latex ? "\\[ " : "$$",
                        close = format_ == ExplainFormat::Latex ? " \\]" : "$$";
      out_ += open + render(w, true) + "^{*} = " + render(w, true) + " - \\alpha " + render(derivative, true) + close +
              "\n\n";
    }
  }
  void raw(const std::string& s) { out_ += s; }
  const std::string& str() const { return out_; }

 private:
  ExplainFormat format_;
  std::string out_;
};

class Explainer {
 public:
  Explainer(const Tape& tape, Slot loss, const ExplainOptions& options)
      : tape_(tape), loss_(loss), options_(options), doc_(options.format) {
    build_slot_graph();
  }

  std::string run(std::span<const ExplainTarget> targets) {
    const bool document = options_.format == ExplainFormat::Latex && options_.standalone;
    if (document) {
      doc_.raw("\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n\\section*{Gradients of " +
               name_of(loss_) + (options_.title.empty() ? "" : ": " + latex_escape(options_.title)) + "}\n");
    } else if (options_.format == ExplainFormat::Text) {
      doc_.raw("# The derivation of the gradients of " + name_of(loss_) +
               (options_.title.empty() ? "" : " in " + options_.title) +
               ", written by gradpath explain.\n# Every line that does not start with # is a formula "
               "gradpath check reads.\n");
    } else if (options_.format == ExplainFormat::Markdown) {
      doc_.raw("# Gradients of " + name_of(loss_) + (options_.title.empty() ? "" : " in " + options_.title) + "\n");
    }
    if (options_.lr) {
      doc_.prose(doc_.text("The learning rate of the updates below:"));
      doc_.learning_rate(*options_.lr);
    }
    for (const ExplainTarget& t : targets) {
      if (t.slots.size() > 1) general(t);
      for (const Slot w : t.slots) weight(w);
    }
    if (document) doc_.raw("\\end{document}\n");
    return doc_.str();
  }

 private:
  std::string name_of(Slot s) const { return tape_.slot_name(s); }

  // Consumers of every slot, element by element: a scalar node's operands; a tensor op's
  // operand elements each output element reads (its symbolic edges, else all of them).
  void build_slot_graph() {
    consumers_.assign(tape_.slot_count(), {});
    std::vector<SymbolicEdge> edges;
    for (NodeId n = 0; n < tape_.node_count(); ++n) {
      if (is_leaf(tape_.op(n))) continue;
      if (tape_.op(n) != Op::Tensor) {
        for (const Slot a : tape_.arg_slots(n)) consumers_[a].push_back(tape_.offset(n));
        continue;
      }
      const TensorRecord& r = tape_.tensor_record(n);
      if (r.dtype != DType::f64) continue;
      for (std::size_t e = 0; e < r.shape.size(); ++e) {
        const auto out = static_cast<Slot>(r.output + e);
        edges.clear();
        if (r.info->symbolic != nullptr && r.info->symbolic(tape_, r, e, edges)) {
          for (const SymbolicEdge& edge : edges) consumers_[edge.operand].push_back(out);
          continue;
        }
        for (const TensorArg& a : tape_.tensor_args(r)) {
          if (a.dtype != DType::f64) continue;
          for (std::size_t k = 0; k < a.shape.size(); ++k) consumers_[a.offset + k].push_back(out);
        }
      }
    }
    for (auto& c : consumers_) {
      std::sort(c.begin(), c.end());
      c.erase(std::unique(c.begin(), c.end()), c.end());
    }
    reaches_loss_.assign(tape_.slot_count(), 0);
    reaches_loss_[loss_] = 1;
    for (Slot s = loss_; s-- > 0;) {
      reaches_loss_[s] =
          std::any_of(consumers_[s].begin(), consumers_[s].end(), [&](Slot c) { return reaches_loss_[c] != 0; });
    }
  }

  // The named nodes first met on the paths from u to the loss (the layer below u), when
  // every path crosses exactly one of them; else the loss alone.
  const std::vector<Slot>& cut_of(Slot u) {
    if (const auto it = cuts_.find(u); it != cuts_.end()) return it->second;
    return cuts_[u] = find_cut(u);
  }
  std::vector<Slot> find_cut(Slot u) const {
    std::vector<Slot> cut, stack{u};
    std::set<Slot> seen;
    while (!stack.empty()) {
      const Slot s = stack.back();
      stack.pop_back();
      for (const Slot c : consumers_[s]) {
        if (!reaches_loss_[c] || !seen.insert(c).second) continue;
        if (!name_of(c).empty()) {
          cut.push_back(c);
        } else {
          stack.push_back(c);
        }
      }
    }
    std::sort(cut.begin(), cut.end());
    // A path through two of them (z1 feeds m, and w reaches m another way): no cut.
    for (const Slot c : cut) {
      std::vector<Slot> below{c};
      std::set<Slot> visited;
      while (!below.empty()) {
        const Slot s = below.back();
        below.pop_back();
        for (const Slot n : consumers_[s]) {
          if (!visited.insert(n).second) continue;
          if (n != c && std::binary_search(cut.begin(), cut.end(), n)) return {loss_};
          below.push_back(n);
        }
      }
    }
    return cut;
  }

  // ∂L/∂s_j of softmax cross-entropy over logits s: (exp(s_j)/Σ_c exp(s_c) − [j = label])/N.
  std::optional<SymbolicSum> softmax_edge(Slot of, Slot wrt) const {
    const NodeId n = tape_.node_of(of);
    if (tape_.op(n) != Op::Tensor) return std::nullopt;
    const TensorRecord& r = tape_.tensor_record(n);
    if (r.info->name != "softmax_cross_entropy" || r.dtype != DType::f64) return std::nullopt;
    const TensorArg& logits = tape_.tensor_args(r)[0];
    if (wrt < logits.offset || wrt >= logits.offset + logits.shape.size()) return std::nullopt;
    // The op reads its logits as rows of the last axis's classes.
    const std::size_t classes = logits.shape[logits.shape.rank() - 1], rows = logits.shape.size() / classes;
    const std::size_t k = wrt - logits.offset, row = k / classes;
    const auto label = static_cast<std::size_t>(tape_.saved(r)[rows * classes + row]);
    std::string total;
    for (std::size_t c = 0; c < classes; ++c) {
      const std::string s = name_of(static_cast<Slot>(logits.offset + row * classes + c));
      if (s.empty()) return std::nullopt;
      total += (c ? " + exp(" : "exp(") + s + ")";
    }
    const std::string p = "exp(" + name_of(wrt) + ")/(" + total + ")";
    const std::string factor = "(" + p + (k % classes == label ? " - 1)" : ")");
    return SymbolicSum{{Monomial{1.0 / static_cast<double>(rows), {factor}}}};
  }

  // ∂of/∂wrt in symbols, or an ExplainError naming the op that has none.
  SymbolicSum edge(Slot of, Slot wrt, Slot weight) const {
    if (auto s = softmax_edge(of, wrt)) return *s;
    if (auto s = graph::symbolic_derivative(tape_, of, wrt, options_.max_terms)) return *s;
    const NodeId n = tape_.node_of(of);
    const std::string op(tape_.op(n) == Op::Tensor ? tape_.tensor_record(n).info->name : op_name(tape_.op(n)));
    throw ExplainError("explain: cannot write the derivation of " + d(name_of(loss_), name_of(weight)) + ": " +
                       d(name_of(of), name_of(wrt)) + " (through " + op +
                       ") has no symbols (an op without a symbolic partial, or an unnamed operand); "
                       "gradpath grad gives its value");
  }

  // ∂L/∂u fully expanded: the products of the symbolic partials down every cut.
  const std::optional<SymbolicSum>& full(Slot u, Slot weight) {
    if (const auto it = full_.find(u); it != full_.end()) return it->second;
    std::optional<SymbolicSum> result = SymbolicSum{};
    if (u == loss_) result = SymbolicSum{{Monomial{}}};
    for (const Slot c : u == loss_ ? std::vector<Slot>{} : cut_of(u)) {
      const SymbolicSum e = edge(c, u, weight);
      const std::optional<SymbolicSum>& below = full(c, weight);
      if (!below || !result) {
        result.reset();
        break;
      }
      for (const Monomial& a : e.terms) {
        for (const Monomial& b : below->terms) {
          Monomial m{a.coeff * b.coeff, a.factors};
          m.factors.insert(m.factors.end(), b.factors.begin(), b.factors.end());
          result->add(m);
        }
      }
      if (result->terms.size() > options_.max_terms) result.reset();
    }
    return full_[u] = result;
  }

  // c written out from its operands, where c is a sum of products (a conv2d_mac output,
  // a dense or conv2d unit): "z1 = w1·a1 + w2·a2 + …"; none for any other node.
  std::optional<std::string> expansion(Slot c) const {
    const NodeId n = tape_.node_of(c);
    SymbolicSum s;
    if (tape_.op(n) == Op::Dot) {  // operands in pairs, x_k then y_k
      const auto args = tape_.arg_slots(n);
      for (std::size_t k = 0; k + 1 < args.size(); k += 2) {
        const std::string x = name_of(args[k]), y = name_of(args[k + 1]);
        if (x.empty() || y.empty()) return std::nullopt;
        s.terms.push_back(Monomial{1.0, {x, y}});
      }
      return sum_text(s);
    }
    if (tape_.op(n) == Op::Sum || tape_.op(n) == Op::Add || tape_.op(n) == Op::Sub) {
      const auto args = tape_.arg_slots(n);
      for (std::size_t j = 0; j < args.size(); ++j) {
        const double p = tape_.partials(n)[j];
        if (!name_of(args[j]).empty()) {
          s.terms.push_back(Monomial{p, {name_of(args[j])}});
          continue;
        }
        const NodeId m = tape_.node_of(args[j]);
        if (tape_.op(m) != Op::Mul || tape_.arg_slots(m).size() != 2 || p != 1.0) return std::nullopt;
        const std::string x = name_of(tape_.arg_slots(m)[0]), y = name_of(tape_.arg_slots(m)[1]);
        if (x.empty() || y.empty()) return std::nullopt;
        s.terms.push_back(Monomial{1.0, {x, y}});
      }
      return sum_text(s);
    }
    if (tape_.op(n) != Op::Tensor) return std::nullopt;
    const TensorRecord& r = tape_.tensor_record(n);
    if (r.info->name != "dense" && r.info->name != "conv2d" && r.info->name != "matmul") return std::nullopt;
    std::vector<SymbolicEdge> edges;
    if (r.info->symbolic == nullptr || !r.info->symbolic(tape_, r, c - r.output, edges)) return std::nullopt;
    for (const SymbolicEdge& e : edges) {
      if (e.factors.empty()) {
        s.terms.push_back(Monomial{e.coeff, {name_of(e.operand)}});
      } else if (tape_.op(tape_.node_of(e.operand)) == Op::Param) {
        Monomial m{e.coeff, {name_of(e.operand)}};
        m.factors.insert(m.factors.end(), e.factors.begin(), e.factors.end());
        s.terms.push_back(m);
      }
    }
    if (s.terms.empty()) return std::nullopt;
    return sum_text(s);
  }

  // A max-pool's partial is the derivative itself (∂Z1/∂R5: 1 where R5 wins, else 0).
  bool is_winner_partial(const SymbolicSum& e, Slot of, Slot wrt) const {
    return e.terms.size() == 1 && e.terms[0].coeff == 1.0 && e.terms[0].factors.size() == 1 &&
           e.terms[0].factors[0] == d(name_of(of), name_of(wrt));
  }

  void partial_line(Slot of, Slot wrt, const SymbolicSum& e) {
    if (is_winner_partial(e, of, wrt)) {
      doc_.prose(doc_.math(d(name_of(of), name_of(wrt))) + doc_.text(" is 1 where ") + doc_.math(name_of(wrt)) +
                 doc_.text(" is the largest of its window (the first on a tie), else 0; the checker takes every "
                           "cell as the winner."));
      return;
    }
    doc_.equation(d(name_of(of), name_of(wrt)), sum_text(e));
  }

  std::string names_list(const std::vector<Slot>& slots) const {
    std::string out;
    for (std::size_t k = 0; k < slots.size(); ++k) {
      out += (k == 0                  ? ""
              : k + 1 == slots.size() ? doc_.text(" and ")
                                      : doc_.text(", ")) +
             doc_.math(name_of(slots[k]));
    }
    return out;
  }

  std::string cut_sum(Slot u, const std::vector<Slot>& cut) const {
    std::vector<std::string> terms;
    for (const Slot c : cut) terms.push_back(d(name_of(c), name_of(u)) + "·" + d(name_of(loss_), name_of(c)));
    return join_terms(terms);
  }

  // ∂L/∂u down the rest of the graph, each node once per document.
  void chain(Slot u, Slot weight) {
    if (u == loss_ || !chained_.insert(u).second) return;
    const std::string L = name_of(loss_);
    const std::vector<Slot> cut = cut_of(u);
    if (cut.size() == 1 && cut[0] == loss_) {
      doc_.equation(d(L, name_of(u)), sum_text(edge(loss_, u, weight)));
      return;
    }
    doc_.equation(d(L, name_of(u)), cut_sum(u, cut));
    for (const Slot c : cut) partial_line(c, u, edge(c, u, weight));
    for (const Slot c : cut) chain(c, weight);
    if (const auto& f = full(u, weight)) doc_.equation(d(L, name_of(u)), sum_text(*f));
  }

  void weight(Slot w) {
    const std::string L = name_of(loss_), name = name_of(w);
    doc_.heading(doc_.math(d(L, name)));
    const std::vector<Slot> cut = cut_of(w);
    if (cut.empty()) {
      doc_.prose(doc_.math(name) + doc_.text(" does not reach ") + doc_.math(L) + doc_.text(":"));
      doc_.equation(d(L, name), "0");
    } else if (cut.size() == 1 && cut[0] == loss_) {
      doc_.prose(doc_.math(name) + doc_.text(" reaches ") + doc_.math(L) + doc_.text(" directly:"));
      doc_.equation(d(L, name), sum_text(edge(loss_, w, w)));
    } else {
      doc_.prose(doc_.text("1. The chain rule through the layer below: ") + doc_.math(name) + doc_.text(" changes ") +
                 names_list(cut) + doc_.text(cut.size() == 1 ? ", and through it " : ", and through them ") +
                 doc_.math(L) + doc_.text("."));
      doc_.equation(d(L, name), cut_sum(w, cut));
      doc_.prose(doc_.text(cut.size() == 1 ? "2. It written out" : "2. Each of them written out") +
                 doc_.text(", and its partial with respect to ") + doc_.math(name) + doc_.text(":"));
      std::vector<std::string> terms;
      for (const Slot c : cut) {
        if (const auto e = expansion(c)) doc_.equation(name_of(c), *e);
        const SymbolicSum p = edge(c, w, w);
        partial_line(c, w, p);
        terms.push_back(times(p, d(L, name_of(c))));
      }
      doc_.prose(doc_.text("3. The derivative of ") + doc_.math(L) +
                 doc_.text(cut.size() == 1 ? " with respect to it, down the rest of the graph:"
                                           : " with respect to each of them, down the rest of the graph:"));
      for (const Slot c : cut) {
        if (chained_.count(c) != 0) {
          doc_.prose(doc_.math(d(L, name_of(c))) + doc_.text(" as above."));
        } else {
          chain(c, w);
        }
      }
      doc_.prose(doc_.text("4. The result:"));
      doc_.equation(d(L, name), join_terms(terms));
      if (const auto& f = full(w, w)) {
        if (sum_text(*f) != join_terms(terms)) doc_.equation(d(L, name), sum_text(*f));
      }
    }
    const double g = tape_.grad(w);
    doc_.prose(doc_.text("At the model's point ") + doc_.math(d(L, name)) + doc_.text(" is ") +
               doc_.math(graph::number_text(g)) + doc_.text("."));
    if (options_.lr) {
      const double a = *options_.lr, v = tape_.value(w);
      const std::string values = graph::number_text(v) + " - " + graph::number_text(a) + "·(" + graph::number_text(g) +
                                 ") = " + graph::number_text(v - a * g);
      // The rule is a formula the checker checks against one gradient-descent step at α;
      // its numbers are prose beside it.
      doc_.prose(doc_.text("5. One step of gradient descent:"));
      doc_.update(name, d(L, name));
      if (doc_.latex()) {
        doc_.prose("which gives $" + render(name, true) + "^{*} \\approx " +
                   render(graph::number_text(v - a * g), true) + "$.");
      } else {
        doc_.prose("which gives " + name + "* = " + values);
      }
    }
  }

  // The general formula of a tensor: ∂L/∂w_i = Σ_k ∂z_k/∂w_i · ∂L/∂z_k when every element's
  // layer below is elements of one tensor z; ∂L/∂W_{i,j} = x_j · ∂L/∂z_i for a dense weight.
  void general(const ExplainTarget& t) {
    const std::string L = name_of(loss_);
    std::set<std::string> bases;
    bool indexed = true;
    for (const Slot w : t.slots) {
      indexed &= stem(name_of(w)) == t.name && stem(name_of(w)) != name_of(w);
      for (const Slot c : cut_of(w)) {
        const std::string base = stem(name_of(c));
        indexed &= base != name_of(c) && c != loss_;
        bases.insert(base);
      }
    }
    if (!indexed || bases.size() != 1 || t.name.size() != 1 || bases.begin()->size() != 1) return;
    const std::string z = *bases.begin();
    const std::string w = t.name, i = z == "i" || w == "i" ? "m" : "i", k = z == "k" || w == "k" ? "n" : "k";
    doc_.heading(doc_.math(d(L, w + "_" + i)) + doc_.text(" for every element of ") + doc_.math(w));
    doc_.prose(doc_.text("Every element of ") + doc_.math(w) + doc_.text(" reaches ") + doc_.math(L) +
               doc_.text(" through the elements of ") + doc_.math(z) + doc_.text(":"));
    doc_.equation(d(L, w + "_" + i), "Σ_" + k + " " + d(z + "_" + k, w + "_" + i) + "·" + d(L, z + "_" + k));
    // A dense weight (one row of inputs): the partial of unit r is the input of column c.
    for (const TensorRecord& r : tape_.tensor_records()) {
      if (r.info->name != "dense" || r.dtype != DType::f64) continue;
      const auto args = tape_.tensor_args(r);
      if (args[1].offset != t.slots.front() || args[1].shape.size() != t.slots.size() || args[1].shape.rank() != 2 ||
          args[0].shape.size() != args[1].shape[1])
        continue;
      const std::string x = stem(name_of(args[0].offset)), y = stem(name_of(r.output));
      if (x.size() != 1 || y.size() != 1 || x == name_of(args[0].offset) || y == name_of(r.output)) continue;
      doc_.prose(doc_.math(w) + doc_.text(" is a dense layer's weight, row by unit and column by input:"));
      doc_.equation(d(L, w + "_{i,j}"), x + "_j·" + d(L, y + "_i"));
    }
  }

  const Tape& tape_;
  Slot loss_;
  ExplainOptions options_;
  Doc doc_;
  std::vector<std::vector<Slot>> consumers_;
  std::vector<char> reaches_loss_;
  std::map<Slot, std::vector<Slot>> cuts_;
  std::map<Slot, std::optional<SymbolicSum>> full_;
  std::set<Slot> chained_;
};

}  // namespace

std::string explain(const Tape& tape, Slot loss, std::span<const ExplainTarget> targets,
                    const ExplainOptions& options) {
  if (loss >= tape.slot_count()) throw ExplainError("explain: the loss is not on the tape");
  if (tape.slot_name(loss).empty()) throw ExplainError("explain: the loss has no name");
  return Explainer(tape, loss, options).run(targets);
}

}  // namespace gradpath::check
