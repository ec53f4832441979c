// SPDX-License-Identifier: MIT
#include "cli/walkthrough.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "check/checker.hpp"
#include "cli/report.hpp"
#include "graph/graph.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/optim.hpp"
#include "ops/pool.hpp"
#include "ops/tensor.hpp"

namespace gradpath::cli {

extern const char* const seed_note_formulas;  // examples/seed_note_formulas.tex, built in

namespace {

// The note's values, chosen to be easy to read: a_j = j/10, w = .1 -.2 .3 ... .9.
struct Seed {
  std::vector<double> image, filter;
  std::vector<double> dense = {0.5, -0.3, 0.2, 0.1};
  double bias = 0.1, target = 1.0;
  Seed() {
    for (int j = 1; j <= 25; ++j) image.push_back(0.1 * j);
    for (int i = 1; i <= 9; ++i) filter.push_back((i % 2 ? 0.1 : -0.1) * i);
  }
};

enum class Conv { mac, fused };
enum class Pooling { none, max, avg };

struct Network {
  TensorVar a, w, v, features, y, L;
  Var b;
};

// (a) conv stride 2 -> z1..z4 -> flatten -> dense -> y -> L, or (b) conv stride 1 ->
// O1..O9 -> 2x2 pooling, stride 1 -> Z1..Z4 -> flatten -> dense -> y -> L.
Network build(Tape& tape, Conv conv, Pooling pooling) {
  const Seed seed;
  Network n;
  n.a = tape.input(seed.image, Shape{5, 5}, "a");
  n.w = tape.param(seed.filter, Shape{3, 3}, "w");
  n.v = tape.param(seed.dense, Shape{4}, "v");
  n.b = tape.param(seed.bias, "b");
  Var t = tape.input(seed.target, "t");
  const ops::Conv2dOptions options{.stride = pooling == Pooling::none ? 2u : 1u};
  const char* conv_name = pooling == Pooling::none ? "z" : "O";
  TensorVar c =
      conv == Conv::mac ? ops::conv2d_mac(n.a, n.w, options, conv_name) : ops::conv2d(n.a, n.w, options, conv_name);
  if (pooling == Pooling::max) c = ops::max_pool2d(c, {.kernel = 2, .stride = 1}, "Z");
  if (pooling == Pooling::avg) c = ops::avg_pool2d(c, {.kernel = 2, .stride = 1}, "Z");
  n.features = c;
  n.y = ops::dense(ops::flatten(c), n.v, n.b, "y");
  n.L = ops::half_squared_error(n.y, t, "L");
  return n;
}

void print_tensor(std::ostream& out, const TensorVar& t, bool grads) {
  char line[96];
  for (std::size_t i = 0; i < t.size(); ++i) {
    const Var e = t[i];
    std::snprintf(line, sizeof line, grads ? "  %-4s = %9.4f   dL/d%-4s = %9.5f\n" : "  %-4s = %9.4f\n",
                  e.name().c_str(), e.value(), e.name().c_str(), e.grad());
    out << line;
  }
}

// How a factor of a path reads: the edge into a product w_i * a_j (or a dot product of
// the w and a) has the partial a_j, so name it; any other edge shows its number.
std::string factor_label(const Tape& tape, const graph::TapeGraph& g, NodeId from, NodeId to, double partial) {
  char number[32];
  std::snprintf(number, sizeof number, "%.4g", partial);
  const auto args = tape.arg_slots(to);
  if (g[to].op == Op::Dot) {  // pairs x_k, y_k: the edge from x_k has the partial y_k
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (tape.node_of(args[i]) == from) return tape.slot_name(args[i ^ 1]) + "=" + number;
    }
    return number;
  }
  if (g[to].op != Op::Mul || args.size() != 2) return number;
  for (Slot s : args) {
    if (tape.node_of(s) != from) return tape.slot_name(s) + "=" + number;
  }
  return number;
}

void print_path_tables(std::ostream& out, const Tape& tape, const Network& n) {
  const graph::TapeGraph g = graph::view(tape);
  const NodeId loss = tape.node_of(n.L.offset());
  char line[200];
  for (std::size_t i = 0; i < n.w.size(); ++i) {
    const Var wi = n.w[i];
    const auto paths = graph::paths(g, wi.node(), loss);
    out << "\n  paths from " << wi.name() << " to L: " << paths.size() << "\n";
    double total = 0;
    for (const graph::Path& p : paths) {
      std::string route, factors;
      for (std::size_t k = 0; k < p.nodes.size(); ++k) {
        if (k) route += " -> ";
        route += graph::node_label(g, p.nodes[k]);
      }
      for (std::size_t k = 0; k < p.partials.size(); ++k) {
        if (k) factors += " * ";
        factors += factor_label(tape, g, p.nodes[k], p.nodes[k + 1], p.partials[k]);
      }
      std::snprintf(line, sizeof line, "    %-34s %-44s = %10.6f\n", route.c_str(), factors.c_str(), p.product);
      out << line;
      total += p.product;
    }
    std::snprintf(line, sizeof line, "    sum over paths %68.6f   engine dL/d%s = %10.6f\n", total, wi.name().c_str(),
                  wi.grad());
    out << line;
  }
}

// The graph as seed.dot (and seed.svg where Graphviz is installed), only when asked: a
// run with no arguments leaves the current folder as it was.
void write_graph(std::ostream& out, const Tape& tape, const Network& n, const std::optional<std::string>& out_dir) {
  if (!out_dir) {
    out << "\n(gradpath --out-dir DIR writes the graph as DIR/seed.dot and DIR/seed.svg)\n";
    return;
  }
  // Laid out as `gradpath dot` draws a model: the image and the filter as grids, each z_k
  // with its nine products, the paths from w1 to L in colour.
  const graph::TapeGraph g = graph::view(tape);
  const cli::NamedTensors named{{"a", n.a}, {"w", n.w}, {"v", n.v}, {"z", n.features}, {"y", n.y}, {"L", n.L}};
  cli::DotRequest request;
  request.highlight = {"w1"};
  const graph::DotOptions options = cli::dot_options(tape, g, named, "L", request);
  const std::string dot_path = *out_dir + "/seed.dot", svg_path = *out_dir + "/seed.svg";
  {
    std::ofstream file(dot_path);
    if (!file) throw Error("walkthrough: cannot write " + dot_path);
    graph::write_dot(file, g, options);
  }
  out << "\nwrote " << dot_path << " (the four paths from w1 to L highlighted)";
  if (std::system("command -v dot > /dev/null 2>&1") == 0 &&
      std::system(("dot -Tsvg '" + dot_path + "' -o '" + svg_path + "'").c_str()) == 0) {
    out << " and " << svg_path;
  }
  out << "\n";
}

}  // namespace

