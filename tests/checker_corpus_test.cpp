// SPDX-License-Identifier: MIT
// The wrong-derivation corpus, through the real `gradpath check --json`.
//
// Five small networks (tests/corpus/*.json), each with its correct derivations written by
// hand as structured terms (sum over paths: sign, constant, tagged factors). Mutation
// operators turn every correct derivation into wrong ones: a sign, a constant factor, a
// dropped σ′ or ReLU indicator, a transposed or neighbouring index, a missing path (also
// through an inactive ReLU unit or a pool cell that wins no window), an extra path, a pool
// gradient routed to a cell that does not win, one unit's indicator for another's. A
// mutant is skipped only when it prints exactly as the original (or as an earlier mutant):
// one that merely agrees at the model's point is kept, since those are the false passes.
//
// Asserted: every correct formula passes; every mutant fails ("fail", not "pass", "partial"
// or "error"); and, under [mistake-names], the finding's `mistake` names the operator's kind.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

// ---- formulas as structured terms ----------------------------------------------------

enum class Script { Ascii, Latex };
// Today: what check/formula.cpp reads now (σ′(z) as sigmoid(z)(1 − sigmoid(z)), the ReLU
// indicator as the chain factor dh/dz). New: Iverson brackets [z1 > 0], sigmoid'(z1),
// tanh'(z1) and \sigma'(z_1), which the checker is being taught.
enum class Notation { Today, New };
struct Style {
  Script script;
  Notation notation;
};
constexpr Style ascii_today{Script::Ascii, Notation::Today}, ascii_new{Script::Ascii, Notation::New},
    latex_today{Script::Latex, Notation::Today}, latex_new{Script::Latex, Notation::New};

enum class Kind {
  Element,   // an element of a named tensor: a weight, an input, a hidden value (W4, x2, h1)
  ActDeriv,  // σ′(z_j) or tanh′(z_j)
  ReluInd,   // the ReLU indicator [z_j > 0]
  PoolWin,   // ∂Z_q/∂R_p: 1 when cell p wins window q (implicit: written as nothing)
  Residual,  // the squared error's (y_m − t_m)
  Softmax,   // ∂L/∂s_k of softmax cross-entropy in closed form: softmax(s)_k − [k = label]
  Deriv,     // ∂L/∂u: the engine's total derivative through a named node
};

struct Factor {
  Kind kind = Kind::Element;
  // Element, Deriv: the tensor; ActDeriv, ReluInd: the pre-activation (z, O); PoolWin: the
  // pooled output (Z); Residual: the output (y); Softmax: the logits (s).
  std::string tensor;
  // ActDeriv, ReluInd: the activation's output (h, R); PoolWin: the pooled input (R);
  // Residual: the target (t).
  std::string out;
  std::string act;                           // ActDeriv: "sigmoid" or "tanh"
  int rows = 1, cols = 0;                    // the shape of `tensor` (cols 0: 1-D of `rows` elements)
  int r = 1, c = 0;                          // 1-based index into `tensor`
  int cell_r = 0, cell_c = 0, out_cols = 0;  // PoolWin: the cell of `out` (shape ? x out_cols)
  bool implicit = false;                     // PoolWin: the expanded form writes no factor
  bool follows_cell = false;                 // its index is its term's pool cell + (dr, dc)
  int dr = 0, dc = 0;
  bool weight = false;  // a parameter: W_ij for W_ji is a transposed index
  int label = 0;        // Softmax: the labelled class (1-based)

  int size() const { return cols == 0 ? rows : rows * cols; }
  int flat() const { return cols == 0 ? r : (r - 1) * cols + c; }
  void set_flat(int f) {
    if (cols == 0) {
      r = f;
    } else {
      r = (f - 1) / cols + 1, c = (f - 1) % cols + 1;
    }
  }
  int cell_flat() const { return (cell_r - 1) * out_cols + cell_c; }
  Factor follow(int row_offset, int col_offset) const {
    Factor f = *this;
    f.follows_cell = true, f.dr = row_offset, f.dc = col_offset;
    return f;
  }
};

struct Term {
  int sign = 1;
  double k = 1.0;
  std::vector<Factor> factors;
};

struct Derivation {
  Factor wrt;  // ∂L/∂wrt
  std::vector<Term> terms;
  std::vector<Style> styles;  // written in each of these
  // Correct only on the model's own branch of a max-pool (the winner's path only, as a
  // student writes it from the forward values): asserted neither way, reported.
  bool branch_only = false;
};

// ---- printing --------------------------------------------------------------------------

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

std::string element(const std::string& tensor, int flat, int size, Script script) {
  if (size == 1) return tensor;
  return script == Script::Ascii ? tensor + std::to_string(flat) : tensor + "_{" + std::to_string(flat) + "}";
}

std::string partial(const std::string& of, const std::string& wrt, Script script) {
  return script == Script::Ascii ? "d" + of + "/d" + wrt : "\\frac{\\partial " + of + "}{\\partial " + wrt + "}";
}

std::string print(const Factor& f, Style style) {
  const Script s = style.script;
  const bool today = style.notation == Notation::Today;
  std::string z = element(f.tensor, f.flat(), f.size(), s), h = element(f.out, f.flat(), f.size(), s);
  switch (f.kind) {
    case Kind::Element:
      return z;
    case Kind::ActDeriv:
      if (f.act == "tanh") {
        if (s == Script::Latex) return "(1 - " + h + "^{2})";
        return today ? "(1 - tanh(" + z + ")^2)" : "tanh'(" + z + ")";
      }
      if (s == Script::Latex) return today ? h + " \\cdot (1 - " + h + ")" : "\\sigma'(" + z + ")";
      return today ? "sigmoid(" + z + ")*(1 - sigmoid(" + z + "))" : "sigmoid'(" + z + ")";
    case Kind::ReluInd:
      return today ? partial(h, z, s) : "[" + z + " > 0]";
    case Kind::PoolWin:
      return f.implicit ? "" : partial(z, element(f.out, f.cell_flat(), 2, s), s);
    case Kind::Residual:
      return "(" + z + " - " + h + ")";
    case Kind::Softmax: {
      auto e = [&](int k) {
        const std::string sk = element(f.tensor, k, f.size(), s);
        return s == Script::Ascii ? "exp(" + sk + ")" : "\\exp(" + sk + ")";
      };
      std::string total;
      for (int k = 1; k <= f.size(); ++k) total += (k > 1 ? " + " : "") + e(k);
      const std::string p =
          s == Script::Ascii ? e(f.flat()) + "/(" + total + ")" : "\\frac{" + e(f.flat()) + "}{" + total + "}";
      return f.flat() == f.label ? "(" + p + " - 1)" : p;
    }
    case Kind::Deriv:
      return partial("L", z, s);
  }
  return "?";
}

