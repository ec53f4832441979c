// SPDX-License-Identifier: MIT
// libFuzzer harness: the JSON model loader parses, builds and sweeps, or throws gradpath::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli/model.hpp"

using namespace gradpath;

namespace {
// Sizes, strides and paddings above this are skipped: with every integer this small an
// op's output stays within a few hundred thousand elements, so a run measures the
// loader, not how long a huge broadcast takes.
constexpr std::int64_t max_integer = 16;

bool small_integers(const nlohmann::json& j) {
  if (j.is_number_integer()) return j.get<std::int64_t>() <= max_integer;
  if (j.is_number_unsigned()) return j.get<std::uint64_t>() <= max_integer;
  if (j.is_structured()) {
    for (const nlohmann::json& child : j) {
      if (!small_integers(child)) return false;
    }
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_discarded() && !small_integers(doc)) return 0;
  try {
    const cli::Model model = cli::Model::parse(text, "fuzz.json");
    Tape tape;
    for (const auto& [name, tensor] : model.build(tape)) {
      if (name == model.loss() && tensor.size() == 1) tape.backward(tensor[0]);
    }
  } catch (const Error&) {
  }
  return 0;
}
