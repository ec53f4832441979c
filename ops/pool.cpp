// SPDX-License-Identifier: MIT
// max_pool2d (saves the argmax of every window) and avg_pool2d: forward, then backward.
#include "ops/pool.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "autodiff/second_order.hpp"
#include "ops/tensor.hpp"
#include "ops/threads.hpp"

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
  // As for convolutions: bounded options keep every index sum far inside 64 bits.
  if (g.kernel > Shape::max_dim || g.stride > Shape::max_dim) {
    throw Error(what() + ": kernel " + std::to_string(g.kernel) + " and stride " + std::to_string(g.stride) +
                " must be at most " + std::to_string(Shape::max_dim));
  }
  if (g.padding > g.kernel / 2) {
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
  if (!tape_sized({g.planes, g.out_h, g.out_w})) {
    throw Error(what() + ": kernel " + std::to_string(g.kernel) + ", stride " + std::to_string(g.stride) +
                " and padding " + std::to_string(g.padding) + " give an output of " + std::to_string(g.out_h) + " x " +
                std::to_string(g.out_w) + " per plane, more elements than a tape holds");
  }
  g.out_shape = x.rank() == 4 ? Shape{x[0], x[1], g.out_h, g.out_w} : Shape{g.out_h, g.out_w};
  return g;
}

// Calls visit(output index, input index) for every real (unpadded) cell of every window,
// windows in output order and cells in row-major window order. Only the taps on real
// cells are walked, so a kernel far larger than the input costs what the input does.
template <typename Visit>
void for_each_window_cell(const PoolGeometry& g, Visit visit) {
  // The taps [first, last) of the window starting at padded position `start` that land
  // on cells 0 .. size - 1, and the cell under tap `first`.
  const auto taps = [&](std::size_t start, std::size_t size) {
    const std::size_t first = g.padding > start ? g.padding - start : 0;
    const std::size_t end = g.padding + size > start ? g.padding + size - start : 0;
    return std::array{first, std::max(first, std::min(g.kernel, end)), start + first - g.padding};
  };
  std::size_t k = 0;
  for (std::size_t plane = 0; plane < g.planes; ++plane)
    for (std::size_t oy = 0; oy < g.out_h; ++oy) {
      const auto [ky_first, ky_last, iy_first] = taps(oy * g.stride, g.height);
      for (std::size_t ox = 0; ox < g.out_w; ++ox, ++k) {
        const auto [kx_first, kx_last, ix_first] = taps(ox * g.stride, g.width);
        for (std::size_t ky = ky_first, iy = iy_first; ky < ky_last; ++ky, ++iy)
          for (std::size_t kx = kx_first, ix = ix_first; kx < kx_last; ++kx, ++ix) {
            visit(k, (plane * g.height + iy) * g.width + ix);
          }
      }
    }
}

PoolGeometry record_geometry(std::string_view op, const Tape& tape, const TensorRecord& r) {
  return pool_geometry(op, tape.tensor_args(r)[0].shape, options<Pool2dOptions>(r));
}

// Records the pooled node of x and returns it with the geometry.
struct Pooled {
  TensorVar y;
  PoolGeometry g;
};
Pooled record_pool(const TensorOpInfo& info, const TensorVar& x, const Pool2dOptions& options, std::string_view name,
                   std::size_t saved_per_output) {
  Tape& tape = Tape::of(x.first(), info.name);
  const PoolGeometry g = pool_geometry(info.name, x.shape(), options);
  const TensorArg args[] = {x.arg()};
  return {detail::record(tape, info, g.out_shape, args, name, options, saved_per_output * g.out_shape.size()), g};
}

// ---- max ----------------------------------------------------------------------------