std::string print(const Term& t, Style style) {
  std::vector<std::string> parts;
  if (t.k != 1.0) parts.push_back(number(t.k));
  for (const Factor& f : t.factors) {
    if (std::string p = print(f, style); !p.empty()) parts.push_back(std::move(p));
  }
  if (parts.empty()) return "1";
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : style.script == Script::Ascii ? "*" : " \\cdot ") + p;
  return out;
}

std::string print(const Derivation& d, Style style) {
  std::string rhs;
  for (const Term& t : d.terms) {
    const std::string body = print(t, style);
    rhs += rhs.empty() ? (t.sign < 0 ? "-" + body : body) : (t.sign < 0 ? " - " : " + ") + body;
  }
  return partial("L", print(d.wrt, style), style.script) + " = " + (rhs.empty() ? "0" : rhs);
}

// ---- the networks and their correct derivations ---------------------------------------

struct Pool {  // max_pool2d, kernel 2, stride 1, over an R of out_rows x out_cols cells
  int z_rows = 0, z_cols = 0, out_cols = 0;
  std::map<int, std::pair<int, int>> winner;  // window (flat in Z) -> the cell that wins it
  std::vector<std::pair<int, int>> cells(int q) const {
    const int qr = (q - 1) / z_cols + 1, qc = (q - 1) % z_cols + 1;
    return {{qr, qc}, {qr, qc + 1}, {qr + 1, qc}, {qr + 1, qc + 1}};
  }
};

struct Network {
  std::string name, model;  // model: under tests/corpus/
  std::vector<Derivation> derivations;
  Pool pool;
  void add(Factor wrt, std::vector<Term> terms, std::vector<Style> styles = {ascii_today, ascii_new},
           bool branch_only = false) {
    derivations.push_back({std::move(wrt), std::move(terms), std::move(styles), branch_only});
  }
};

Term T(std::vector<Factor> factors, double k = 1.0) { return {1, k, std::move(factors)}; }

// Factors of one network, from its tensors' shapes.
struct Tensors {
  std::map<std::string, std::pair<int, int>> shape;  // rows, cols (cols 0: 1-D)
  std::set<std::string> params;

  Factor indexed(Kind kind, const std::string& tensor, int r, int c) const {
    Factor f;
    f.kind = kind, f.tensor = tensor, f.r = r, f.c = c;
    std::tie(f.rows, f.cols) = shape.at(tensor);
    if (f.cols > 0 && c == 0) f.set_flat(r);  // a 2-D tensor by its flat (row-major) index
    f.weight = params.contains(tensor);
    return f;
  }
  Factor el(const std::string& t, int r = 1, int c = 0) const { return indexed(Kind::Element, t, r, c); }
  Factor d(const std::string& t, int r = 1, int c = 0) const { return indexed(Kind::Deriv, t, r, c); }
  Factor act(const std::string& fn, const std::string& z, const std::string& h, int r, int c = 0) const {
    Factor f = indexed(Kind::ActDeriv, z, r, c);
    f.out = h, f.act = fn;
    return f;
  }
  Factor relu(const std::string& z, const std::string& h, int r, int c = 0) const {
    Factor f = indexed(Kind::ReluInd, z, r, c);
    f.out = h;
    return f;
  }
  Factor res(int m = 1) const {
    Factor f = indexed(Kind::Residual, "y", m, 0);
    f.out = "t";
    return f;
  }
  Factor softmax(int k, int label) const {
    Factor f = indexed(Kind::Softmax, "s", k, 0);
    f.label = label;
    return f;
  }
  // ∂Z_q/∂R_(pr, pc): Z flat index q.
  Factor pool(int q, int pr, int pc, bool implicit) const {
    Factor f = indexed(Kind::PoolWin, "Z", 1, 0);
    f.set_flat(q);
    f.out = "R", f.cell_r = pr, f.cell_c = pc, f.out_cols = shape.at("R").second, f.implicit = implicit;
    return f;
  }
};

// (a) 3 inputs, 2 sigmoid units, 1 output, L = mse = (y − t)². z1 = 1.25, z2 = -0.25.
Network sigmoid_mlp() {
  const Tensors m{{{"x", {3, 0}},
                   {"W", {2, 3}},
                   {"b", {2, 0}},
                   {"z", {2, 0}},
                   {"h", {2, 0}},
                   {"V", {2, 0}},
                   {"c", {1, 0}},
                   {"y", {1, 0}},
                   {"t", {1, 0}}},
                  {"W", "b", "V", "c"}};
  auto sig = [&](int j) { return m.act("sigmoid", "z", "h", j); };
  Network n{"sigmoid MLP, MSE", "sigmoid_mlp.json", {}, {}};
  // The cut through the pre-activations: ∂L/∂W_jk = x_k ∂L/∂z_j.
  n.add(m.el("W", 1, 2), {T({m.el("x", 2), m.d("z", 1)})}, {ascii_today, latex_today});
  n.add(m.el("W", 2, 3), {T({m.el("x", 3), m.d("z", 2)})});
  // Through the activation: ∂L/∂z_j = σ′(z_j) ∂L/∂h_j; and ∂L/∂h_j = V_j ∂L/∂y.
  for (int j : {1, 2})
    n.add(m.el("z", j), {T({sig(j), m.d("h", j)})}, {ascii_today, ascii_new, latex_today, latex_new});
  n.add(m.el("h", 1), {T({m.el("V", 1), m.d("y")})});
  n.add(m.el("W", 1, 2), {T({m.el("x", 2), sig(1), m.d("h", 1)})});
  // Expanded in leaf values: ∂L/∂y = 2(y − t).
  n.add(m.el("W", 1, 1), {T({m.el("x", 1), sig(1), m.el("V", 1), m.res()}, 2)}, {ascii_today, ascii_new, latex_new});
  n.add(m.el("W", 2, 2), {T({m.el("x", 2), sig(2), m.el("V", 2), m.res()}, 2)});
  n.add(m.el("b", 2), {T({sig(2), m.el("V", 2), m.res()}, 2)});
  // An input reaches L through both hidden units.
  n.add(m.el("x", 1), {T({m.el("W", 1, 1), m.d("z", 1)}), T({m.el("W", 2, 1), m.d("z", 2)})},
        {ascii_today, latex_today});
  n.add(
      m.el("x", 2),
      {T({m.el("W", 1, 2), sig(1), m.el("V", 1), m.res()}, 2), T({m.el("W", 2, 2), sig(2), m.el("V", 2), m.res()}, 2)},
      {ascii_today, ascii_new, latex_new});
  n.add(m.el("V", 1), {T({m.el("h", 1), m.res()}, 2)});
  n.add(m.el("y"), {T({m.res()}, 2)});
  return n;
}

