// SPDX-License-Identifier: MIT
// 2-D pooling: max_pool2d and avg_pool2d, each one fused tensor node with its backward rule.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "autodiff/tensor.hpp"

namespace gradpath::ops {

struct Pool2dOptions {
  // The ops whose records hold these options (options<Pool2dOptions>(record)).
  static constexpr std::string_view op = "max_pool2d or avg_pool2d";
  std::size_t kernel = 2;                            // square window, kernel x kernel
  std::optional<std::size_t> stride = std::nullopt;  // defaults to the kernel: windows do not overlap
  std::size_t padding = 0;                           // on every side; at most kernel / 2
};

// Shapes: x (H, W) -> (OH, OW), or x (N, C, H, W) -> (N, C, OH, OW), each plane pooled
// on its own; OH = (H + 2 padding - kernel) / stride + 1 (and likewise OW). Errors name
// the op and the shape: wrong rank, kernel 0, stride 0, padding above kernel / 2, a
// kernel larger than the padded input.

// Padded cells never win. Tie rule: the FIRST maximum in row-major window order gets
// the whole gradient (the others get 0), as in the scalar max. A NaN in a window wins
// (the first NaN), so it propagates instead of being silently skipped.
TensorVar max_pool2d(const TensorVar& x, Pool2dOptions options = {}, std::string_view name = {});

// Divides by the full kernel area, padded cells counted as zeros (PyTorch's default,
// count_include_pad): every input in a window gets grad / kernel^2.
TensorVar avg_pool2d(const TensorVar& x, Pool2dOptions options = {}, std::string_view name = {});

}  // namespace gradpath::ops
