// SPDX-License-Identifier: MIT
// Every op, for `#include <gradpath/ops.hpp>`: scalar and tensor ops, convolution, pooling,
// layers and losses, optimisers and schedules, initialisers, checkpoints (ops/ in the source tree).
#pragma once

#include "ops/checkpoint.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/optim.hpp"
#include "ops/pool.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"
#include "ops/threads.hpp"
#include "tape.hpp"