// The index of the first maximum of the window rows [y0, y1) x columns [x0, x1) of one
// plane of row width w (the window clipped to the image, so it holds a real cell). The
// first NaN wins: a NaN input propagates instead of being skipped.
// Branch-free: the running best and its index are selects (cmov) on `take`, because after a
// relu a window's winner is a coin toss between zeros and positives and a branch on it
// mispredicts. `take` is a strict "greater" (a tie keeps the earlier cell, the switches'
// rule) or a NaN cell; once the best is a NaN nothing replaces it, so the first NaN stays.
template <typename T>
std::size_t window_argmax(const T* plane, std::size_t w, std::size_t y0, std::size_t y1, std::size_t x0,
                          std::size_t x1) {
  std::size_t best_at = y0 * w + x0;
  T best = plane[best_at];
  for (std::size_t iy = y0; iy < y1; ++iy) {
    const T* row = plane + iy * w;
    for (std::size_t ix = x0; ix < x1; ++ix) {
      const T v = row[ix];
      const bool take = !(v <= best) & !std::isnan(best);  // greater, or NaN over a number
      best = take ? v : best;
      best_at = take ? iy * w + ix : best_at;
    }
  }
  return best_at;
}

// [first, last) of the input cells a window starting at `start` (in padded coordinates)
// covers, clipped to [0, size).
struct Span {
  std::size_t first, last;
};
Span clip(std::size_t out, const PoolGeometry& g, std::size_t size) {
  const std::size_t start = out * g.stride;  // padded coordinate of the window's first cell
  return {start > g.padding ? start - g.padding : 0, std::min(start + g.kernel - g.padding, size)};
}

// A run of `count` windows wholly inside the image, side by side on one row of windows,
// the first with its top-left cell at `origin`: each tap's compare and select runs across
// the run as a bit-mask select (g++ turned window_argmax's select back into a branch,
// mispredicted on relu output, and the integer division of its index loop cost as much).
// The taps go in row-major window order, so every window makes window_argmax's comparisons
// in its order: the same first maximum, the same first NaN. Writes the run's outputs and
// the plane index of each winner, `origin_at` being the plane index of `origin`.
template <typename T>
void max_pool_run(const T* origin, std::size_t origin_at, const PoolGeometry& g, std::size_t count, T* y,
                  double* argmax) {
  // Lanes as wide as T; a cell's offset in its window is below the plane size, which a
  // tape's 2^32 elements bound.
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr std::size_t chunk = 64;
  T best[chunk];
  Bits best_offset[chunk];  // of the winning cell from the window's top-left cell
  const std::size_t k = g.kernel, s = g.stride, w = g.width;
  for (std::size_t start = 0; start < count; start += chunk) {
    const std::size_t n = std::min(chunk, count - start);
    const T* first = origin + start * s;
    for (std::size_t j = 0; j < n; ++j) {
      best[j] = first[j * s];
      best_offset[j] = 0;
    }
    for (std::size_t t = 1; t < k * k; ++t) {
      const auto offset = static_cast<Bits>(t / k * w + t % k);
      const T* cell = first + offset;
      for (std::size_t j = 0; j < n; ++j) {
        const T v = cell[j * s];
        // All ones when v is greater, or a NaN over a number: a bit-mask select, no branch.
        const Bits take = Bits{0} - (static_cast<Bits>(!(v <= best[j])) & static_cast<Bits>(!std::isnan(best[j])));
        best[j] = std::bit_cast<T>(
            static_cast<Bits>((take & std::bit_cast<Bits>(v)) | (~take & std::bit_cast<Bits>(best[j]))));
        best_offset[j] = (take & offset) | (~take & best_offset[j]);
      }
    }
    for (std::size_t j = 0; j < n; ++j) {
      y[start + j] = best[j];
      argmax[start + j] = static_cast<double>(origin_at + (start + j) * s + best_offset[j]);
    }
  }
}

