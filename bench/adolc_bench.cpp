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
  const std::vector<double> image = gb::uniform_values(gb::s1_side * gb::s1_side, 1);
  const std::vector<double> filter = gb::uniform_values(9, 2);
  constexpr short tag = 1;
  const int n = static_cast<int>(filter.size() + image.size());
  std::vector<double> grads(static_cast<std::size_t>(n));
  for (auto _ : state) {
    // keep = 1 stores the forward values during tracing, so reverse() needs no
    // separate forward pass (ADOL-C's fastest route to one gradient).
    trace_on(tag, 1);
    {
      std::vector<adouble> w(filter.size()), a(image.size());
      for (std::size_t i = 0; i < filter.size(); ++i) w[i] <<= filter[i];
      for (std::size_t j = 0; j < image.size(); ++j) a[j] <<= image[j];
      adouble loss = 0.0;
      for (std::size_t r = 0; r < gb::s1_out_side; ++r) {
        for (std::size_t c = 0; c < gb::s1_out_side; ++c) {
          const adouble* window = &a[r * gb::s1_side + c];
          adouble z = w[0] * window[0];
          for (std::size_t i = 1; i < 9; ++i) z += w[i] * window[gb::s1_taps[i]];
          loss += z * z;
        }
      }
      loss *= 0.5;
      double value = 0.0;
      loss >>= value;
      benchmark::DoNotOptimize(value);
    }
    trace_off();
    reverse(tag, 1, n, 0, 1.0, grads.data());
    double total = 0.0;
    for (double g : grads) total += g;
    benchmark::DoNotOptimize(total);
  }
  state.counters["ops"] = gb::s1_ops;
}
BENCHMARK(s1_adolc)->Name("S1/adolc")->Unit(benchmark::kMicrosecond);

}  // namespace
