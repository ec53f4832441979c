// SPDX-License-Identifier: MIT
// The graph module at scale: graph::view and graph::write_dot on a 100,000-node tape
// (the 3x3 convolution as multiply-adds on a 98x98 image, plus its loss).
#include <benchmark/benchmark.h>

#include <sstream>
#include <vector>

#include "autodiff/tensor.hpp"
#include "graph/graph.hpp"
#include "ops/conv.hpp"
#include "ops/scalar.hpp"

namespace {

using namespace gradpath;

// 98^2 image -> 96^2 outputs of 9 products and one sum each: about 100,000 nodes.
void record_network(Tape& tape) {
  constexpr std::size_t side = 98;
  std::vector<double> image(side * side), filter(9);
  for (std::size_t j = 0; j < image.size(); ++j) image[j] = 0.001 * static_cast<double>(j % 97);
  for (std::size_t i = 0; i < 9; ++i) filter[i] = 0.1 * static_cast<double>(i) - 0.4;
  const TensorVar a = tape.input(image, Shape{side, side}, "a");
  const TensorVar w = tape.param(filter, Shape{3, 3}, "w");
  const TensorVar z = ops::conv2d_mac(a, w, {}, "z");
  const Var loss = sum(z.elements()) * 0.5;
  tape.backward(loss);
}

void graph_view(benchmark::State& state) {
  Tape tape;
  record_network(tape);
  for (auto _ : state) benchmark::DoNotOptimize(graph::view(tape));
  state.counters["nodes"] = static_cast<double>(tape.node_count());
}
BENCHMARK(graph_view)->Name("G1/view")->Unit(benchmark::kMillisecond);

void graph_write_dot(benchmark::State& state) {
  Tape tape;
  record_network(tape);
  const graph::TapeGraph g = graph::view(tape);
  for (auto _ : state) {
    std::ostringstream out;
    graph::write_dot(out, g);
    benchmark::DoNotOptimize(out.str().size());
  }
  state.counters["nodes"] = static_cast<double>(tape.node_count());
}
BENCHMARK(graph_write_dot)->Name("G1/write_dot")->Unit(benchmark::kMillisecond);

}  // namespace
