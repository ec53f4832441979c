// SPDX-License-Identifier: MIT
// gradpath's tensor benchmarks, each a template over the element type (the name carries
// it, as bench/torch_tensor.py names its runs): F1, the fused conv2d forward and backward
// on S1's shapes, and T1, one training step of a small CNN at 1 and 2 threads.
#include <cblas.h>

#include <benchmark/benchmark.h>

#include <span>
#include <type_traits>
#include <vector>

#include "autodiff/tensor.hpp"
#include "bench/t1_network.hpp"
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
  const std::vector<double> image_values = gb::uniform_values(gb::s1_side * gb::s1_side, 1);
  const std::vector<double> filter_values = gb::uniform_values(9, 2);
  const std::vector<T> image(image_values.begin(), image_values.end());
  const std::vector<T> filter(filter_values.begin(), filter_values.end());
  set_num_threads(1);
  Tape tape;
  const TensorVar w = tape.param(filter, Shape{1, 1, 3, 3}, "w");
  for (auto _ : state) {
    const TensorVar a = tape.input(image, Shape{1, 1, gb::s1_side, gb::s1_side}, "a");
    const TensorVar loss = ops::half_squared_error(ops::conv2d(a, w), 0.0);
    tape.backward(loss);
    double total = 0.0;
    for (double g : grads_of<T>(w)) total += g;
    for (double g : grads_of<T>(a)) total += g;
    benchmark::DoNotOptimize(total);
    tape.reset();
  }
}
BENCHMARK(f1_gradpath<double>)->Name("F1/gradpath/float64")->Unit(benchmark::kMicrosecond);
BENCHMARK(f1_gradpath<float>)->Name("F1/gradpath/float32")->Unit(benchmark::kMicrosecond);

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
BENCHMARK(t1_gradpath<double>)
    ->Name("T1/gradpath/float64")
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(t1_gradpath<float>)
    ->Name("T1/gradpath/float32")
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

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
BENCHMARK(k1_gradpath<double>)->Name("K1/gradpath/float64")->Unit(benchmark::kMicrosecond);
BENCHMARK(k1_gradpath<float>)->Name("K1/gradpath/float32")->Unit(benchmark::kMicrosecond);

// F2: conv2d alone at a training layer's size, forward and backward (dX, dW, db): a batch
// of 32 images 16x28x28, 32 filters 3x3 with padding 1, L = sum z^2 / 2.
template <typename T>
void f2_gradpath(benchmark::State& state) {
  constexpr std::size_t batch = 32, in = 16, out = 32, side = 28;
  const std::vector<double> image_values = gb::uniform_values(batch * in * side * side, 4);
  const std::vector<T> image(image_values.begin(), image_values.end());
  const Shape filter{out, in, 3, 3};
  set_num_threads(1);
  Tape tape;
  const TensorVar w = tape.param(ops::he_normal<T>(filter, 5), filter, "w");
  const TensorVar b = tape.param(std::vector<T>(out, T(0)), Shape{out}, "b");
  for (auto _ : state) {
    const TensorVar x = tape.input(image, Shape{batch, in, side, side}, "x");
    tape.backward(ops::half_squared_error(ops::conv2d(x, w, b, {.padding = 1}), 0.0));
    benchmark::DoNotOptimize(grads_of<T>(x).data());
    tape.reset();
  }
}
BENCHMARK(f2_gradpath<double>)->Name("F2/gradpath/float64")->Unit(benchmark::kMicrosecond);
BENCHMARK(f2_gradpath<float>)->Name("F2/gradpath/float32")->Unit(benchmark::kMicrosecond);

// T2: one Adam training step of a two-conv CNN on T1's batch: conv 1->16, relu, max-pool,
// conv 16->32, relu, max-pool, dense 1568->10, softmax cross-entropy; at 1 thread.
template <typename T>
void t2_gradpath(benchmark::State& state) {
  constexpr std::size_t batch = 64, side = 28, classes = 10, features = 32 * 7 * 7;
  const std::vector<double> image_values = gb::uniform_values(batch * side * side, 6);
  const std::vector<T> images(image_values.begin(), image_values.end());
  std::vector<int> labels(batch);
  for (std::size_t i = 0; i < batch; ++i) labels[i] = static_cast<int>(i * 7 % classes);
  set_num_threads(1);
  Tape tape;
  const Shape c1{16, 1, 3, 3}, c2{32, 16, 3, 3}, dw{classes, features};
  const TensorVar w1 = tape.param(ops::he_normal<T>(c1, 1), c1, "w1");
  const TensorVar b1 = tape.param(std::vector<T>(16, T(0)), Shape{16}, "b1");
  const TensorVar w2 = tape.param(ops::he_normal<T>(c2, 2), c2, "w2");
  const TensorVar b2 = tape.param(std::vector<T>(32, T(0)), Shape{32}, "b2");
  const TensorVar w3 = tape.param(ops::he_normal<T>(dw, 3), dw, "w3");
  const TensorVar b3 = tape.param(std::vector<T>(classes, T(0)), Shape{classes}, "b3");
  ops::Adam adam({w1, b1, w2, b2, w3, b3});
  for (auto _ : state) {
    tape.reset();
    const TensorVar x = tape.constant(images, Shape{batch, 1, side, side});
    const TensorVar h1 = ops::max_pool2d(ops::relu(ops::conv2d(x, w1, b1, {.padding = 1})));
    const TensorVar h2 = ops::max_pool2d(ops::relu(ops::conv2d(h1, w2, b2, {.padding = 1})));
    const TensorVar loss = ops::softmax_cross_entropy(ops::dense(ops::flatten(h2, 1), w3, b3), labels);
    tape.backward(loss);
    benchmark::DoNotOptimize(loss.item());
    adam.step();
  }
}
BENCHMARK(t2_gradpath<double>)->Name("T2/gradpath/float64")->Unit(benchmark::kMicrosecond);
BENCHMARK(t2_gradpath<float>)->Name("T2/gradpath/float32")->Unit(benchmark::kMicrosecond);

// Which OpenBLAS kernels ran, for the table (OPENBLAS_CORETYPE changes them).
const bool context_added = [] {
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  return true;
}();

}  // namespace
