// SPDX-License-Identifier: MIT
// libFuzzer harness: the JSON model loader parses, builds, sweeps and draws, or throws
// gradpath::Error. Every option takes any integer the input holds: the tape's memory
// limit, set as the command sets it (GRADPATH_MEMORY_LIMIT, read by
// cli::memory_limit_bytes), is what keeps a huge padding or broadcast from allocating
// gigabytes, exactly as it does for `gradpath grad`.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string_view>

#include "cli/model.hpp"
#include "graph/graph.hpp"

using namespace gradpath;

// 64 MiB per tape: well inside libFuzzer's -rss_limit_mb with ASan's overhead, and
// enough for every op to run on inputs of a few thousand elements.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("GRADPATH_MEMORY_LIMIT", "64", 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const cli::Model model = cli::Model::parse(text, "fuzz.json");
    Tape tape;
    tape.set_memory_limit(cli::memory_limit_bytes(std::nullopt));
    for (const auto& [name, tensor] : model.build(tape)) {
      if (name == model.loss() && tensor.size() == 1) tape.backward(tensor[0]);
    }
    // Drawing is linear but slow under ASan: graphs up to 20,000 nodes (the command
    // draws up to 200,000).
    if (tape.node_count() <= 20000) {
      std::ostringstream dot;
      graph::write_dot(dot, graph::view(tape));
    }
  } catch (const Error&) {
  }
  return 0;
}