int run_walkthrough(std::ostream& out, const std::optional<std::string>& out_dir) {
  out << "gradpath: the seed note, run\n"
         "5x5 image a1..a25 (a_j = j/10), 3x3 filter w1..w9, stride-2 convolution to z1..z4\n"
         "(each z_k ONE sum node of nine products w_i*a_j), flatten, dense (v, b) to y,\n"
         "L = (y - t)^2 / 2 with t = 1.\n\n";
  Tape tape;
  const Network n = build(tape, Conv::mac, Pooling::none);
  tape.backward(n.L[0]);
  out << "forward values and the reverse sweep's gradients:\n";
  print_tensor(out, n.features, true);
  print_tensor(out, n.y, true);
  print_tensor(out, n.L, false);

  out << "\nthe chain rule as a sum over paths: dL/dw_i = sum_k dz_k/dw_i * dL/dz_k\n"
         "(each row one path, its edge partials and their product)";
  print_path_tables(out, tape, n);

  out << "\nthe note's formulas, checked against the graph at the note's point and 5 random redraws:\n\n";
  const check::BuildFn rebuild = [](Tape& t) { build(t, Conv::mac, Pooling::none); };
  const std::vector<check::Report> reports = check::check_text(rebuild, seed_note_formulas);
  out << check::text(reports);

  write_graph(out, tape, n, out_dir);

  const double alpha = 0.1;
  out << "\none step of the note's update w_i* = w_i - alpha * dL/dw_i, alpha = " << alpha << ":\n";
  std::vector<double> before(n.w.values().begin(), n.w.values().end());
  ops::sgd_step(n.w, alpha);
  char line[96];
  for (std::size_t i = 0; i < n.w.size(); ++i) {
    std::snprintf(line, sizeof line, "  %-3s %8.4f -> %8.4f\n", n.w[i].name().c_str(), before[i], n.w[i].value());
    out << line;
  }

  out << "\nthe same network with the fused conv2d (im2col + GEMM) instead of multiply-adds:\n";
  double worst = 0;
  {
    Tape mac_tape, fused_tape;
    const Network mac = build(mac_tape, Conv::mac, Pooling::none);
    const Network fused = build(fused_tape, Conv::fused, Pooling::none);
    mac_tape.backward(mac.L[0]);
    fused_tape.backward(fused.L[0]);
    for (std::size_t i = 0; i < mac.w.size(); ++i)
      worst = std::max(worst, std::abs(mac.w.grads()[i] - fused.w.grads()[i]));
  }
  std::snprintf(line, sizeof line, "  largest |dL/dw_i (fused) - dL/dw_i (multiply-add)| = %.3g\n", worst);
  out << line;

  out << "\nthe note's second network: stride-1 conv to O1..O9, 2x2 pooling (stride 1) to Z1..Z4:\n";
  for (Pooling pooling : {Pooling::max, Pooling::avg}) {
    Tape t;
    const Network p = build(t, Conv::mac, pooling);
    t.backward(p.L[0]);
    out << (pooling == Pooling::max ? "  max pooling:" : "  average pooling:");
    std::snprintf(line, sizeof line, " L = %.6f\n", p.L[0].value());
    out << line;
    for (std::size_t i = 0; i < p.w.size(); ++i) {
      std::snprintf(line, sizeof line, "    dL/d%-3s = %10.6f\n", p.w[i].name().c_str(), p.w[i].grad());
      out << line;
    }
  }
  return 0;
}

}  // namespace gradpath::cli