// (b) 2 inputs, 3 tanh units, 2 outputs, L = Σ_m (y_m − t_m)² / 2: every hidden unit
// reaches L along two paths, one per output.
Network tanh_mlp() {
  const Tensors m{{{"x", {2, 0}},
                   {"W", {3, 2}},
                   {"b", {3, 0}},
                   {"z", {3, 0}},
                   {"h", {3, 0}},
                   {"V", {2, 3}},
                   {"c", {2, 0}},
                   {"y", {2, 0}},
                   {"t", {2, 0}}},
                  {"W", "b", "V", "c"}};
  auto th = [&](int j) { return m.act("tanh", "z", "h", j); };
  Network n{"tanh MLP, two outputs", "tanh_mlp.json", {}, {}};
  for (int j : {1, 3}) {
    n.add(m.el("h", j), {T({m.el("V", 1, j), m.d("y", 1)}), T({m.el("V", 2, j), m.d("y", 2)})},
          {ascii_today, latex_today});
  }
  for (int j : {1, 2}) n.add(m.el("z", j), {T({th(j), m.d("h", j)})}, {ascii_today, ascii_new, latex_today});
  n.add(m.el("W", 1, 2), {T({m.el("x", 2), m.d("z", 1)})});
  n.add(m.el("W", 3, 1), {T({m.el("x", 1), m.d("z", 3)})});
  for (auto [j, k] : {std::pair{2, 1}, std::pair{1, 2}}) {
    n.add(m.el("W", j, k),
          {T({m.el("x", k), th(j), m.el("V", 1, j), m.res(1)}), T({m.el("x", k), th(j), m.el("V", 2, j), m.res(2)})},
          {ascii_today, ascii_new, latex_today});
  }
  n.add(m.el("x", 1), {T({m.el("W", 1, 1), th(1), m.d("h", 1)}), T({m.el("W", 2, 1), th(2), m.d("h", 2)}),
                       T({m.el("W", 3, 1), th(3), m.d("h", 3)})});
  n.add(m.el("b", 3), {T({th(3), m.el("V", 1, 3), m.d("y", 1)}), T({th(3), m.el("V", 2, 3), m.d("y", 2)})});
  n.add(m.el("V", 2, 1), {T({m.el("h", 1), m.res(2)})});
  n.add(m.el("y", 2), {T({m.res(2)})});
  return n;
}

// (c) 3 inputs, 3 ReLU units, 1 output, L = (y − t)² / 2. At the point z = (0.75, -0.9,
// 0.25): unit 2 is inactive, so every path through it is 0 there (and h2 = 0).
Network relu_mlp() {
  const Tensors m{{{"x", {3, 0}},
                   {"W", {3, 3}},
                   {"b", {3, 0}},
                   {"z", {3, 0}},
                   {"h", {3, 0}},
                   {"V", {3, 0}},
                   {"c", {1, 0}},
                   {"y", {1, 0}},
                   {"t", {1, 0}}},
                  {"W", "b", "V", "c"}};
  auto rl = [&](int j) { return m.relu("z", "h", j); };
  Network n{"ReLU MLP, an inactive unit", "relu_mlp.json", {}, {}};
  for (auto [j, k] : {std::pair{1, 1}, std::pair{2, 1}, std::pair{3, 2}, std::pair{2, 3}}) {
    n.add(m.el("W", j, k), {T({m.el("x", k), rl(j), m.d("h", j)})}, {ascii_today, ascii_new, latex_new});
  }
  for (int j : {1, 2}) n.add(m.el("z", j), {T({rl(j), m.d("h", j)})}, {ascii_today, ascii_new, latex_today});
  n.add(m.el("h", 2), {T({m.el("V", 2), m.d("y")})});
  n.add(m.el("W", 2, 2), {T({m.el("x", 2), m.d("z", 2)})});
  for (auto [j, k] : {std::pair{1, 2}, std::pair{2, 2}, std::pair{3, 3}}) {
    n.add(m.el("W", j, k), {T({m.el("x", k), rl(j), m.el("V", j), m.res()})});
  }
  n.add(m.el("x", 1),
        {T({m.el("W", 1, 1), rl(1), m.el("V", 1), m.res()}), T({m.el("W", 2, 1), rl(2), m.el("V", 2), m.res()}),
         T({m.el("W", 3, 1), rl(3), m.el("V", 3), m.res()})},
        {ascii_today, ascii_new, latex_new});
  n.add(m.el("x", 2),
        {T({m.el("W", 1, 2), m.d("z", 1)}), T({m.el("W", 2, 2), m.d("z", 2)}), T({m.el("W", 3, 2), m.d("z", 3)})},
        {ascii_today, latex_today});
  n.add(m.el("x", 3), {T({m.el("W", 1, 3), rl(1), m.d("h", 1)}), T({m.el("W", 2, 3), rl(2), m.d("h", 2)}),
                       T({m.el("W", 3, 3), rl(3), m.d("h", 3)})});
  for (int j : {2, 1}) n.add(m.el("b", j), {T({rl(j), m.el("V", j), m.res()})});
  for (int j : {2, 1}) n.add(m.el("V", j), {T({m.el("h", j), m.res()})});
  return n;
}

