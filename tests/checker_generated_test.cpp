// SPDX-License-Identifier: MIT
// A corpus generated from the graph: for every parameter, the true ∂L/∂w is read off the
// graph as a sum over paths of symbolic edge partials (graph::symbolic_derivative), written
// as a formula, and mutated term by term. The true formula must pass and every mutant must
// fail, so the corpus grows with every op that gets a symbolic partial.
#include <catch2/catch.hpp>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "autodiff/tensor.hpp"
#include "check/checker.hpp"
#include "graph/symbolic.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/pool.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;

namespace {

std::vector<double> uniform_values(std::mt19937& rng, std::size_t n) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = u(rng);
  return v;
}

// The loss of both networks: r = y - t, L = r·r/2.
void squared_error(Var y, Var t) {
  const Var r = (y - t).named("r");
  (r * r * 0.5).named("L");
}

// x (2) -> z = x W + b (W 2x3) -> h = (relu, sigmoid, tanh)(z) -> m = max(h1, h3) ->
// y = m v1 + h2 v2 + c. The point puts unit 1 off. (max(h1, h2) would make [z1 > 0] a
// consequence of h1 ≥ h2, since σ > 0: dropping it would be no mistake.)
void mixed_mlp(Tape& tape) {
  std::mt19937 rng(11);
  const TensorVar x = tape.input(std::vector<double>{0.8, -0.4}, Shape{2}, "x");
  const TensorVar W = tape.param(uniform_values(rng, 6), Shape{2, 3}, "W");
  const TensorVar b = tape.param(std::vector<double>{-0.9, 0.2, 0.1}, Shape{3}, "b");
  const TensorVar v = tape.param(uniform_values(rng, 3), Shape{3}, "v");
  const Var c = tape.param(0.05, "c"), t = tape.input(0.5, "t");
  std::vector<Var> h;
  for (std::size_t j = 0; j < 3; ++j) {
    const Var z = sum({x[0] * W[j], x[1] * W[3 + j], b[j]}).named("z" + std::to_string(j + 1));
    Var a = j == 0 ? relu(z) : j == 1 ? sigmoid(z) : tanh(z);
    h.push_back(a.named("h" + std::to_string(j + 1)));
  }
  const Var m = max(h[0], h[2]).named("m");
  squared_error(sum({m * v[0], h[1] * v[1], c}).named("y"), t);
}

// The seed note's network from scalars with a scalar dense layer: a (5x5), w (3x3),
// stride-2 convolution to z1..z4, y = Σ v_k z_k + b.
void seed_scalar(Tape& tape) {
  std::mt19937 rng(5);
  const TensorVar a = tape.input(uniform_values(rng, 25), Shape{5, 5}, "a");
  const TensorVar w = tape.param(uniform_values(rng, 9), Shape{3, 3}, "w");
  const TensorVar v = tape.param(uniform_values(rng, 4), Shape{4}, "v");
  const Var bias = tape.param(0.1, "b"), t = tape.input(1.0, "t");
  std::vector<Var> terms;
  for (int k = 0; k < 4; ++k) {
    std::vector<Var> products;
    for (int i = 0; i < 9; ++i) {
      const int row = 2 * (k / 2) + i / 3, col = 2 * (k % 2) + i % 3;
      products.push_back(w[i] * a[row * 5 + col]);
    }
    terms.push_back(sum(products).named("z" + std::to_string(k + 1)) * v[k]);
  }
  terms.push_back(bias);
  squared_error(sum(terms).named("y"), t);
}

// Tensor ops: x (1x3) -> dense (W 4x3, b) -> relu -> dense (V 2x4, c) -> tanh -> y (1x2),
// L = Σ (y - t)^2 / 2. Unit 2 of the first layer is off at the point.
void tensor_mlp(Tape& tape) {
  std::mt19937 rng(13);
  const TensorVar x = tape.input(std::vector<double>{0.7, -0.2, 0.4}, Shape{1, 3}, "x");
  const TensorVar W = tape.param(uniform_values(rng, 12), Shape{4, 3}, "W");
  const TensorVar b = tape.param(std::vector<double>{0.1, -2.0, 0.2, 0.0}, Shape{4}, "b");
  const TensorVar V = tape.param(uniform_values(rng, 8), Shape{2, 4}, "V");
  const TensorVar c = tape.param(std::vector<double>{0.05, -0.05}, Shape{2}, "c");
  const TensorVar t = tape.input(std::vector<double>{0.3, -0.1}, Shape{1, 2}, "t");
  const TensorVar h = ops::relu(ops::dense(x, W, b, "z"), "h");
  const TensorVar y = ops::tanh(ops::dense(h, V, c, "u"), "y");
  ops::half_squared_error(y, t, "L");
}

