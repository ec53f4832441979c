// SPDX-License-Identifier: MIT
// libFuzzer harness: whole formula files checked against a small network with relu,
// sigmoid and max nodes, through the notation pass, the draws and the diagnosis. Any
// input may only end in reports or a gradpath::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "check/checker.hpp"
#include "ops/scalar.hpp"

using namespace gradpath;

namespace {
void build(Tape& tape) {
  const Var x1 = tape.input(0.5, "x1"), x2 = tape.input(-1.0, "x2"), t = tape.input(0.3, "t");
  const Var w1 = tape.param(0.8, "w1"), w2 = tape.param(-0.4, "w2"), v = tape.param(1.2, "v");
  const Var z1 = (w1 * x1 + w2 * x2).named("z1"), z2 = (w2 * x1 - w1 * x2).named("z2");
  const Var h1 = relu(z1).named("h1"), h2 = sigmoid(z2).named("h2");
  const Var y = (v * max(h1, h2)).named("y");
  ((y - t) * (y - t) * 0.5).named("L");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check::CheckOptions options;
  options.redraws = 2;
  try {
    const std::vector<check::Report> reports = check::check_text(&build, text, options);
    (void)check::text(reports);
    (void)check::json(reports).dump();
  } catch (const Error&) {
  }
  return 0;
}