// (d) a 4x4 image, a 2x2 filter, stride 1 -> O (3x3) -> ReLU -> R -> 2x2 max-pool, stride
// 1 -> Z (2x2) -> dense -> y, L = (y − t)² / 2. At the point O = (0.01, 1.41, 0.45; -0.98,
// -0.16, 0.38; 0.71, -1.21, 0.93): O4, O5, O8 are inactive; O2 wins Z1 and Z2, O7 wins Z3,
// O9 wins Z4; O1, O3, O6 are active and win no window.
Network conv_pool() {
  const Tensors m{{{"a", {4, 4}},
                   {"w", {2, 2}},
                   {"O", {3, 3}},
                   {"R", {3, 3}},
                   {"Z", {2, 2}},
                   {"v", {4, 0}},
                   {"b", {1, 0}},
                   {"y", {1, 0}},
                   {"t", {1, 0}}},
                  {"w", "v", "b"}};
  Network n{"conv, ReLU, max-pool, dense", "conv_pool.json", {}, {}};
  n.pool = {2, 2, 3, {{1, {1, 2}}, {2, {1, 2}}, {3, {3, 1}}, {4, {3, 3}}}};
  // The cut through the conv outputs: ∂L/∂w_kl = Σ_p a_(p + (k-1, l-1)) ∂L/∂O_p.
  for (auto [k, l] : {std::pair{1, 1}, std::pair{2, 2}}) {
    std::vector<Term> terms;
    for (int r = 1; r <= 3; ++r) {
      for (int c = 1; c <= 3; ++c) terms.push_back(T({m.el("a", r + k - 1, c + l - 1), m.d("O", r, c)}));
    }
    n.add(m.el("w", k, l), terms, k == 1 ? std::vector{ascii_today, latex_today} : std::vector{ascii_today});
  }
  // ReLU: ∂L/∂O_p = [O_p > 0] ∂L/∂R_p, for a winner, an inactive cell, an active non-winner.
  for (auto [r, c] : {std::pair{1, 2}, std::pair{2, 2}, std::pair{1, 3}}) {
    n.add(m.el("O", r, c), {T({m.relu("O", "R", r, c), m.d("R", r, c)})}, {ascii_today, ascii_new, latex_new});
  }
  // The pool: ∂L/∂R_p = Σ over the windows q holding p of ∂Z_q/∂R_p ∂L/∂Z_q.
  for (auto [r, c] : {std::pair{1, 2}, std::pair{2, 2}, std::pair{2, 3}}) {
    std::vector<Term> terms;
    for (int q = 1; q <= 4; ++q) {
      for (auto cell : n.pool.cells(q)) {
        if (cell == std::pair{r, c}) terms.push_back(T({m.pool(q, r, c, false), m.d("Z", q)}));
      }
    }
    n.add(m.el("R", r, c), terms, {ascii_today, latex_today});
  }
  for (int q : {1, 4}) n.add(m.el("Z", q), {T({m.el("v", q), m.d("y")})});
  n.add(m.el("y"), {T({m.res()})});
  // Every path through the pool, its factor written: Σ_q Σ_{p in q} a [O_p > 0] ∂Z_q/∂R_p ∂L/∂Z_q,
  // through ∂L/∂Z_q for w4, expanded to v_q (y − t) for w1.
  for (const bool expanded : {false, true}) {
    const int k = expanded ? 1 : 2, l = k;
    std::vector<Term> terms;
    for (int q = 1; q <= 4; ++q) {
      for (auto [r, c] : n.pool.cells(q)) {
        std::vector<Factor> f = {m.el("a", r + k - 1, c + l - 1).follow(k - 1, l - 1),
                                 m.relu("O", "R", r, c).follow(0, 0), m.pool(q, r, c, false)};
        if (expanded) {
          f.push_back(m.el("v", q)), f.push_back(m.res());
        } else {
          f.push_back(m.d("Z", q));
        }
        terms.push_back(T(f));
      }
    }
    n.add(m.el("w", k, l), terms);
  }
  // The winner's path only, as a student expands it from the forward values: right on the
  // model's branch of each pool window, wrong where another cell wins.
  for (auto [k, l] : {std::pair{1, 1}, std::pair{1, 2}, std::pair{2, 1}}) {
    std::vector<Term> terms;
    for (int q = 1; q <= 4; ++q) {
      const auto [r, c] = n.pool.winner.at(q);
      terms.push_back(T({m.el("a", r + k - 1, c + l - 1).follow(k - 1, l - 1), m.relu("O", "R", r, c).follow(0, 0),
                         m.pool(q, r, c, true), m.el("v", q), m.res()}));
    }
    n.add(m.el("w", k, l), terms,
          k == 1 && l == 1 ? std::vector{ascii_today, ascii_new, latex_new} : std::vector{ascii_today, ascii_new},
          true);
  }
  // Inputs: every (tap, output) pair that reads the pixel.
  n.add(m.el("a", 2, 2), {T({m.el("w", 1, 1), m.d("O", 2, 2)}), T({m.el("w", 1, 2), m.d("O", 2, 1)}),
                          T({m.el("w", 2, 1), m.d("O", 1, 2)}), T({m.el("w", 2, 2), m.d("O", 1, 1)})});
  n.add(m.el("a", 3, 3),
        {T({m.el("w", 1, 1), m.d("O", 3, 3)}), T({m.el("w", 1, 2), m.d("O", 3, 2)}),
         T({m.el("w", 2, 1), m.d("O", 2, 3)}), T({m.el("w", 2, 2), m.d("O", 2, 2)})},
        {ascii_today, latex_today});
  n.add(m.el("v", 1), {T({m.el("Z", 1), m.res()})});
  n.add(m.el("b"), {T({m.res()})});
  return n;
}

// (e) 3 inputs, dense to 3 logits s, softmax cross-entropy with label 1 (0-based): class 2.
Network softmax_ce() {
  const Tensors m{{{"x", {3, 0}}, {"W", {3, 3}}, {"b", {3, 0}}, {"s", {3, 0}}}, {"W", "b"}};
  constexpr int label = 2;
  auto sm = [&](int k) { return m.softmax(k, label); };
  Network n{"softmax cross-entropy", "softmax_ce.json", {}, {}};
  for (auto [k, j] : {std::pair{1, 1}, std::pair{2, 3}, std::pair{3, 2}}) {
    n.add(m.el("W", k, j), {T({m.el("x", j), m.d("s", k)})}, {ascii_today, latex_today});
  }
  for (auto [k, j] : {std::pair{2, 1}, std::pair{1, 3}, std::pair{3, 3}}) {
    n.add(m.el("W", k, j), {T({m.el("x", j), sm(k)})});
  }
  for (int j : {1, 2}) {
    n.add(m.el("x", j),
          {T({m.el("W", 1, j), m.d("s", 1)}), T({m.el("W", 2, j), m.d("s", 2)}), T({m.el("W", 3, j), m.d("s", 3)})},
          {ascii_today, latex_today});
  }
  n.add(m.el("x", 3), {T({m.el("W", 1, 3), sm(1)}), T({m.el("W", 2, 3), sm(2)}), T({m.el("W", 3, 3), sm(3)})});
  for (int k : {2, 3}) n.add(m.el("b", k), {T({sm(k)})}, {ascii_today, latex_today});
  for (int k : {1, 2}) n.add(m.el("s", k), {T({sm(k)})});
  return n;
}

