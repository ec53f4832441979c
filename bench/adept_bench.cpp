// SPDX-License-Identifier: MIT
// The Adept-2 peer for S1 and S2, written as Adept's documentation does: the independent
// adoubles live across iterations and get their values without recording
// (adept::set_values), then each iteration is stack.new_recording(), the algorithm
// (each output one expression of nine products, one statement), L.set_gradient(1),
// stack.compute_adjoint() and reading the gradients. Built only when ADEPT_DIR is set.
#include <adept.h>
#include <benchmark/benchmark.h>

#include <vector>

#include "cases.hpp"

namespace {

namespace gb = gradpath::bench;
using adept::adouble;

void s1_adept(benchmark::State& state) {
  const gb::S1 s1(static_cast<std::size_t>(state.range(0)));
  adept::Stack stack;
  std::vector<adouble> w(9), a(s1.image.size());
  std::vector<double> grad(s1.gradients());
  const auto step = [&] {
    adept::set_values(w.data(), 9, s1.filter.data());
    adept::set_values(a.data(), static_cast<adept::Index>(a.size()), s1.image.data());
    stack.new_recording();
    adouble loss = 0.0;
    for (std::size_t k = 0; k < s1.outputs; ++k) {
      const adouble z = gb::nine_products(w.data(), &a[s1.corner(k)], s1.taps);
      loss += z * z;
    }
    loss *= 0.5;
    loss.set_gradient(1.0);
    stack.compute_adjoint();
    adept::get_gradients(w.data(), 9, grad.data());
    adept::get_gradients(a.data(), static_cast<adept::Index>(a.size()), grad.data() + 9);
  };
  step();
  step();  // the second recording on the same stack, as every timed one
  gb::check_gradient("S1/adept", grad, gb::s1_hand_gradient(s1));
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(grad.data());
  }
  state.counters["ops"] = s1.ops();
  // Statements and operations of the last recording (Stack::memory(); the gradient
  // array is not counted).
  state.counters["bytes_per_op"] = static_cast<double>(stack.memory()) / s1.ops();
}
BENCHMARK(s1_adept)
    ->Name("S1/adept")
    ->ArgName("side")
    ->ArgsProduct({gb::s1_sides})
    ->Unit(benchmark::kMicrosecond)
    ->MeasureProcessCPUTime();

void s2_adept(benchmark::State& state) {
  const gb::S2 s2;
  adept::Stack stack;
  std::vector<adouble> w(9), v(4), a(s2.image.size());
  adouble b;
  std::vector<double> grad(gb::S2::gradients);
  const auto step = [&] {
    adept::set_values(w.data(), 9, s2.filter.data());
    adept::set_values(v.data(), 4, s2.dense.data());
    adept::set_values(a.data(), static_cast<adept::Index>(a.size()), s2.image.data());
    adept::set_values(&b, 1, &s2.bias);
    stack.new_recording();
    adouble y = b;
    for (std::size_t k = 0; k < 4; ++k) y += v[k] * gb::nine_products(w.data(), &a[gb::s2_corner(k)], gb::s2_taps);
    adouble loss = 0.5 * (y - s2.target) * (y - s2.target);
    loss.set_gradient(1.0);
    stack.compute_adjoint();
    adept::get_gradients(w.data(), 9, grad.data());
    adept::get_gradients(v.data(), 4, grad.data() + 9);
    grad[13] = b.get_gradient();
  };
  step();
  step();
  gb::check_gradient("S2/adept", grad, gb::s2_hand_gradient(s2));
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(grad.data());
  }
}
BENCHMARK(s2_adept)->Name("S2/adept")->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();

}  // namespace
