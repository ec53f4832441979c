// SPDX-License-Identifier: MIT
// The core, for `#include <gradpath/tape.hpp>`: Tape, Var, TensorVar, Shape, DType, Error,
// finite-difference checks, forward mode and Hessian-vector products, and anomaly mode
// (autodiff/ in the source tree).
#pragma once

#include "autodiff/anomaly.hpp"
#include "autodiff/gradcheck.hpp"
#include "autodiff/second_order.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "autodiff/tensor.hpp"
