// SPDX-License-Identifier: MIT
// Everything gradpath offers, for `#include <gradpath/gradpath.hpp>`. The parts have their
// own headers: <gradpath/tape.hpp>, <gradpath/ops.hpp>, <gradpath/graph.hpp>,
// <gradpath/check.hpp>, <gradpath/optim.hpp>, <gradpath/checkpoint.hpp>.
//
// Note [Header layout]: the source tree keeps one directory per layer (autodiff/ ops/
// graph/ check/); these forwarding headers are the public names. Installed, the layers
// sit under include/gradpath/ and include each other by relative paths
// (cmake/install_headers.cmake rewrites them), so a user's own ops/ or graph/ directory
// can never be picked up in their place; the only include directory is include/.
#pragma once

#include "check.hpp"
#include "checkpoint.hpp"
#include "graph.hpp"
#include "ops.hpp"
#include "optim.hpp"
#include "tape.hpp"
