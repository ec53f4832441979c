// SPDX-License-Identifier: MIT
// gradpath's tensor benchmarks, each a template over the element type (the name carries
// it, as bench/torch_tensor.py names its runs): F1, the fused conv2d forward and backward
// on S1's shapes; F2, one conv layer of batch 32, 16->32 channels, at 1 and 2 threads; T1
// and T2, one training step of a small CNN at 1 and 2 threads. CPU times are the
// process's (MeasureProcessCPUTime): with 2 threads, both threads' time, as
// time.process_time() counts it on the PyTorch side; the iteration count follows wall
// time (UseRealTime) where threads run.
#include <cblas.h>

#include <benchmark/benchmark.h>

#include <span>
#include <type_traits>
#include <vector>

#include "autodiff/tensor.hpp"
#include "bench/t1_network.hpp"
#include "bench/t2_network.hpp"
#include "cases.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/optim.hpp"
#include "ops/pool.hpp"
#include "ops/tensor.hpp"
#include "ops/threads.hpp"

namespace {

using namespace gradpath;
namespace gb = gradpath::bench;

template <typename T>
std::span<const T> grads_of(const TensorVar& t) {
  if constexpr (std::is_same_v<T, float>) {
    return t.grads_f32();
  } else {
    return t.grads();
  }
}

// F1: image (1, 1, 64, 64), filter (1, 1, 3, 3), stride 1, no padding, L = sum z^2 / 2;
// each iteration records, sweeps, reads the grads of filter and image and resets.
template <typename T>
void f1_gradpath(benchmark::State& state) {
  const gb::S1 s1(64);
  const std::vector<T> image(s1.image.begin(), s1.image.end());
  const std::vector<T> filter(s1.filter.begin(), s1.filter.end());
  set_num_threads(1);
  Tape tape;
  const TensorVar w = tape.param(filter, Shape{1, 1, 3, 3}, "w");
  for (auto _ : state) {
    const TensorVar a = tape.input(image, Shape{1, 1, s1.side, s1.side}, "a");
    const TensorVar loss = ops::half_squared_error(ops::conv2d(a, w), 0.0);
    tape.backward(loss);
    double total = 0.0;
    for (double g : grads_of<T>(w)) total += g;
    for (double g : grads_of<T>(a)) total += g;
    benchmark::DoNotOptimize(total);
    tape.reset();
  }
}
BENCHMARK(f1_gradpath<double>)->Name("F1/gradpath/float64")->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();
BENCHMARK(f1_gradpath<float>)->Name("F1/gradpath/float32")->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();

// The threaded cases run at 1 and 2 threads, timed in the CPU time of every thread, with
// the wall time beside it (the speed-up of the second thread shows there).
void at_one_and_two_threads(benchmark::internal::Benchmark* b) {
  b->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime()->MeasureProcessCPUTime();
}

// F2: x (32, 16, 28, 28), w (32, 16, 3, 3), stride 1, padding 1, no bias, L = sum z^2 / 2,
// with state.range(0) threads; each iteration records, sweeps, reads the grads of w and x
// and resets.
template <typename T>
void f2_gradpath(benchmark::State& state) {
  constexpr std::size_t batch = 32, in = 16, out = 32, side = 28;
  const std::vector<double> x_values = gb::uniform_values(batch * in * side * side, 8);
  const std::vector<double> w_values = gb::uniform_values(out * in * 9, 9);
  const std::vector<T> x_data(x_values.begin(), x_values.end());
  const std::vector<T> w_data(w_values.begin(), w_values.end());
  set_num_threads(static_cast<std::size_t>(state.range(0)));
  Tape tape;
  const TensorVar w = tape.param(w_data, Shape{out, in, 3, 3}, "w");
  for (auto _ : state) {
    const TensorVar x = tape.input(x_data, Shape{batch, in, side, side}, "x");
    tape.backward(ops::half_squared_error(ops::conv2d(x, w, {.stride = 1, .padding = 1}), 0.0));
    benchmark::DoNotOptimize(grads_of<T>(w).data());
    benchmark::DoNotOptimize(grads_of<T>(x).data());
    tape.reset();
  }
  set_num_threads(1);
}
BENCHMARK(f2_gradpath<float>)->Name("F2/gradpath/float32")->Apply(at_one_and_two_threads);

// T1: reset, record, sweep, SGD step, with state.range(0) threads.
template <typename T>
void t1_gradpath(benchmark::State& state) {
  set_num_threads(static_cast<std::size_t>(state.range(0)));
  Tape tape;
  const gb::T1Network<T> net(tape);
  ops::Sgd sgd(net.params(), {.lr = 0.01});
  for (auto _ : state) {
    tape.reset();
    benchmark::DoNotOptimize(net.forward_backward());
    sgd.step();
  }
  set_num_threads(1);
}
BENCHMARK(t1_gradpath<double>)->Name("T1/gradpath/float64")->Apply(at_one_and_two_threads);
BENCHMARK(t1_gradpath<float>)->Name("T1/gradpath/float32")->Apply(at_one_and_two_threads);

// T2: reset, record, sweep, Adam step, with state.range(0) threads.
template <typename T>
void t2_gradpath(benchmark::State& state) {
  set_num_threads(static_cast<std::size_t>(state.range(0)));
  Tape tape;
  const gb::T2Network<T> net(tape);
  ops::Adam adam(net.params(), {.lr = 1e-3});
  for (auto _ : state) {
    tape.reset();
    benchmark::DoNotOptimize(net.forward_backward());
    adam.step();
  }
  set_num_threads(1);
}
BENCHMARK(t2_gradpath<double>)->Name("T2/gradpath/float64")->Apply(at_one_and_two_threads);
BENCHMARK(t2_gradpath<float>)->Name("T2/gradpath/float32")->Apply(at_one_and_two_threads);

// K1: T1's kinked layers alone, on T1's shapes: relu of a (64, 8, 28, 28) input, 2x2
// max-pool, sum, sweep, reset. The relu backward and max-pool forward were the two hot
// spots of a T1 float32 step (branchy loops); this times them without the GEMMs.
template <typename T>
void k1_gradpath(benchmark::State& state) {
  constexpr std::size_t batch = 64, channels = 8, side = 28;
  const std::vector<double> values = gb::uniform_values(batch * channels * side * side, 3);
  const std::vector<T> image(values.begin(), values.end());  // uniform in [-1, 1): half the relu is off
  set_num_threads(1);
  Tape tape;
  for (auto _ : state) {
    const TensorVar x = tape.input(image, Shape{batch, channels, side, side}, "x");
    const TensorVar loss = ops::sum(ops::max_pool2d(ops::relu(x), {.kernel = 2}));
    tape.backward(loss);
    benchmark::DoNotOptimize(grads_of<T>(x).data());
    tape.reset();
  }
}
BENCHMARK(k1_gradpath<double>)->Name("K1/gradpath/float64")->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();
BENCHMARK(k1_gradpath<float>)->Name("K1/gradpath/float32")->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();

// Which OpenBLAS kernels ran (OPENBLAS_CORETYPE changes them) and the compiler flags of
// this build, for the table.
const bool context_added = [] {
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::AddCustomContext("cxx_flags", GRADPATH_BENCH_CXX_FLAGS);
  return true;
}();

}  // namespace
