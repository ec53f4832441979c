// SPDX-License-Identifier: MIT
// The Boost.Graph view of a tape, for `#include <gradpath/graph.hpp>`: topological order,
// paths, cuts, branches, DOT (graph/ in the source tree).
#pragma once

#include "graph/branches.hpp"
#include "graph/graph.hpp"
#include "tape.hpp"