// Tensor ops: a 5x5 image -> conv2d (two 2x2 filters w, bias) -> relu -> 2x2 average
// pool -> dense (v) -> y, L = (y - t)^2 / 2.
void tensor_conv(Tape& tape) {
  std::mt19937 rng(17);
  const TensorVar a = tape.input(uniform_values(rng, 25), Shape{1, 1, 5, 5}, "a");
  const TensorVar w = tape.param(uniform_values(rng, 8), Shape{2, 1, 2, 2}, "w");
  const TensorVar bias = tape.param(std::vector<double>{0.1, -0.1}, Shape{2}, "k");
  const TensorVar v = tape.param(uniform_values(rng, 8), Shape{1, 8}, "v");
  const TensorVar t = tape.input(std::vector<double>{0.5}, Shape{1}, "t");
  const TensorVar R = ops::relu(ops::conv2d(a, w, bias, {}, "O"), "R");
  const TensorVar Z = ops::avg_pool2d(R, {.kernel = 2}, "Z");
  const TensorVar y = ops::dense(ops::flatten(Z), v, "y");
  ops::half_squared_error(ops::reshape(y, Shape{1}), t, "L");
}

bool is_activation(const std::string& f) { return f.starts_with("σ′") || f.starts_with("tanh′") || f.starts_with("["); }

// A factor that is a name with a number (x1, W4, a13), and the tape's other elements of
// the same tensor.
std::vector<std::string> siblings(const std::string& f, const std::set<std::string>& names) {
  const std::size_t digits = f.find_last_not_of("0123456789") + 1;
  if (digits == 0 || digits == f.size() || f.find_first_of("([′") != std::string::npos) return {};
  std::vector<std::string> out;
  for (const std::string& n : names) {
    if (n != f && n.size() > digits && n.compare(0, digits, f, 0, digits) == 0 &&
        n.find_first_not_of("0123456789", digits) == std::string::npos)
      out.push_back(n);
  }
  return out;
}

struct Mutant {
  std::string what;
  graph::SymbolicSum sum;
};

// Every mutation of one true sum: sign, factor 2, a dropped activation derivative, a
// name swapped for a neighbouring element, a dropped term (a missing path), an extra
// term, two terms' activation derivatives swapped.
std::vector<Mutant> mutants(const graph::SymbolicSum& truth, const std::set<std::string>& names) {
  std::vector<Mutant> out;
  const auto& terms = truth.terms;
  for (std::size_t i = 0; i < terms.size(); ++i) {
    const std::string at = "term " + std::to_string(i + 1) + ": ";
    auto changed = [&](auto edit) {
      graph::SymbolicSum m = truth;
      edit(m.terms[i]);
      std::sort(m.terms[i].factors.begin(), m.terms[i].factors.end());
      return m;
    };
    out.push_back({at + "sign", changed([](graph::Monomial& t) { t.coeff = -t.coeff; })});
    out.push_back({at + "times 2", changed([](graph::Monomial& t) { t.coeff *= 2; })});
    for (std::size_t f = 0; f < terms[i].factors.size(); ++f) {
      const std::string& factor = terms[i].factors[f];
      if (is_activation(factor)) {
        out.push_back({at + "dropped " + factor, changed([&](graph::Monomial& t) {
                         t.factors.erase(t.factors.begin() + static_cast<std::ptrdiff_t>(f));
                       })});
      }
      for (const std::string& other : siblings(factor, names)) {
        out.push_back({at + factor + " -> " + other, changed([&](graph::Monomial& t) { t.factors[f] = other; })});
      }
    }
    if (terms.size() > 1) {
      graph::SymbolicSum dropped = truth;
      dropped.terms.erase(dropped.terms.begin() + static_cast<std::ptrdiff_t>(i));
      out.push_back({at + "dropped (a missing path)", dropped});
    }
    for (std::size_t f = 0; f < terms[i].factors.size(); ++f) {
      const auto others = siblings(terms[i].factors[f], names);
      if (others.empty()) continue;
      graph::SymbolicSum extra = truth;
      graph::Monomial copy = terms[i];
      copy.factors[f] = others.front();
      std::sort(copy.factors.begin(), copy.factors.end());
      extra.terms.push_back(copy);
      out.push_back({at + "extra term with " + others.front(), extra});
      break;
    }
    for (std::size_t j = i + 1; j < terms.size(); ++j) {
      auto activation = [](graph::Monomial& t) {
        return std::find_if(t.factors.begin(), t.factors.end(), is_activation);
      };
      graph::SymbolicSum swapped = truth;
      auto a = activation(swapped.terms[i]), b = activation(swapped.terms[j]);
      if (a == swapped.terms[i].factors.end() || b == swapped.terms[j].factors.end() || *a == *b) continue;
      std::swap(*a, *b);
      out.push_back({at + "activation swapped with term " + std::to_string(j + 1), swapped});
    }
  }
  return out;
}

