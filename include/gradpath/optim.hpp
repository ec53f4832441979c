// SPDX-License-Identifier: MIT
// Optimisers, learning-rate schedules and initialisers, for `#include <gradpath/optim.hpp>`.
#pragma once

#include "ops/optim.hpp"
