// SPDX-License-Identifier: MIT
// The ADOL-C peer for S1: the same convolution and loss traced afresh every iteration
// (trace_on/trace_off, as a dynamic graph must), then one reverse sweep for every grad.
#include <adolc/adolc.h>
#include <benchmark/benchmark.h>

#include <vector>

#include "cases.hpp"

namespace {

namespace gb = gradpath::bench;

void s1_adolc(benchmark::State& state) {
  const gb::S1 s1(static_cast<std::size_t>(state.range(0)));
  constexpr short tag = 1;
  const int n = static_cast<int>(s1.gradients());
  std::vector<double> grad(s1.gradients());
  const auto step = [&] {
    // keep = 1 stores the forward values during tracing, so reverse() needs no
    // separate forward pass (ADOL-C's fastest route to one gradient).
    trace_on(tag, 1);
    {
      std::vector<adouble> w(9), a(s1.image.size());
      for (std::size_t i = 0; i < 9; ++i) w[i] <<= s1.filter[i];
      for (std::size_t j = 0; j < s1.image.size(); ++j) a[j] <<= s1.image[j];
      adouble loss = 0.0;
      for (std::size_t k = 0; k < s1.outputs; ++k) {
        const adouble* window = &a[s1.corner(k)];
        adouble z = w[0] * window[0];
        for (std::size_t i = 1; i < 9; ++i) z += w[i] * window[s1.taps[i]];
        loss += z * z;
      }
      loss *= 0.5;
      double value = 0.0;
      loss >>= value;
      benchmark::DoNotOptimize(value);
    }
    trace_off();
    reverse(tag, 1, n, 0, 1.0, grad.data());
  };
  step();
  step();  // the second recording on the same tape, as every timed one
  gb::check_gradient("S1/adolc", grad, gb::s1_hand_gradient(s1));
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(grad.data());
  }
  state.counters["ops"] = s1.ops();
}
BENCHMARK(s1_adolc)
    ->Name("S1/adolc")
    ->ArgName("side")
    ->ArgsProduct({gb::s1_sides})
    ->Unit(benchmark::kMicrosecond)
    ->MeasureProcessCPUTime();

}  // namespace