// ---- mutation operators: one function each ----------------------------------------------

struct Mutant {
  Derivation d;
  std::string change;  // what was changed, e.g. "term 2: W4 -> W2"
};
using Mutants = std::vector<Mutant>;

bool is_activation(const Factor& f) { return f.kind == Kind::ActDeriv || f.kind == Kind::ReluInd; }

// The factors that pick a path: moving one gives the term of another path.
bool picks_path(const Factor& f) {
  return f.kind == Kind::Deriv || is_activation(f) || f.kind == Kind::Residual || f.kind == Kind::Softmax;
}

std::string where(std::size_t term) { return "term " + std::to_string(term + 1) + ": "; }
std::string shown(const Factor& f) {
  Factor written = f;
  written.implicit = false;
  return print(written, ascii_new);
}

// The flat indices next to f's: f − 1 and f + 1 within the tensor.
std::vector<int> neighbours(const Factor& f) {
  std::vector<int> out;
  for (int g : {f.flat() - 1, f.flat() + 1}) {
    if (g >= 1 && g <= f.size()) out.push_back(g);
  }
  return out;
}

Mutants flip_sign(const Derivation& d, const Network&) {
  Mutants out;
  for (std::size_t i = 0; i < d.terms.size(); ++i) {
    Derivation m = d;
    m.terms[i].sign = -m.terms[i].sign;
    out.push_back({m, where(i) + "sign flipped"});
  }
  return out;
}

Mutants scale(const Derivation& d, double by) {
  Mutants out;
  for (std::size_t i = 0; i < d.terms.size(); ++i) {
    Derivation m = d;
    m.terms[i].k *= by;
    out.push_back({m, where(i) + "times " + number(by)});
  }
  return out;
}
Mutants times_two(const Derivation& d, const Network&) { return scale(d, 2.0); }
Mutants times_half(const Derivation& d, const Network&) { return scale(d, 0.5); }

// Max-pool takes the first largest cell of a window. A ReLU that is off gives 0, which never
// beats the cell before it, so where the term routes a window to a cell that is not the
// window's first, [O_p > 0]·∂Z_q/∂R_p is ∂Z_q/∂R_p as a function: dropping that indicator
// changes nothing, and the checker is right to pass it.
bool implied_by_pool_win(const Term& t, const Factor& indicator, const Network& n) {
  if (indicator.kind != Kind::ReluInd) return false;
  return std::any_of(t.factors.begin(), t.factors.end(), [&](const Factor& g) {
    return g.kind == Kind::PoolWin && std::pair{g.cell_r, g.cell_c} == std::pair{indicator.r, indicator.c} &&
           n.pool.cells(g.flat()).front() != std::pair{g.cell_r, g.cell_c};
  });
}

Mutants drop_activation_derivative(const Derivation& d, const Network& n) {
  Mutants out;
  for (std::size_t i = 0; i < d.terms.size(); ++i) {
    for (std::size_t j = 0; j < d.terms[i].factors.size(); ++j) {
      if (!is_activation(d.terms[i].factors[j]) || implied_by_pool_win(d.terms[i], d.terms[i].factors[j], n)) continue;
      Derivation m = d;
      m.terms[i].factors.erase(m.terms[i].factors.begin() + static_cast<std::ptrdiff_t>(j));
      out.push_back({m, where(i) + "dropped " + shown(d.terms[i].factors[j])});
    }
  }
  return out;
}

Mutants transpose_index(const Derivation& d, const Network&) {
  Mutants out;
  for (std::size_t i = 0; i < d.terms.size(); ++i) {
    for (std::size_t j = 0; j < d.terms[i].factors.size(); ++j) {
      const Factor& f = d.terms[i].factors[j];
      // W_rc -> W_cr: only a 2-D weight, only where W_cr is another element.
      if (f.kind != Kind::Element || !f.weight || f.cols == 0 || f.r == f.c || f.c > f.rows || f.r > f.cols) continue;
      Derivation m = d;
      std::swap(m.terms[i].factors[j].r, m.terms[i].factors[j].c);
      out.push_back({m, where(i) + shown(f) + " -> " + shown(m.terms[i].factors[j])});
    }
  }
  return out;
}

Mutants neighbouring_index(const Derivation& d, const Network&) {
  Mutants out;
  for (std::size_t i = 0; i < d.terms.size(); ++i) {
    for (std::size_t j = 0; j < d.terms[i].factors.size(); ++j) {
      const Factor& f = d.terms[i].factors[j];
      if (f.kind != Kind::Element && f.kind != Kind::Deriv) continue;
      for (int g : neighbours(f)) {
        Derivation m = d;
        m.terms[i].factors[j].set_flat(g);
        out.push_back({m, where(i) + shown(f) + " -> " + shown(m.terms[i].factors[j])});
      }
    }
  }
  return out;
}

// A missing path: each term left out in turn (the only term: the formula says 0).
Mutants drop_term(const Derivation& d, const Network&) {
  Mutants out;
  for (std::size_t i = 0; i < d.terms.size(); ++i) {
    Derivation m = d;
    m.terms.erase(m.terms.begin() + static_cast<std::ptrdiff_t>(i));
    out.push_back({m, where(i) + "left out (" + print(d.terms[i], ascii_new) + ")"});
  }
  return out;
}

