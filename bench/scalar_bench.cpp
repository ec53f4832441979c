// SPDX-License-Identifier: MIT
// gradpath's scalar benchmarks: S1 (64x64 convolution as scalar multiply-adds) and S2
// (the seed network); each iteration records, sweeps, reads the grads and resets.
#include <benchmark/benchmark.h>

#include <array>
#include <vector>

#include "autodiff/tensor.hpp"
#include "cases.hpp"
#include "ops/scalar.hpp"

namespace {

using namespace gradpath;
namespace gb = gradpath::bench;

void s1_gradpath(benchmark::State& state) {
  const std::vector<double> image = gb::uniform_values(gb::s1_side * gb::s1_side, 1);
  const std::vector<double> filter = gb::uniform_values(9, 2);
  Tape tape;
  const TensorVar w = tape.param(filter, Shape{3, 3}, "w");
  const std::vector<Var> ws = w.elements();
  std::vector<Var> squares(gb::s1_outputs);
  TapeMemory memory;
  for (auto _ : state) {
    const TensorVar a = tape.input(image, Shape{gb::s1_side, gb::s1_side}, "a");
    const std::vector<Var> as = a.elements();
    for (std::size_t r = 0, k = 0; r < gb::s1_out_side; ++r) {
      for (std::size_t c = 0; c < gb::s1_out_side; ++c, ++k) {
        const Var* window = &as[r * gb::s1_side + c];
        std::array<Var, 9> products;
        for (std::size_t i = 0; i < 9; ++i) products[i] = ws[i] * window[gb::s1_taps[i]];
        const Var z = sum(products);
        squares[k] = z * z;
      }
    }
    const Var loss = sum(squares) * 0.5;
    tape.backward(loss);
    double total = 0.0;
    for (double g : w.grads()) total += g;
    for (double g : a.grads()) total += g;
    benchmark::DoNotOptimize(total);
    memory = tape.memory();
    tape.reset();
  }
  state.counters["ops"] = gb::s1_ops;
  state.counters["bytes_per_op"] = static_cast<double>(memory.total().used) / gb::s1_ops;
  state.counters["reserved_bytes_per_op"] = static_cast<double>(memory.total().reserved) / gb::s1_ops;
}
BENCHMARK(s1_gradpath)->Name("S1/gradpath")->Unit(benchmark::kMicrosecond);

void s2_gradpath(benchmark::State& state) {
  const std::vector<double> image = gb::uniform_values(gb::s2_side * gb::s2_side, 3);
  const std::vector<double> filter = gb::uniform_values(9, 4);
  const std::vector<double> dense = gb::uniform_values(4, 5);
  const double target = 0.25;
  Tape tape;
  const std::vector<Var> w = tape.param(filter, Shape{3, 3}, "w").elements();
  const std::vector<Var> v = tape.param(dense, Shape{4}, "v").elements();
  const Var b = tape.param(0.1, "b");
  for (auto _ : state) {
    const std::vector<Var> a = tape.input(image, Shape{gb::s2_side, gb::s2_side}, "a").elements();
    const Var t = tape.input(target, "t");
    std::array<Var, 5> terms;
    for (std::size_t k = 0; k < 4; ++k) {
      std::array<Var, 9> products;
      for (std::size_t i = 0; i < 9; ++i) products[i] = w[i] * a[gb::s2_tap(k, i)];
      terms[k] = v[k] * sum(products);
    }
    terms[4] = b;
    const Var y = sum(terms);
    const Var loss = pow(y - t, 2.0) * 0.5;
    tape.backward(loss);
    double total = b.grad();
    for (std::size_t i = 0; i < 9; ++i) total += w[i].grad();
    for (std::size_t k = 0; k < 4; ++k) total += v[k].grad();
    benchmark::DoNotOptimize(total);
    tape.reset();
  }
}
BENCHMARK(s2_gradpath)->Name("S2/gradpath")->Unit(benchmark::kMicrosecond);

}  // namespace