// A sum's monomials in a fixed order, factors sorted: two sums that only order their terms
// or factors differently are the same function, and such a "mutant" is no mistake.
std::vector<std::string> canonical(const graph::SymbolicSum& sum) {
  std::vector<std::string> out;
  for (graph::Monomial m : sum.terms) {
    std::sort(m.factors.begin(), m.factors.end());
    out.push_back(graph::SymbolicSum{{m}}.text());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Network {
  const char* name;
  std::function<void(Tape&)> build;
};

}  // namespace

TEST_CASE("generated from the graph: every true sum over paths passes, every mutant fails", "[check][generated]") {
  const Network network = GENERATE(Network{"mixed relu/sigmoid/tanh MLP with a max", mixed_mlp},
                                   Network{"the seed network from scalars", seed_scalar},
                                   Network{"a dense relu/tanh MLP from tensor ops", tensor_mlp},
                                   Network{"conv2d, relu, average pool, dense from tensor ops", tensor_conv});
  Tape tape;
  network.build(tape);
  std::set<std::string> names;
  std::vector<std::pair<std::string, Slot>> params;
  for (NodeId n = 0; n < tape.node_count(); ++n) {
    for (Slot s = tape.offset(n); s < tape.offset(n) + tape.size(n); ++s) {
      const std::string name = tape.slot_name(s);
      if (name.empty()) continue;
      names.insert(name);
      if (tape.op(n) == Op::Param) params.emplace_back(name, s);
    }
  }
  const Slot loss = tape.offset(tape.node_count() - 1);
  std::string file;
  std::vector<std::string> labels;  // "true" or the mutation, per line
  for (const auto& [w, slot] : params) {
    const std::optional<graph::SymbolicSum> truth = graph::symbolic_derivative(tape, loss, slot, 64);
    REQUIRE(truth.has_value());
    file += "dL/d" + w + " = " + truth->text() + "\n";
    labels.emplace_back("true");
    // At most 60 mutants per parameter, spread evenly over the operators' output, so the
    // test stays quick on a network with many paths.
    const std::vector<Mutant> all = mutants(*truth, names);
    const std::size_t stride = all.size() / 60 + 1;
    for (std::size_t k = 0; k < all.size(); k += stride) {
      const Mutant& m = all[k];
      if (canonical(m.sum) == canonical(*truth)) continue;
      file += "dL/d" + w + " = " + m.sum.text() + "\n";
      labels.push_back(m.what);
    }
  }
  const std::vector<check::Report> reports = check::check_text(network.build, file);
  REQUIRE(reports.size() == labels.size());
  std::size_t mutant_count = 0, named = 0;
  for (std::size_t i = 0; i < reports.size(); ++i) {
    INFO(network.name << "; " << labels[i]);
    INFO(reports[i].text());
    if (labels[i] == "true") {
      CHECK(reports[i].verdict == check::Verdict::Pass);
    } else {
      ++mutant_count;
      CHECK(reports[i].verdict == check::Verdict::Fail);
      named += !reports[i].findings.empty() && reports[i].findings[0].mistake != check::Mistake::None;
    }
  }
  WARN(network.name << ": " << params.size() << " true sums, " << mutant_count << " mutants, " << named
                    << " with the mistake named");
  CHECK(mutant_count > 10 * params.size() / 2);
}