// An extra path: a copy of a term with one path-picking factor (∂L/∂u, σ′, the ReLU
// indicator, the loss factor) moved to a neighbouring unit, added at the end. A copy that
// prints as an existing term would double it (the constant-factor operator's job): skipped.
Mutants extra_term(const Derivation& d, const Network&) {
  Mutants out;
  std::set<std::string> existing;
  for (const Term& t : d.terms) existing.insert(print(t, ascii_new));
  for (std::size_t i = 0; i < d.terms.size(); ++i) {
    for (std::size_t j = 0; j < d.terms[i].factors.size(); ++j) {
      const Factor& f = d.terms[i].factors[j];
      if (!picks_path(f)) continue;
      for (int g : neighbours(f)) {
        Term extra = d.terms[i];
        extra.factors[j].set_flat(g);
        if (existing.contains(print(extra, ascii_new))) continue;
        Derivation m = d;
        m.terms.push_back(extra);
        out.push_back({m, "extra term " + print(extra, ascii_new) + " (term " + std::to_string(i + 1) + " with " +
                              shown(f) + " -> " + shown(extra.factors[j]) + ")"});
      }
    }
  }
  return out;
}

// A max-pool gradient sent to a cell of the same window that does not win it: the pool
// factor, and every factor that follows the cell (the pixel, the ReLU indicator), move.
Mutants route_pool_to_loser(const Derivation& d, const Network& n) {
  Mutants out;
  for (std::size_t i = 0; i < d.terms.size(); ++i) {
    for (const Factor& f : d.terms[i].factors) {
      if (f.kind != Kind::PoolWin) continue;
      const int q = f.flat();
      for (auto [r, c] : n.pool.cells(q)) {
        if (std::pair{r, c} == std::pair{f.cell_r, f.cell_c} || std::pair{r, c} == n.pool.winner.at(q)) continue;
        Derivation m = d;
        for (Factor& g : m.terms[i].factors) {
          if (g.kind == Kind::PoolWin) g.cell_r = r, g.cell_c = c;
          if (g.follows_cell) g.r = r + g.dr, g.c = c + g.dc;
        }
        out.push_back({m, where(i) + "routed window Z" + std::to_string(q) + " from R" + std::to_string(f.cell_flat()) +
                              " to R" + std::to_string((r - 1) * f.out_cols + c)});
      }
    }
  }
  return out;
}

// One unit's σ′ or ReLU indicator written for another's: every other unit of a 1-D layer,
// the four neighbours in a 2-D one.
Mutants swap_indicator(const Derivation& d, const Network&) {
  Mutants out;
  for (std::size_t i = 0; i < d.terms.size(); ++i) {
    for (std::size_t j = 0; j < d.terms[i].factors.size(); ++j) {
      const Factor& f = d.terms[i].factors[j];
      if (!is_activation(f)) continue;
      std::vector<std::pair<int, int>> others;
      if (f.cols == 0) {
        for (int u = 1; u <= f.rows; ++u) {
          if (u != f.r) others.emplace_back(u, 0);
        }
      } else {
        for (auto [dr, dc] : {std::pair{-1, 0}, std::pair{1, 0}, std::pair{0, -1}, std::pair{0, 1}}) {
          if (f.r + dr >= 1 && f.r + dr <= f.rows && f.c + dc >= 1 && f.c + dc <= f.cols) {
            others.emplace_back(f.r + dr, f.c + dc);
          }
        }
      }
      for (auto [r, c] : others) {
        Derivation m = d;
        m.terms[i].factors[j].r = r, m.terms[i].factors[j].c = c;
        out.push_back({m, where(i) + shown(f) + " -> " + shown(m.terms[i].factors[j])});
      }
    }
  }
  return out;
}

struct Operator {
  std::string name;
  std::string mistake;  // the kind the checker should name; "" when the issue lists none
  Mutants (*apply)(const Derivation&, const Network&);
};

const std::vector<Operator>& operators() {
  static const std::vector<Operator> ops = {
      {"flip sign", "sign", flip_sign},
      {"times 2", "constant factor", times_two},
      {"times 1/2", "constant factor", times_half},
      {"drop activation derivative", "missing activation derivative", drop_activation_derivative},
      {"transpose index", "transposed index", transpose_index},
      {"neighbouring index", "wrong index", neighbouring_index},
      {"drop term", "missing path", drop_term},
      {"extra term", "extra term", extra_term},
      {"route pool to a non-winner", "", route_pool_to_loser},
      {"swap indicator", "wrong index", swap_indicator},
  };
  return ops;
}

// The mistake kinds whose naming is asserted ([mistake-names]); the others are reported.
const std::set<std::string> asserted_mistakes = {"sign", "constant factor", "missing activation derivative",
                                                 "missing path", "extra term"};

// ---- the shared runner --------------------------------------------------------------------

struct Entry {
  std::string network;
  std::string formula;  // as written in the file (without $$)
  Script script = Script::Ascii;
  bool correct = false;
  bool branch_only = false;                   // a correct formula right only on the model's pool branch
  bool new_notation = false;                  // prints differently in today's notation
  std::string op, mistake, change, original;  // mutants: the operator, its kind, what changed, the source
  nlohmann::json report;                      // the checker's report, null when none came back
  std::string file;                           // the formula file it was checked from
  std::string verdict() const { return report.is_object() ? report.value("verdict", "?") : "no report"; }
  bool named() const {
    if (!report.is_object() || !report.contains("findings")) return false;
    for (const auto& f : report["findings"]) {
      if (f.is_object() && f.value("mistake", "") == mistake) return true;
    }
    return false;
  }
};

