// SPDX-License-Identifier: MIT
// The checker of hand derivations and its formula language, for `#include <gradpath/check.hpp>`
// (check/ in the source tree).
#pragma once

#include "check/checker.hpp"
#include "check/formula.hpp"
#include "graph.hpp"
