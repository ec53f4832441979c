// SPDX-License-Identifier: MIT
// 2-D convolution two ways: conv2d_mac (recorded scalar multiply-adds, the oracle) and
// conv2d (one fused tensor node: im2col + GEMM). Both give the same values and grads.
#pragma once

#include <cstddef>
#include <string_view>

#include "autodiff/tensor.hpp"

namespace gradpath::ops {

struct Conv2dOptions {
  // The op whose records hold these options (options<Conv2dOptions>(record)).
  static constexpr std::string_view op = "conv2d";
  std::size_t stride = 1;
  std::size_t padding = 0;  // zeros on every side; any size, as in PyTorch
};

// Shapes, for both ops (cross-correlation, as in PyTorch):
//   x (H, W) with w (kH, kW)               -> (OH, OW)        one image, one channel
//   x (N, C, H, W) with w (O, C, kH, kW)   -> (N, O, OH, OW)
// OH = (H + 2 padding - kH) / stride + 1 (and likewise OW). A bias b has shape (O), or
// rank 0 when there is one output channel, and is added to every output of its channel.
// Errors name the op and the shapes: wrong ranks, channel mismatch, stride 0, a kernel
// larger than the padded input, a bad bias. Padding may reach or pass the kernel size:
// a window made only of padding gives the bias (or 0).

// Output element k is ONE n-ary sum node whose operands are the product nodes w_i * a_j
// of the taps landing on real input (padding taps are omitted), plus the bias element;
// a window of padding only is a sum of the bias alone, or of no operand (value 0).
// All products are recorded first, then all sums, so the outputs are consecutive scalar
// nodes named name1 ... nameN; the whole op is recorded in the scope `name` (or
// "conv2d_mac"). It has no backward rule: the scalar partials are its derivative.
TensorVar conv2d_mac(const TensorVar& x, const TensorVar& w, Conv2dOptions options = {}, std::string_view name = {});
TensorVar conv2d_mac(const TensorVar& x, const TensorVar& w, const TensorVar& b, Conv2dOptions options = {},
                     std::string_view name = {});

// One fused tensor node. Forward: im2col, then one GEMM per image through BLAS.
// Backward: dW += dY cols^T, dX += col2im(W^T dY), db += sum of dY over each channel.
TensorVar conv2d(const TensorVar& x, const TensorVar& w, Conv2dOptions options = {}, std::string_view name = {});
TensorVar conv2d(const TensorVar& x, const TensorVar& w, const TensorVar& b, Conv2dOptions options = {},
                 std::string_view name = {});

namespace detail {
// Every size of one convolution, validated; shared by both ops and the backward rule.
struct Conv2dGeometry {
  std::size_t batch, channels, height, width;    // N, C, H, W
  std::size_t out_channels, kernel_h, kernel_w;  // O, kH, kW
  std::size_t out_h, out_w, stride, padding;
  bool batched;  // x was (N, C, H, W); otherwise (H, W) in and out
  Shape out_shape() const;
};
// `op` names the op in error messages; `bias` is null when there is none.
Conv2dGeometry conv2d_geometry(std::string_view op, const Shape& x, const Shape& w, const Shape* bias,
                               Conv2dOptions options);
}  // namespace detail

}  // namespace gradpath::ops