// The windows 2x2 at stride 2 (the default pool) of `rows` runs of `count` windows each,
// run r starting 2 r `width` cells below `origin`, their outputs contiguous (`rows` > 1
// only for runs that are whole output rows). Each window's two columns first, top
// against bottom, a contiguous pass over both rows; then each window's two column
// winners, in one pass over as many whole rows as fit in a chunk, so a small image's
// short rows still make long vector loops. The same winner as window_argmax: the first
// NaN in row-major window order, else the first maximum; of two column winners that tie
// (or are both NaN) the one from the upper row comes first, the left one on the same row.
template <typename T>
void max_pool_rows_2x2(const T* origin, std::size_t origin_at, std::size_t width, std::size_t count, std::size_t rows,
                       T* y, double* argmax) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  const auto select = [](Bits mask, T a, T b) {  // a where mask is all ones, else b
    return std::bit_cast<T>(static_cast<Bits>((mask & std::bit_cast<Bits>(a)) | (~mask & std::bit_cast<Bits>(b))));
  };
  constexpr std::size_t chunk = 256;  // windows per pass
  T column_best[2 * chunk];
  Bits column_at[2 * chunk];  // the column winner's cell, counted from origin
  const std::size_t rows_per_pass = std::max<std::size_t>(1, chunk / count), cols_per_pass = std::min(count, chunk);
  const auto row_offset = static_cast<Bits>(width);
  for (std::size_t r0 = 0; r0 < rows; r0 += rows_per_pass) {
    for (std::size_t c0 = 0; c0 < count; c0 += cols_per_pass) {
      const std::size_t nr = std::min(rows_per_pass, rows - r0), nc = std::min(cols_per_pass, count - c0);
      for (std::size_t r = 0; r < nr; ++r) {
        const auto top_at = static_cast<Bits>(2 * (r0 + r) * width + 2 * c0);
        const T* top = origin + top_at;
        const T* bottom = top + width;
        T* best = column_best + 2 * r * nc;
        Bits* at = column_at + 2 * r * nc;
        for (std::size_t i = 0; i < 2 * nc; ++i) {
          const Bits take =
              Bits{0} - (static_cast<Bits>(!(bottom[i] <= top[i])) & static_cast<Bits>(!std::isnan(top[i])));
          best[i] = select(take, bottom[i], top[i]);
          at[i] = top_at + static_cast<Bits>(i) + (take & row_offset);
        }
      }
      // Either nr is 1 or the runs are whole rows (nc == count): the outputs are contiguous.
      T* out = y + r0 * count + c0;
      double* out_at = argmax + r0 * count + c0;
      for (std::size_t j = 0; j < nr * nc; ++j) {
        const T left = column_best[2 * j], right = column_best[2 * j + 1];
        const bool left_nan = std::isnan(left), right_nan = std::isnan(right);
        const bool upper = column_at[2 * j + 1] <= column_at[2 * j];  // right from the top, left from the bottom
        const bool greater = !(right <= left), tie = right == left;
        const bool right_wins =
            (right_nan & (!left_nan | upper)) | (!right_nan & !left_nan & (greater | (tie & upper)));
        const Bits take = Bits{0} - static_cast<Bits>(right_wins);
        out[j] = select(take, right, left);
        out_at[j] = static_cast<double>(origin_at + ((take & column_at[2 * j + 1]) | (~take & column_at[2 * j])));
      }
    }
  }
}

// The outputs [first, last) along an axis of `size` input cells whose windows need no clipping.
Span inside_windows(const PoolGeometry& g, std::size_t size, std::size_t outputs) {
  const std::size_t first = std::min((g.padding + g.stride - 1) / g.stride, outputs);
  const std::size_t last =
      g.padding + size >= g.kernel ? std::min((g.padding + size - g.kernel) / g.stride + 1, outputs) : 0;
  return {first, std::max(first, last)};
}

