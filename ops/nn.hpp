// SPDX-License-Identifier: MIT
// Network layers and losses: dense, softmax, log_softmax, squared errors, cross-entropy.
#pragma once

#include <span>
#include <string_view>

#include "ops/tensor.hpp"

namespace gradpath::ops {

// Dense layer y = x W^T + b, with W laid out (out, in) as in PyTorch's nn.Linear:
//   x (in) or (batch, in), W (out, in), b (out)  ->  y (out) or (batch, out),
// and any leading axes of x are batch axes: x (n, t, in) -> y (n, t, out).
// W of shape (in) is a single output unit: y is rank 0 for x (in) and (batch) for
// x (batch, in), and b is one value (a scalar Var, or a tensor of shape [] or [1]).
// One GEMM forward; backward is dX += dY W, dW += dY^T X, db += sum over the batch of dY.
TensorVar dense(const TensorVar& x, const TensorVar& w, const TensorVar& b, std::string_view name = {});
TensorVar dense(const TensorVar& x, const TensorVar& w, const Var& b, std::string_view name = {});
TensorVar dense(const TensorVar& x, const TensorVar& w, std::string_view name = {});  // no bias

// Along the last axis, shifted by the row maximum so that large inputs do not overflow.
// A rank-0 x is one class: softmax 1 and log_softmax 0, grad 0 (as in PyTorch).
TensorVar softmax(const TensorVar& x, std::string_view name = {});
TensorVar log_softmax(const TensorVar& x, std::string_view name = {});

// Losses: one rank-0 node each, a root for backward(). The target is a tensor of y's
// shape, or anything that broadcasts to it (a scalar Var, a constant).
// sum((y - t)^2) / 2, the seed note's L = (y - t)^2 / 2: dL/dy = y - t.
TensorVar half_squared_error(const TensorVar& y, const Operand& target, std::string_view name = {});
// mean((y - t)^2) over the elements of y.
TensorVar mse(const TensorVar& y, const Operand& target, std::string_view name = {});
// Mean over the batch of -log softmax(logits)[label], through log-sum-exp: logits (N, C)
// with N labels, or (C) with one; each label in [0, C). dL/dlogits = (softmax - onehot) / N.
TensorVar softmax_cross_entropy(const TensorVar& logits, std::span<const int> labels, std::string_view name = {});

}  // namespace gradpath::ops
