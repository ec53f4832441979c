// SPDX-License-Identifier: MIT
// max_pool2d (saves the argmax of every window) and avg_pool2d: forward, then backward.
#include "ops/pool.hpp"

#include <cmath>
#include <cstdint>
#include <string>

namespace gradpath::ops {

namespace {

struct PoolGeometry {
  std::size_t planes, height, width;  // N C planes of H x W
  std::size_t kernel, stride, padding, out_h, out_w;
  Shape out_shape;
};

PoolGeometry pool_geometry(std::string_view op, const Shape& x, const Pool2dOptions& options) {
  // Built only when an error is thrown: a training step must not allocate.
  const auto what = [&] { return std::string(op) + ": input " + x.str(); };
  if (x.rank() != 2 && x.rank() != 4) throw Error(what() + ": expected (H, W) or (N, C, H, W)");
  PoolGeometry g{};
  g.planes = x.rank() == 4 ? x[0] * x[1] : 1;
  g.height = x[x.rank() - 2];
  g.width = x[x.rank() - 1];
  g.kernel = options.kernel;
  g.stride = options.stride.value_or(options.kernel);
  g.padding = options.padding;
  if (g.kernel == 0) throw Error(what() + ": kernel must be at least 1");
  if (g.stride == 0) throw Error(what() + ": stride must be at least 1");
  if (2 * g.padding > g.kernel) {
    throw Error(what() + ": padding " + std::to_string(g.padding) + " is more than half the kernel " +
                std::to_string(g.kernel));
  }
  const std::size_t padded_h = g.height + 2 * g.padding, padded_w = g.width + 2 * g.padding;
  if (g.kernel > padded_h || g.kernel > padded_w) {
    throw Error(what() + ": kernel " + std::to_string(g.kernel) + " is larger than the input padded by " +
                std::to_string(g.padding) + " (" + std::to_string(padded_h) + " x " + std::to_string(padded_w) + ")");
  }
  g.out_h = (padded_h - g.kernel) / g.stride + 1;
  g.out_w = (padded_w - g.kernel) / g.stride + 1;
  g.out_shape = x.rank() == 4 ? Shape{x[0], x[1], g.out_h, g.out_w} : Shape{g.out_h, g.out_w};
  return g;
}

// Calls visit(output index, input index) for every real (unpadded) cell of every window,
// windows in output order and cells in row-major window order.
template <typename Visit>
void for_each_window_cell(const PoolGeometry& g, Visit visit) {
  const auto pad = static_cast<std::ptrdiff_t>(g.padding);
  std::size_t k = 0;
  for (std::size_t plane = 0; plane < g.planes; ++plane)
    for (std::size_t oy = 0; oy < g.out_h; ++oy)
      for (std::size_t ox = 0; ox < g.out_w; ++ox, ++k)
        for (std::size_t ky = 0; ky < g.kernel; ++ky) {
          const std::ptrdiff_t iy = static_cast<std::ptrdiff_t>(oy * g.stride + ky) - pad;
          if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(g.height)) continue;
          for (std::size_t kx = 0; kx < g.kernel; ++kx) {
            const std::ptrdiff_t ix = static_cast<std::ptrdiff_t>(ox * g.stride + kx) - pad;
            if (ix < 0 || ix >= static_cast<std::ptrdiff_t>(g.width)) continue;
            visit(k, (plane * g.height + static_cast<std::size_t>(iy)) * g.width + static_cast<std::size_t>(ix));
          }
        }
}

std::array<std::int64_t, 8> pool_attrs(const PoolGeometry& g) {
  return {static_cast<std::int64_t>(g.kernel), static_cast<std::int64_t>(g.stride),
          static_cast<std::int64_t>(g.padding)};
}
PoolGeometry record_geometry(std::string_view op, const Tape& tape, const TensorRecord& r) {
  return pool_geometry(op, tape.tensor_args(r)[0].shape,
                       {static_cast<std::size_t>(r.attrs[0]), static_cast<std::size_t>(r.attrs[1]),
                        static_cast<std::size_t>(r.attrs[2])});
}

// Records the pooled node of x and returns it with the geometry.
struct Pooled {
  NodeId node;
  PoolGeometry g;
};
Pooled record_pool(const TensorOpInfo& info, const TensorVar& x, const Pool2dOptions& options, std::string_view name,
                   std::size_t saved_per_output) {
  Tape& tape = Tape::of(x.first(), info.name);
  const PoolGeometry g = pool_geometry(info.name, x.shape(), options);
  const TensorArg args[] = {x.arg()};
  const NodeId node = tape.record_tensor(info, g.out_shape, args, pool_attrs(g), saved_per_output * g.out_shape.size());
  if (!name.empty()) tape.set_name(node, name);
  return {node, g};
}

TensorVar as_tensor(const Tape& tape, const Pooled& p) {
  return TensorVar(tape.var_at(tape.offset(p.node)), p.g.out_shape);
}

// ---- max ----------------------------------------------------------------------------

template <typename T>
void max_pool_kernel(const T* x, const PoolGeometry& g, T* y, double* argmax) {
  for (std::size_t k = 0; k < g.out_shape.size(); ++k) argmax[k] = -1.0;
  for_each_window_cell(g, [&](std::size_t k, std::size_t i) {
    const T v = x[i];
    // Strict > keeps the first maximum; a NaN takes the window unless a NaN already has.
    if (argmax[k] < 0 || v > y[k] || (std::isnan(v) && !std::isnan(y[k]))) {
      y[k] = v;
      argmax[k] = static_cast<double>(i);
    }
  });
}

void max_pool2d_backward(Tape& tape, const TensorRecord& r);
constexpr TensorOpInfo max_pool2d_info{"max_pool2d", &max_pool2d_backward};

TensorVar max_pool2d_forward(const TensorVar& x, const Pool2dOptions& options, std::string_view name) {
  const Pooled p = record_pool(max_pool2d_info, x, options, name, 1);
  Tape& tape = x.tape();
  max_pool_kernel(tape.values().data() + x.offset(), p.g, tape.values().data() + tape.offset(p.node),
                  tape.saved(tape.tensor_record(p.node)).data());
  return as_tensor(tape, p);
}

void max_pool2d_backward(Tape& tape, const TensorRecord& r) {
  const std::span<const double> argmax = tape.saved(r);
  double* dx = tape.grads().data() + tape.tensor_args(r)[0].offset;
  const double* dy = tape.grads().data() + tape.offset(r.node);
  for (std::size_t k = 0; k < argmax.size(); ++k) dx[static_cast<std::size_t>(argmax[k])] += dy[k];
}

// ---- average --------------------------------------------------------------------------

template <typename T>
void avg_pool_kernel(const T* x, const PoolGeometry& g, T* y) {
  const T area = static_cast<T>(g.kernel * g.kernel);
  for (std::size_t k = 0; k < g.out_shape.size(); ++k) y[k] = T(0);
  for_each_window_cell(g, [&](std::size_t k, std::size_t i) { y[k] += x[i]; });
  for (std::size_t k = 0; k < g.out_shape.size(); ++k) y[k] /= area;
}

void avg_pool2d_backward(Tape& tape, const TensorRecord& r);
constexpr TensorOpInfo avg_pool2d_info{"avg_pool2d", &avg_pool2d_backward};

TensorVar avg_pool2d_forward(const TensorVar& x, const Pool2dOptions& options, std::string_view name) {
  const Pooled p = record_pool(avg_pool2d_info, x, options, name, 0);
  Tape& tape = x.tape();
  avg_pool_kernel(tape.values().data() + x.offset(), p.g, tape.values().data() + tape.offset(p.node));
  return as_tensor(tape, p);
}

void avg_pool2d_backward(Tape& tape, const TensorRecord& r) {
  const PoolGeometry g = record_geometry("avg_pool2d", tape, r);
  double* dx = tape.grads().data() + tape.tensor_args(r)[0].offset;
  const double* dy = tape.grads().data() + tape.offset(r.node);
  const double area = static_cast<double>(g.kernel * g.kernel);
  for_each_window_cell(g, [&](std::size_t k, std::size_t i) { dx[i] += dy[k] / area; });
}

}  // namespace

TensorVar max_pool2d(const TensorVar& x, Pool2dOptions options, std::string_view name) {
  return max_pool2d_forward(x, options, name);
}
TensorVar avg_pool2d(const TensorVar& x, Pool2dOptions options, std::string_view name) {
  return avg_pool2d_forward(x, options, name);
}

}  // namespace gradpath::ops