// One plane per index, on any thread: each writes its own outputs only.
template <typename T>
void max_pool_kernel(const T* x, const PoolGeometry& g, T* y, double* argmax) {
  const std::size_t plane_size = g.height * g.width, plane_out = g.out_h * g.out_w;
  const Span inside_rows = inside_windows(g, g.height, g.out_h), inside_cols = inside_windows(g, g.width, g.out_w);
  auto pool_plane = [&](std::size_t p) {
    const T* plane = x + p * plane_size;
    std::size_t k = p * plane_out;
    const auto clipped = [&](Span rows, std::size_t ox) {  // a window that may be clipped, alone
      const Span cols = clip(ox, g, g.width);
      const std::size_t at = window_argmax(plane, g.width, rows.first, rows.last, cols.first, cols.last);
      y[k + ox] = plane[at];
      argmax[k + ox] = static_cast<double>(p * plane_size + at);
    };
    // 2x2 at stride 2 with no padding and no window clipped: the whole plane in one call.
    if (g.kernel == 2 && g.stride == 2 && g.padding == 0 && inside_rows.last == g.out_h &&
        inside_cols.last == g.out_w) {
      max_pool_rows_2x2(plane, p * plane_size, g.width, g.out_w, g.out_h, y + k, argmax + k);
      return;
    }
    for (std::size_t oy = 0; oy < g.out_h; ++oy, k += g.out_w) {
      const Span rows = clip(oy, g, g.height);
      const bool row_inside = oy >= inside_rows.first && oy < inside_rows.last;
      const Span run = row_inside ? inside_cols : Span{g.out_w, g.out_w};
      for (std::size_t ox = 0; ox < run.first; ++ox) clipped(rows, ox);
      if (run.last > run.first) {
        const std::size_t origin_at = rows.first * g.width + run.first * g.stride - g.padding;
        if (g.kernel == 2 && g.stride == 2) {
          max_pool_rows_2x2(plane + origin_at, p * plane_size + origin_at, g.width, run.last - run.first, 1,
                            y + k + run.first, argmax + k + run.first);
        } else {
          max_pool_run(plane + origin_at, p * plane_size + origin_at, g, run.last - run.first, y + k + run.first,
                       argmax + k + run.first);
        }
      }
      for (std::size_t ox = run.last; ox < g.out_w; ++ox) clipped(rows, ox);
    }
  };
  detail::parallel_for(g.planes, plane_out * g.kernel * g.kernel, pool_plane);
}

void max_pool2d_backward(Tape& tape, const TensorRecord& r);
void max_pool2d_switches(const Tape& tape, const TensorRecord& r, std::vector<Switch>& out);
bool max_pool2d_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out);
void max_pool2d_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents);
constexpr TensorOpInfo max_pool2d_info{"max_pool2d",         &max_pool2d_backward, &max_pool2d_switches,
                                       &max_pool2d_symbolic, &max_pool2d_tangent,  &zero_curvature};

}  // namespace

TensorVar max_pool2d(const TensorVar& x, Pool2dOptions options, std::string_view name) {
  const Pooled p = record_pool(max_pool2d_info, x, options, name, 1);
  Tape& tape = x.tape();
  detail::dispatch(p.y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    max_pool_kernel(detail::values<T>(tape) + x.offset(), p.g, detail::values<T>(tape) + p.y.offset(),
                    tape.saved(tape.tensor_records().back()).data());
  });
  return p.y;
}

namespace {

void max_pool2d_backward(Tape& tape, const TensorRecord& r) {
  const std::span<const double> argmax = tape.saved(r);
  detail::dispatch(r.dtype, [&](auto zero) {
    using T = decltype(zero);
    T* dx = detail::operand_grads<T>(tape, tape.tensor_args(r)[0]);
    if (dx == nullptr) return;
    const T* dy = detail::grads<T>(tape) + r.output;
    // A plane's windows pick cells of that plane only: planes may run on any thread.
    const std::size_t plane_out = r.shape[r.shape.rank() - 2] * r.shape[r.shape.rank() - 1];
    auto plane = [&](std::size_t p) {
      for (std::size_t k = p * plane_out; k < (p + 1) * plane_out; ++k)
        dx[static_cast<std::size_t>(argmax[k])] += dy[k];
    };
    detail::parallel_for(argmax.size() / plane_out, plane_out, plane);
  });
}

// Each output is its window's largest cell (the saved argmax): its tangent is that cell's.
void max_pool2d_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents) {
  const std::span<const double> argmax = tape.saved(r);
  const double* tx = tangents.data() + tape.tensor_args(r)[0].offset;
  for (std::size_t k = 0; k < argmax.size(); ++k) tangents[r.output + k] = tx[static_cast<std::size_t>(argmax[k])];
}

