// SPDX-License-Identifier: MIT
// Saving and loading parameters, for `#include <gradpath/checkpoint.hpp>`.
#pragma once

#include "ops/checkpoint.hpp"
