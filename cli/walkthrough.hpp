// SPDX-License-Identifier: MIT
// The seed note, run end to end: what `gradpath` with no arguments prints.
#pragma once

#include <optional>
#include <ostream>
#include <string>

namespace gradpath::cli {

// Prints the walkthrough to `out` and writes seed.dot (and seed.svg when Graphviz's
// `dot` is installed) into `out_dir`. Returns the process exit status.
int run_walkthrough(std::ostream& out, const std::optional<std::string>& out_dir);

}  // namespace gradpath::cli