// Each window's branch is which of its cells is the largest.
void max_pool2d_switches(const Tape& tape, const TensorRecord& r, std::vector<Switch>& out) {
  if (r.dtype == DType::f32) return;
  const PoolGeometry g = record_geometry("max_pool2d", tape, r);
  const Slot x = tape.tensor_args(r)[0].offset;
  std::vector<std::vector<Slot>> windows(g.out_shape.size());
  for_each_window_cell(g, [&](std::size_t k, std::size_t i) { windows[k].push_back(x + static_cast<Slot>(i)); });
  // The first largest cell wins (window_argmax): a cell beats the cells before it and
  // ties or beats those after it. Ties are common after a relu, whose zeros are exact.
  for (std::size_t k = 0; k < windows.size(); ++k) {
    Switch s{r.node, k, {}};
    for (std::size_t w = 0; w < windows[k].size(); ++w) {
      Branch b;
      for (std::size_t o = 0; o < windows[k].size(); ++o) {
        if (o != w) b.conditions.push_back({windows[k][w], windows[k][o], o > w});
      }
      s.branches.push_back(std::move(b));
    }
    out.push_back(std::move(s));
  }
}
// The partial of a window's output with respect to a cell is 1 where that cell wins and
// 0 elsewhere: written as the derivative itself, ∂Z1/∂R5, which a formula may name.
bool max_pool2d_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out) {
  if (r.dtype == DType::f32) return false;
  const std::string z = tape.slot_name(r.output + static_cast<Slot>(e));
  if (z.empty()) return false;
  const PoolGeometry g = record_geometry("max_pool2d", tape, r);
  const Slot x = tape.tensor_args(r)[0].offset;
  bool named = true;
  for_each_window_cell(g, [&](std::size_t k, std::size_t i) {
    if (k != e) return;
    const std::string cell = tape.slot_name(x + static_cast<Slot>(i));
    named &= !cell.empty();
    out.push_back({x + static_cast<Slot>(i), 1.0, {"∂" + z + "/∂" + cell}});
  });
  return named;
}

// ---- average --------------------------------------------------------------------------

template <typename T>
void avg_pool_kernel(const T* x, const PoolGeometry& g, T* y) {
  const T area = static_cast<T>(g.kernel * g.kernel);
  const std::size_t n = g.out_shape.size();
  std::fill_n(y, n, T(0));
  for_each_window_cell(g, [&](std::size_t k, std::size_t i) { y[k] += x[i]; });
  for (std::size_t k = 0; k < n; ++k) y[k] /= area;
}

void avg_pool2d_backward(Tape& tape, const TensorRecord& r);
bool avg_pool2d_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out);
void avg_pool2d_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents);
constexpr TensorOpInfo avg_pool2d_info{"avg_pool2d",         &avg_pool2d_backward, nullptr,
                                       &avg_pool2d_symbolic, &avg_pool2d_tangent,  &zero_curvature};

}  // namespace

TensorVar avg_pool2d(const TensorVar& x, Pool2dOptions options, std::string_view name) {
  const Pooled p = record_pool(avg_pool2d_info, x, options, name, 0);
  Tape& tape = x.tape();
  detail::dispatch(p.y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    avg_pool_kernel(detail::values<T>(tape) + x.offset(), p.g, detail::values<T>(tape) + p.y.offset());
  });
  return p.y;
}

namespace {

void avg_pool2d_backward(Tape& tape, const TensorRecord& r) {
  const PoolGeometry g = record_geometry("avg_pool2d", tape, r);
  detail::dispatch(r.dtype, [&](auto zero) {
    using T = decltype(zero);
    T* dx = detail::operand_grads<T>(tape, tape.tensor_args(r)[0]);
    if (dx == nullptr) return;
    const T* dy = detail::grads<T>(tape) + r.output;
    const T area = static_cast<T>(g.kernel * g.kernel);
    for_each_window_cell(g, [&](std::size_t k, std::size_t i) { dx[i] += dy[k] / area; });
  });
}

// Linear: the tangent is the average pool of the tangents.
void avg_pool2d_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents) {
  avg_pool_kernel(tangents.data() + tape.tensor_args(r)[0].offset, record_geometry("avg_pool2d", tape, r),
                  tangents.data() + r.output);
}

// Each cell of the window with 1/area (padding counts in the area, as in the forward).
bool avg_pool2d_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out) {
  if (r.dtype == DType::f32) return false;
  const PoolGeometry g = record_geometry("avg_pool2d", tape, r);
  const Slot x = tape.tensor_args(r)[0].offset;
  const double area = static_cast<double>(g.kernel * g.kernel);
  for_each_window_cell(g, [&](std::size_t k, std::size_t i) {
    if (k == e) out.push_back({x + static_cast<Slot>(i), 1.0 / area, {}});
  });
  return true;
}

}  // namespace

}  // namespace gradpath::ops
