// SPDX-License-Identifier: MIT
// The CoDiPack peer for S1 and S2 with codi::RealReverse (Jacobian tape, linear index
// manager), written as CoDiPack's tutorials do: setActive, registerInput, the algorithm
// (each output one expression of nine products, one statement), registerOutput,
// setPassive, seed, evaluate, read the gradients, reset. Built only when CODIPACK_DIR is set.
#include <benchmark/benchmark.h>

#include <codi.hpp>
#include <vector>

#include "cases.hpp"

namespace {

namespace gb = gradpath::bench;
using Real = codi::RealReverse;

void s1_codipack(benchmark::State& state) {
  const gb::S1 s1(static_cast<std::size_t>(state.range(0)));
  Real::Tape& tape = Real::getTape();
  std::vector<Real> w(9), a(s1.image.size());
  std::vector<double> grad(s1.gradients());
  double memory = 0.0;
  const auto step = [&] {
    tape.setActive();
    for (std::size_t i = 0; i < 9; ++i) {
      w[i] = s1.filter[i];
      tape.registerInput(w[i]);
    }
    for (std::size_t j = 0; j < a.size(); ++j) {
      a[j] = s1.image[j];
      tape.registerInput(a[j]);
    }
    Real loss = 0.0;
    for (std::size_t k = 0; k < s1.outputs; ++k) {
      const Real z = gb::nine_products(w.data(), &a[s1.corner(k)], s1.taps);
      loss += z * z;
    }
    loss *= 0.5;
    tape.registerOutput(loss);
    tape.setPassive();
    loss.setGradient(1.0);
    tape.evaluate();
    for (std::size_t i = 0; i < 9; ++i) grad[i] = w[i].getGradient();
    for (std::size_t j = 0; j < a.size(); ++j) grad[9 + j] = a[j].getGradient();
    memory = tape.getTapeValues().getUsedMemorySize();
    tape.reset();
  };
  step();
  step();  // the second recording on the same tape, as every timed one
  gb::check_gradient("S1/codipack", grad, gb::s1_hand_gradient(s1));
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(grad.data());
  }
  state.counters["ops"] = s1.ops();
  // TapeValues' "used memory": statement and Jacobian data plus the adjoint vector.
  state.counters["bytes_per_op"] = memory / s1.ops();
}
BENCHMARK(s1_codipack)
    ->Name("S1/codipack")
    ->ArgName("side")
    ->ArgsProduct({gb::s1_sides})
    ->Unit(benchmark::kMicrosecond)
    ->MeasureProcessCPUTime();

void s2_codipack(benchmark::State& state) {
  const gb::S2 s2;
  Real::Tape& tape = Real::getTape();
  std::vector<Real> w(9), v(4), a(s2.image.size());
  Real b;
  std::vector<double> grad(gb::S2::gradients);
  const auto step = [&] {
    tape.setActive();
    for (std::size_t i = 0; i < 9; ++i) {
      w[i] = s2.filter[i];
      tape.registerInput(w[i]);
    }
    for (std::size_t k = 0; k < 4; ++k) {
      v[k] = s2.dense[k];
      tape.registerInput(v[k]);
    }
    b = s2.bias;
    tape.registerInput(b);
    for (std::size_t j = 0; j < a.size(); ++j) {  // on the tape, as gradpath's tape.input and Adept's adouble
      a[j] = s2.image[j];
      tape.registerInput(a[j]);
    }
    Real y = b;
    for (std::size_t k = 0; k < 4; ++k) y += v[k] * gb::nine_products(w.data(), &a[gb::s2_corner(k)], gb::s2_taps);
    Real loss = 0.5 * (y - s2.target) * (y - s2.target);
    tape.registerOutput(loss);
    tape.setPassive();
    loss.setGradient(1.0);
    tape.evaluate();
    for (std::size_t i = 0; i < 9; ++i) grad[i] = w[i].getGradient();
    for (std::size_t k = 0; k < 4; ++k) grad[9 + k] = v[k].getGradient();
    grad[13] = b.getGradient();
    tape.reset();
  };
  step();
  step();
  gb::check_gradient("S2/codipack", grad, gb::s2_hand_gradient(s2));
  for (auto _ : state) {
    step();
    benchmark::DoNotOptimize(grad.data());
  }
}
BENCHMARK(s2_codipack)->Name("S2/codipack")->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();

}  // namespace