struct NetworkRun {
  std::string name;
  std::vector<Entry> entries;
  std::string problem;  // when the command's output could not be read
};

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("gradpath_corpus_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

std::pair<int, std::string> run_command(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string out;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Writes the batch (entries of one script) to a file, one formula a line, runs
// `gradpath check MODEL FILE --json` and attaches each report to its entry by line.
std::string check_batch(const std::string& model, const std::vector<Entry*>& batch, Script script,
                        const std::string& file) {
  if (batch.empty()) return "";
  const auto path = temp_dir() / file;
  {
    std::ofstream out(path);
    for (Entry* e : batch) {
      out << (script == Script::Latex ? "$$ " + e->formula + " $$" : e->formula) << "\n";
      e->file = path.string();
    }
  }
  std::string command = std::string(GRADPATH_COMMAND) + " check '" + model + "' '" + path.string() + "' --json";
  if (const char* redraws = std::getenv("GRADPATH_CORPUS_REDRAWS")) command += " --redraws " + std::string(redraws);
  const auto [status, out] = run_command(command + " 2>/dev/null");
  nlohmann::json reports;
  try {
    reports = nlohmann::json::parse(out);
  } catch (const nlohmann::json::exception& e) {
    return command + " (exit " + std::to_string(status) + ") printed no JSON: " + e.what() + "\n" + out.substr(0, 2000);
  }
  if (!reports.is_array()) return command + ": not a JSON array of reports";
  for (const auto& r : reports) {
    const int line = r.value("line", 0);
    if (line >= 1 && line <= static_cast<int>(batch.size())) batch[line - 1]->report = r;
  }
  return "";
}

// The network's correct formulas, then every mutant of each in each of its styles. A
// formula already in the corpus (a mutant that prints as a correct formula or as an earlier
// mutant) is not added again.
std::vector<Entry> generate(const Network& n) {
  std::vector<Entry> entries;
  std::set<std::string> seen[2];  // formulas already in the corpus, per script
  auto add = [&](Entry e) {
    if (seen[static_cast<int>(e.script)].insert(e.formula).second) entries.push_back(std::move(e));
  };
  for (const Derivation& d : n.derivations) {
    for (const Style style : d.styles) {
      const std::string original = print(d, style);
      const bool new_notation = original != print(d, {style.script, Notation::Today});
      add({n.name, original, style.script, true, d.branch_only, new_notation, "", "", "", "", nullptr, ""});
    }
  }
  for (const Derivation& d : n.derivations) {
    for (const Style style : d.styles) {
      const std::string original = print(d, style);
      const bool new_notation = original != print(d, {style.script, Notation::Today});
      for (const Operator& op : operators()) {
        for (const Mutant& m : op.apply(d, n)) {
          const std::string text = print(m.d, style);
          if (text == original) continue;  // provably the same formula
          add({n.name, text, style.script, false, false, new_notation, op.name, op.mistake, m.change, original, nullptr,
               ""});
        }
      }
    }
  }
  return entries;
}

NetworkRun run_network(const Network& n) {
  NetworkRun run{n.name, generate(n), ""};
  const std::string model = std::string(GRADPATH_SOURCE_DIR) + "/tests/corpus/" + n.model;
  const std::string stem = n.model.substr(0, n.model.find('.'));
  for (const bool correct : {true, false}) {
    for (const Script script : {Script::Ascii, Script::Latex}) {
      std::vector<Entry*> batch;
      for (Entry& e : run.entries) {
        if (e.correct == correct && e.script == script) batch.push_back(&e);
      }
      const std::string file = stem + (correct ? "_correct" : "_mutants") + (script == Script::Ascii ? ".txt" : ".tex");
      if (std::string problem = check_batch(model, batch, script, file); !problem.empty())
        run.problem += problem + "\n";
    }
  }
  return run;
}

std::vector<Network> networks() { return {sigmoid_mlp(), tanh_mlp(), relu_mlp(), conv_pool(), softmax_ce()}; }

// Every network's corpus, checked once per test program.
const std::vector<NetworkRun>& corpus() {
  static const std::vector<NetworkRun> runs = [] {
    std::vector<NetworkRun> out;
    for (const Network& n : networks()) out.push_back(run_network(n));
    // GRADPATH_CORPUS_DUMP=FILE: every entry and its report as JSON, to study a run.
    if (const char* dump = std::getenv("GRADPATH_CORPUS_DUMP")) {
      nlohmann::json all = nlohmann::json::array();
      for (const NetworkRun& run : out) {
        for (const Entry& e : run.entries) {
          all.push_back({{"network", e.network},
                         {"formula", e.formula},
                         {"correct", e.correct},
                         {"branch_only", e.branch_only},
                         {"new_notation", e.new_notation},
                         {"operator", e.op},
                         {"mistake", e.mistake},
                         {"change", e.change},
                         {"original", e.original},
                         {"verdict", e.verdict()},
                         {"report", e.report}});
        }
      }
      std::ofstream(dump) << all.dump(1) << "\n";
    }
    // GRADPATH_CORPUS_KEEP: keep the formula files the command read (their path is in INFO).
    if (std::getenv("GRADPATH_CORPUS_KEEP") == nullptr) std::filesystem::remove_all(temp_dir());
    return out;
  }();
  return runs;
}

std::string describe(const Entry& e) {
  std::string s = e.formula;
  if (!e.correct) s += "\n  operator: " + e.op + " (" + e.change + ")\n  from: " + e.original;
  return s + "\n  report: " + (e.report.is_null() ? std::string("none") : e.report.dump()) + "\n  checked from " +
         e.file + " (kept with GRADPATH_CORPUS_KEEP=1)";
}

}  // namespace

TEST_CASE("corpus: the generator makes the wrong formulas the issue names", "[corpus]") {
  // Each of these agrees with the engine at the model's point (or only on its branch):
  // the corpus must hold them, whatever the operators become.
  struct Want {
    std::string network, op, formula;
  };
  const std::vector<Want> wanted = {
      {"relu_mlp.json", "drop term",  // the path through the inactive unit 2
       "dL/dx1 = W1*dh1/dz1*V1*(y - t) + W7*dh3/dz3*V3*(y - t)"},
      {"relu_mlp.json", "drop activation derivative", "dL/dW1 = x1*dL/dh1"},  // [z1 > 0], z1 active
      {"relu_mlp.json", "extra term",  // a path through the inactive unit that does not exist
       "dL/dW2 = x2*dh1/dz1*V1*(y - t) + x2*dh2/dz2*V1*(y - t)"},
      {"relu_mlp.json", "drop term", "dL/dW4 = 0"},  // the only path, through the inactive unit
      {"conv_pool.json", "drop term",                // O3 is active and wins no window
       "dL/dw1 = a1*dL/dO1 + a2*dL/dO2 + a5*dL/dO4 + a6*dL/dO5 + a7*dL/dO6 + a9*dL/dO7 + a10*dL/dO8 + "
       "a11*dL/dO9"},
      {"conv_pool.json", "drop term", "dL/da6 = w1*dL/dO5 + w3*dL/dO2 + w4*dL/dO1"},  // O4 is inactive
      {"conv_pool.json", "route pool to a non-winner",  // window Z1 sent to O1 instead of O2
       "dL/dw1 = a1*dR1/dO1*v1*(y - t) + a2*dR2/dO2*v2*(y - t) + a9*dR7/dO7*v3*(y - t) + a11*dR9/dO9*v4*(y - t)"},
      {"sigmoid_mlp.json", "transpose index", "dL/dx1 = W1*dL/dz1 + W2*dL/dz2"},  // W_21 written W_12
      {"sigmoid_mlp.json", "drop activation derivative", "dL/dz1 = dL/dh1"},
      {"tanh_mlp.json", "drop term", "dL/dh1 = V1*dL/dy1"},  // the path through output 2
      {"softmax_ce.json", "times 2", "dL/dW1 = 2*x1*dL/ds1"},
  };
  std::map<std::string, std::vector<Entry>> by_model;
  for (const Network& n : networks()) by_model[n.model] = generate(n);
  for (const Want& w : wanted) {
    INFO(w.network << ", " << w.op << ": " << w.formula);
    const auto& entries = by_model.at(w.network);
    CHECK(std::any_of(entries.begin(), entries.end(),
                      [&](const Entry& e) { return !e.correct && e.op == w.op && e.formula == w.formula; }));
  }
  for (const auto& [model, entries] : by_model) {
    INFO(model);
    const auto correct = std::count_if(entries.begin(), entries.end(), [](const Entry& e) { return e.correct; });
    CHECK(correct >= 15);
    CHECK(entries.size() - static_cast<std::size_t>(correct) >= 200);
  }
}

TEST_CASE("corpus: the checker reads every network's output", "[corpus]") {
  for (const NetworkRun& run : corpus()) {
    INFO(run.name);
    CHECK(run.problem.empty());
    for (const Entry& e : run.entries) {
      INFO(describe(e));
      CHECK(e.report.is_object());
    }
  }
}

TEST_CASE("corpus: every correct derivation passes", "[corpus]") {
  std::ostringstream unread, branch;
  for (const NetworkRun& run : corpus()) {
    for (const Entry& e : run.entries) {
      if (!e.correct) continue;
      if (e.verdict() == "error") unread << "  [" << run.name << "] " << e.formula << "\n";
      if (e.branch_only) {
        branch << "  [" << run.name << "] " << e.verdict() << ": " << e.formula << "\n";
        continue;
      }
      INFO("network: " << run.name);
      INFO(describe(e));
      CHECK(e.verdict() == "pass");
    }
  }
  if (!unread.str().empty()) WARN("correct formulas the checker cannot read (new notation?):\n" << unread.str());
  WARN("winner's-path-only formulas (right on the model's pool branch only; not asserted):\n" << branch.str());
}

// No false pass: a wrong formula is never "pass" nor "partial". The summary (corpus size per
// network and per operator, the false passes) is printed here.
TEST_CASE("corpus: no wrong derivation passes", "[corpus]") {
  std::ostringstream summary, false_passes;
  std::size_t total = 0, total_false = 0;
  std::map<std::string, std::size_t> per_op, per_op_false;
  for (const NetworkRun& run : corpus()) {
    std::size_t correct = 0, mutants = 0, passes = 0, partials = 0, errors = 0;
    for (const Entry& e : run.entries) {
      if (e.correct) {
        ++correct;
        continue;
      }
      ++mutants, ++per_op[e.op];
      const std::string v = e.verdict();
      if (v == "pass") {
        ++passes, ++per_op_false[e.op];
        false_passes << "  [" << run.name << "] " << e.op << " (" << e.change << "): " << e.formula << "\n";
      }
      partials += v == "partial", errors += v == "error";
      INFO("network: " << run.name);
      INFO(describe(e));
      CHECK(v != "pass");
      CHECK(v != "partial");
    }
    total += mutants, total_false += passes;
    summary << "  " << run.name << ": " << correct << " correct, " << mutants << " mutants; " << passes
            << " pass (false passes), " << partials << " partial, " << errors << " error (not read)\n";
  }
  std::ostringstream ops;
  for (const auto& [op, count] : per_op) {
    ops << "  " << op << ": " << count << " mutants, " << per_op_false[op] << " pass\n";
  }
  WARN("wrong-derivation corpus: " << total << " mutants, " << total_false << " false passes\n"
                                   << summary.str() << "per operator:\n"
                                   << ops.str());
  if (total_false > 0) WARN("false passes:\n" << false_passes.str());
}

// Every wrong formula is read and fails: "error" means the checker did not read it (today:
// the new notation, [z1 > 0] and sigmoid'(z1)).
TEST_CASE("corpus: every wrong derivation is read and fails", "[corpus]") {
  for (const NetworkRun& run : corpus()) {
    for (const Entry& e : run.entries) {
      if (e.correct) continue;
      INFO("network: " << run.name);
      INFO(describe(e));
      CHECK(e.verdict() == "fail");
    }
  }
}

// Not every mutant has one name (a sign flip inside a sum over paths can also read as
// another path's share), so the share named is asserted to stay above a floor per
// operator, and the unnamed ones are listed for reading.
TEST_CASE("corpus: the mistake is named", "[corpus][mistake-names]") {
  constexpr double floor = 0.6;
  std::map<std::string, std::pair<std::size_t, std::size_t>> named;  // operator: named, mutants
  std::ostringstream unnamed;
  for (const NetworkRun& run : corpus()) {
    for (const Entry& e : run.entries) {
      if (e.correct || e.mistake.empty()) continue;
      auto& [hits, count] = named[e.op];
      ++count, hits += e.named();
      if (asserted_mistakes.contains(e.mistake) && !e.named())
        unnamed << "  [" << run.name << "] " << e.op << ": " << e.formula << "\n";
    }
  }
  std::ostringstream share;
  for (const Operator& op : operators()) {
    if (op.mistake.empty()) continue;
    const auto [hits, count] = named[op.name];
    share << "  " << op.name << " -> \"" << op.mistake << "\": " << hits << " of " << count << " named"
          << (asserted_mistakes.contains(op.mistake) ? "" : " (not asserted)") << "\n";
    if (!asserted_mistakes.contains(op.mistake) || count == 0) continue;
    INFO(op.name << ": " << hits << " of " << count << " named");
    CHECK(static_cast<double>(hits) >= floor * static_cast<double>(count));
  }
  WARN("mistake named, per operator:\n" << share.str());
  if (std::getenv("GRADPATH_CORPUS_UNNAMED") != nullptr) WARN("not named:\n" << unnamed.str());
}
