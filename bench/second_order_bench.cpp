// SPDX-License-Identifier: MIT
// H1: what a Hessian-vector product costs against a gradient on the same recorded tape:
// S1 64x64 (scalar nodes) and the T1 network in float64 (tensor ops). Each case records
// once; an iteration is one backward(), or one hvp() along a fixed random direction
// (which includes its own backward), so the ratio of the two rows is the HVP's cost in
// gradients.
#include <benchmark/benchmark.h>

#include <array>
#include <vector>

#include "autodiff/second_order.hpp"
#include "cases.hpp"
#include "ops/scalar.hpp"
#include "t1_network.hpp"

namespace {

using namespace gradpath;
namespace gb = gradpath::bench;

// A recorded graph: its tape, loss and params, and a direction over the params.
struct Recorded {
  Tape tape;
  TensorVar loss;
  std::vector<TensorVar> params;
  std::vector<double> direction;
};

// S1 64x64 on scalar nodes, the filter its params.
void record_s1(Recorded& r) {
  const gb::S1 s1(64);
  const TensorVar w = r.tape.param(s1.filter, Shape{3, 3}, "w");
  const std::vector<Var> ws = w.elements();
  const std::vector<Var> as = r.tape.input(s1.image, Shape{s1.side, s1.side}, "a").elements();
  std::vector<Var> squares(s1.outputs);
  for (std::size_t k = 0; k < s1.outputs; ++k) {
    std::array<Var, 9> products;
    for (std::size_t i = 0; i < 9; ++i) products[i] = ws[i] * as[s1.corner(k) + s1.taps[i]];
    const Var z = sum(products);
    squares[k] = z * z;
  }
  r.loss = TensorVar(sum(squares) * 0.5, Shape{});
  r.params = {w};
  r.direction = gb::uniform_values(9, 11);
}

// The T1 network in float64, all four params.
void record_t1(Recorded& r) {
  const gb::T1Network<double> net(r.tape);
  r.loss = net.loss();
  r.params = net.params();
  std::size_t n = 0;
  for (const TensorVar& p : r.params) n += p.size();
  r.direction = gb::uniform_values(n, 12);
}

template <void (*Record)(Recorded&), bool Hvp>
void h1(benchmark::State& state) {
  Recorded r;
  Record(r);
  for (auto _ : state) {
    if constexpr (Hvp) {
      benchmark::DoNotOptimize(hvp(r.tape, r.loss, r.params, r.direction).data());
    } else {
      r.tape.backward(r.loss);
      benchmark::DoNotOptimize(r.tape.grads().data());
    }
  }
}
BENCHMARK(h1<record_s1, false>)->Name("H1/S1/gradient")->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();
BENCHMARK(h1<record_s1, true>)->Name("H1/S1/hvp")->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();
BENCHMARK(h1<record_t1, false>)->Name("H1/T1/float64/gradient")->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();
BENCHMARK(h1<record_t1, true>)->Name("H1/T1/float64/hvp")->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();

}  // namespace
