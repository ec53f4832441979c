// SPDX-License-Identifier: MIT
// gradpath's scalar benchmarks: S1 (a side x side convolution as scalar multiply-adds, at
// every side of gb::s1_sides) and S2 (the seed network); each iteration records, sweeps,
// copies the grads out and resets. Each checks its gradient against the hand adjoint once
// before it is timed. Every benchmark's CPU time is its process's (MeasureProcessCPUTime),
// as time.process_time() is in the Python peers', so threads are counted alike.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <span>
#include <vector>

#include "autodiff/tensor.hpp"
#include "cases.hpp"
#include "ops/scalar.hpp"

namespace {

using namespace gradpath;
namespace gb = gradpath::bench;

// How each output's sum of nine products is recorded: as one statement (dot, what Adept
// and CoDiPack record for the same expression) or with every product a node of its own
// (nine muls and a sum, what conv2d_mac records and the graph view walks through).
enum class Products { statement, nodes };

template <Products products>
gradpath::Var nine_products(std::span<const gradpath::Var, 9> w, std::span<const gradpath::Var, 9> window) {
  if constexpr (products == Products::statement) {
    return gradpath::dot(w, window);
  } else {
    std::array<gradpath::Var, 9> terms;
    for (std::size_t i = 0; i < 9; ++i) terms[i] = w[i] * window[i];
    return gradpath::sum(terms);
  }
}

template <Products products>
void s1_gradpath(benchmark::State& state) {
  const gb::S1 s1(static_cast<std::size_t>(state.range(0)));
  Tape tape;
  const TensorVar w = tape.param(s1.filter, Shape{3, 3}, "w");
  const std::vector<Var> ws = w.elements();
  std::vector<Var> squares(s1.outputs);
  std::vector<double> grad(s1.gradients());
  // One iteration; returns the memory the tape held before its reset.
  const auto step = [&] {
    const TensorVar a = tape.input(s1.image, Shape{s1.side, s1.side}, "a");
    const std::vector<Var> as = a.elements();
    for (std::size_t k = 0; k < s1.outputs; ++k) {
      const Var* corner = &as[s1.corner(k)];
      std::array<Var, 9> window;
      for (std::size_t i = 0; i < 9; ++i) window[i] = corner[s1.taps[i]];
      const Var z = nine_products<products>(std::span<const Var, 9>(ws.data(), 9), window);
      squares[k] = z * z;
    }
    tape.backward(sum(squares) * 0.5);
    std::ranges::copy(a.grads(), std::ranges::copy(w.grads(), grad.begin()).out);
    const TapeMemory memory = tape.memory();
    tape.reset();
    return memory;
  };
  step();
  step();  // the second recording on the same tape, as every timed one
  gb::check_gradient("S1/gradpath", grad, gb::s1_hand_gradient(s1));
  TapeMemory memory;
  for (auto _ : state) {
    memory = step();
    benchmark::DoNotOptimize(grad.data());
  }
  state.counters["ops"] = s1.ops();
  state.counters["bytes_per_op"] = static_cast<double>(memory.total().used) / s1.ops();
  state.counters["reserved_bytes_per_op"] = static_cast<double>(memory.total().reserved) / s1.ops();
}
BENCHMARK(s1_gradpath<Products::statement>)
    ->Name("S1/gradpath")
    ->ArgName("side")
    ->ArgsProduct({gb::s1_sides})
    ->Unit(benchmark::kMicrosecond)
    ->MeasureProcessCPUTime();
BENCHMARK(s1_gradpath<Products::nodes>)
    ->Name("S1/gradpath-products")
    ->ArgName("side")
    ->ArgsProduct({gb::s1_sides})
    ->Unit(benchmark::kMicrosecond)
    ->MeasureProcessCPUTime();

template <Products products>
void s2_gradpath(benchmark::State& state) {
  const gb::S2 s2;
  Tape tape;
  const std::vector<Var> w = tape.param(s2.filter, Shape{3, 3}, "w").elements();
  const std::vector<Var> v = tape.param(s2.dense, Shape{4}, "v").elements();
  const Var b = tape.param(s2.bias, "b");
  std::vector<double> grad(gb::S2::gradients);
  const auto step = [&] {
    const std::vector<Var> a = tape.input(s2.image, Shape{gb::s2_side, gb::s2_side}, "a").elements();
    const Var t = tape.input(s2.target, "t");
    std::array<Var, 5> terms;
    for (std::size_t k = 0; k < 4; ++k) {
      std::array<Var, 9> window;
      for (std::size_t i = 0; i < 9; ++i) window[i] = a[gb::s2_tap(k, i)];
      terms[k] = v[k] * nine_products<products>(std::span<const Var, 9>(w.data(), 9), window);
    }
    terms[4] = b;
    const Var y = sum(terms);
    tape.backward(pow(y - t, 2.0) * 0.5);
    for (std::size_t i = 0; i < 9; ++i) grad[i] = w[i].grad();
    for (std::size_t k = 0; k < 4; ++k) grad[9 + k] = v[k].grad();
    grad[13] = b.grad();
    tape.reset();
  };
  step();
  step();
  gb::check_gradient("S2/gradpath", grad, gb::s2_hand_gradient(s2));
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(grad.data());
  }
}
BENCHMARK(s2_gradpath<Products::statement>)
    ->Name("S2/gradpath")
    ->Unit(benchmark::kMicrosecond)
    ->MeasureProcessCPUTime();
BENCHMARK(s2_gradpath<Products::nodes>)
    ->Name("S2/gradpath-products")
    ->Unit(benchmark::kMicrosecond)
    ->MeasureProcessCPUTime();

}  // namespace
