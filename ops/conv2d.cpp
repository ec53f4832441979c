// SPDX-License-Identifier: MIT
// conv2d: one fused tensor node, im2col + GEMM (OpenBLAS) forward, GEMM + col2im backward.
#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "autodiff/second_order.hpp"
#include "ops/conv.hpp"
#include "ops/tensor.hpp"
#include "ops/threads.hpp"

namespace gradpath::ops {

namespace {

using detail::Conv2dGeometry;

// Walks one image's columns (C kH kW, OH OW) a column row at a time: f(entry, begin, end,
// in), the row starting at column entry `entry`, whose entries [begin, end) read the input
// cells in + ox * stride and the rest land on padding. Each column row splits into
// padding, a run of input cells, padding: no test per entry.
template <typename F>
void for_each_column_row(const Conv2dGeometry& g, F f) {
  const auto pad = static_cast<std::ptrdiff_t>(g.padding), stride = static_cast<std::ptrdiff_t>(g.stride);
  const auto width = static_cast<std::ptrdiff_t>(g.width), out_w = static_cast<std::ptrdiff_t>(g.out_w);
  // The first output column whose input column ox * stride + kx - pad is at least `from`.
  const auto first_at = [&](std::ptrdiff_t from, std::ptrdiff_t kx) {
    return std::clamp((from + pad - kx + stride - 1) / stride, std::ptrdiff_t{0}, out_w);
  };
  std::size_t entry = 0;
  for (std::size_t c = 0; c < g.channels; ++c)
    for (std::size_t ky = 0; ky < g.kernel_h; ++ky)
      for (std::size_t kx = 0; kx < g.kernel_w; ++kx) {
        const auto tap_x = static_cast<std::ptrdiff_t>(kx);
        const std::ptrdiff_t in_begin = first_at(0, tap_x), in_end = std::max(in_begin, first_at(width, tap_x));
        for (std::size_t oy = 0; oy < g.out_h; ++oy, entry += g.out_w) {
          const std::ptrdiff_t iy = static_cast<std::ptrdiff_t>(oy * g.stride + ky) - pad;
          const bool row_in = iy >= 0 && iy < static_cast<std::ptrdiff_t>(g.height);
          const std::ptrdiff_t row = (static_cast<std::ptrdiff_t>(c * g.height) + iy) * width + tap_x - pad;
          f(entry, row_in ? in_begin : out_w, row_in ? in_end : out_w, row);
        }
      }
}

// f(i) for i in [begin, end) in blocks of 8, then of 4, then one by one: each block
// compiles to one vector operation. A column row is as short as the output width (14 in a
// small network), and a plain loop would run it all in the scalar tail behind 512-bit
// vectors.
template <typename F>
void for_each_in_blocks(std::ptrdiff_t begin, std::ptrdiff_t end, F f) {
  std::ptrdiff_t i = begin;
  for (; i + 8 <= end; i += 8)
    for (std::ptrdiff_t j = 0; j < 8; ++j) f(i + j);
  if (i + 4 <= end) {
    for (std::ptrdiff_t j = 0; j < 4; ++j) f(i + j);
    i += 4;
  }
  for (; i < end; ++i) f(i);
}

// At stride 1 with as many output columns as input columns (padding (kW - 1) / 2), the
// column plane of tap (c, ky, kx) is input plane c shifted by whole rows and by
// `shift` = kx - padding columns: its rows [first_row, last_row) that read input rows are
// ONE contiguous run of the input, [in_begin, in_end) of plane c, starting at column
// entry `out_at` of the plane. Within it, the |shift| cells per row that wrap into the
// next or previous input row are the ones that land on padding. So im2col and col2im
// move one run per plane instead of one per row: a small image's rows are short.
struct ShiftedPlane {
  std::size_t entry, channel, first_row, last_row;
  std::ptrdiff_t shift, in_begin, in_end, out_at;
};

bool planes_are_shifted_runs(const Conv2dGeometry& g) { return g.stride == 1 && g.out_w == g.width; }

template <typename F>
void for_each_shifted_plane(const Conv2dGeometry& g, F f) {
  const auto pad = static_cast<std::ptrdiff_t>(g.padding), width = static_cast<std::ptrdiff_t>(g.width),
             height = static_cast<std::ptrdiff_t>(g.height), out_h = static_cast<std::ptrdiff_t>(g.out_h);
  std::size_t entry = 0;
  for (std::size_t c = 0; c < g.channels; ++c)
    for (std::size_t ky = 0; ky < g.kernel_h; ++ky)
      for (std::size_t kx = 0; kx < g.kernel_w; ++kx, entry += g.out_h * g.out_w) {
        const std::ptrdiff_t row_shift = static_cast<std::ptrdiff_t>(ky) - pad;  // input row of output row 0
        const std::ptrdiff_t first = std::clamp(-row_shift, std::ptrdiff_t{0}, out_h);
        const std::ptrdiff_t last = std::clamp(height - row_shift, first, out_h);
        const std::ptrdiff_t shift = static_cast<std::ptrdiff_t>(kx) - pad;
        const std::ptrdiff_t start = (first + row_shift) * width + shift, end = (last + row_shift) * width + shift;
        const std::ptrdiff_t in_begin = std::max(start, std::ptrdiff_t{0}), in_end = std::min(end, height * width);
        f(ShiftedPlane{entry, c, static_cast<std::size_t>(first), static_cast<std::size_t>(last), shift, in_begin,
                       std::max(in_begin, in_end), first * width + (in_begin - start)});
      }
}

// Zeroes the cells of a shifted plane's rows that wrapped past the input row's ends: a
// column at a time down the rows, as a fill per row would be a memset call per cell.
template <typename T>
void zero_wrapped_cells(T* plane, const ShiftedPlane& s, std::size_t width) {
  const std::size_t wrapped = std::min(static_cast<std::size_t>(s.shift < 0 ? -s.shift : s.shift), width);
  const std::size_t first_column = s.shift < 0 ? 0 : width - wrapped;
  for (std::size_t column = first_column; column < first_column + wrapped; ++column)
    for (std::size_t oy = s.first_row; oy < s.last_row; ++oy) plane[oy * width + column] = T(0);
}

// One image (C, H, W) unfolded to columns: 0 where the tap lands on padding; at stride 1
// a column row's input cells are a plain copy.
template <typename T>
void im2col(const T* image, const Conv2dGeometry& g, T* cols) {
  if (planes_are_shifted_runs(g)) {
    for_each_shifted_plane(g, [&](const ShiftedPlane& s) {
      T* plane = cols + s.entry;
      const T* input = image + s.channel * g.height * g.width;
      std::fill(plane, plane + s.first_row * g.out_w, T(0));
      std::fill(plane + s.last_row * g.out_w, plane + g.out_h * g.out_w, T(0));
      std::copy(input + s.in_begin, input + s.in_end, plane + s.out_at);
      zero_wrapped_cells(plane, s, g.out_w);
    });
    return;
  }
  const auto stride = static_cast<std::ptrdiff_t>(g.stride);
  for_each_column_row(g, [&](std::size_t entry, std::ptrdiff_t begin, std::ptrdiff_t end, std::ptrdiff_t in) {
    T* row = cols + entry;
    std::fill(row, row + begin, T(0));
    if (stride == 1) {
      std::copy(image + in + begin, image + in + end, row + begin);
    } else {
      for (std::ptrdiff_t ox = begin; ox < end; ++ox) row[ox] = image[in + ox * stride];
    }
    std::fill(row + end, row + g.out_w, T(0));
  });
}

// The adjoint of im2col: adds every column entry back onto the input cell it came from.
// Shifted planes zero their wrapped cells in `cols` (scratch) and then add one run; other
// column rows add a run at stride 1, in vector blocks.
template <typename T>
void col2im_add(T* cols, const Conv2dGeometry& g, T* image) {
  if (planes_are_shifted_runs(g)) {
    for_each_shifted_plane(g, [&](const ShiftedPlane& s) {
      T* plane = cols + s.entry;
      zero_wrapped_cells(plane, s, g.out_w);
      T* cells = image + s.channel * g.height * g.width + s.in_begin;
      const T* run = plane + s.out_at;
      for (std::ptrdiff_t i = 0; i < s.in_end - s.in_begin; ++i) cells[i] += run[i];
    });
    return;
  }
  const auto stride = static_cast<std::ptrdiff_t>(g.stride);
  for_each_column_row(g, [&](std::size_t entry, std::ptrdiff_t begin, std::ptrdiff_t end, std::ptrdiff_t in) {
    const T* row = cols + entry;
    if (stride == 1) {
      T* cells = image + in;
      for_each_in_blocks(begin, end, [&](std::ptrdiff_t ox) { cells[ox] += row[ox]; });
    } else {
      for (std::ptrdiff_t ox = begin; ox < end; ++ox) image[in + ox * stride] += row[ox];
    }
  });
}

// im2col scratch, reused across calls: it only grows, so a steady loop does not allocate.
template <typename T>
struct Scratch {
  std::vector<T> cols, dcols, partials;
  static Scratch& get() {
    thread_local Scratch scratch;
    return scratch;
  }
  T* reserve(std::vector<T>& v, std::size_t n) {
    if (v.size() < n) v.resize(n);
    return v.data();
  }
};

// Sizes of the three matrices per image: W (O x K), cols (K x P), Y (O x P).
struct GemmDims {
  std::size_t o, k, p;
  explicit GemmDims(const Conv2dGeometry& g)
      : o(g.out_channels), k(g.channels * g.kernel_h * g.kernel_w), p(g.out_h * g.out_w) {}
};

// Backward sums dW and db over the images in fixed chunks, each into its own partial on
// any thread: chunks of at least 8 images, so a training batch gives the threads several,
// and no more partials (O x K + O each) than fit in one image's columns (K x P), so they
// cost no more than the im2col buffer the tape's limit already bounds (one partial when
// none fits). Shapes alone decide the chunks: the sums are the same at any thread count.
struct PartialChunks {
  std::size_t count, images;
  PartialChunks(const Conv2dGeometry& g, const GemmDims& d) {
    constexpr std::size_t min_images = 8;
    const std::size_t fit = std::max<std::size_t>(1, d.k * d.p / (d.o * d.k + d.o));
    count = std::min((g.batch + min_images - 1) / min_images, fit);
    images = (g.batch + count - 1) / count;
    count = (g.batch + images - 1) / images;
  }
};

Conv2dGeometry record_geometry(const Tape& tape, const TensorRecord& r) {
  const auto args = tape.tensor_args(r);
  return detail::conv2d_geometry("conv2d", args[0].shape, args[1].shape, args.size() > 2 ? &args[2].shape : nullptr,
                                 options<Conv2dOptions>(r));
}

template <typename T>
void conv2d_forward(const T* x, const T* w, const T* bias, const Conv2dGeometry& g, T* y) {
  const GemmDims d(g);
  auto image = [&](std::size_t n) {
    Scratch<T>& s = Scratch<T>::get();  // each pool thread has its own
    T* cols = s.reserve(s.cols, d.k * d.p);
    T* yn = y + n * d.o * d.p;
    im2col(x + n * g.channels * g.height * g.width, g, cols);
    detail::gemm(false, false, d.o, d.p, d.k, w, cols, yn, T(0), "conv2d");
    if (bias != nullptr) {
      for (std::size_t o = 0; o < d.o; ++o)
        for (std::size_t p = 0; p < d.p; ++p) yn[o * d.p + p] += bias[o];
    }
  };
  detail::parallel_for(g.batch, d.o * d.k * d.p, image);
}

void conv2d_backward(Tape& tape, const TensorRecord& r);
bool conv2d_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out);
void conv2d_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents);
void conv2d_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas);
constexpr TensorOpInfo conv2d_info{"conv2d",         &conv2d_backward, nullptr,
                                   &conv2d_symbolic, &conv2d_tangent,  &conv2d_curvature};

TensorVar conv2d_impl(const TensorVar& x, const TensorVar& w, const TensorVar* b, Conv2dOptions options,
                      std::string_view name) {
  Tape& tape = Tape::of(x.first(), w.first(), "conv2d");
  if (b != nullptr) Tape::of(x.first(), b->first(), "conv2d");
  const Conv2dGeometry g = detail::conv2d_geometry("conv2d", x.shape(), w.shape(), b ? &b->shape() : nullptr, options);
  // The im2col buffers (cols forward, dcols backward: K x P each) live outside the tape,
  // but they are what a large convolution costs most, so the tape's limit bounds them too.
  const GemmDims d(g);
  const auto cols = checked_mul(d.k, d.p);
  const auto bytes =
      cols ? checked_mul(*cols, 2 * (x.dtype() == DType::f32 ? sizeof(float) : sizeof(double))) : std::nullopt;
  if (!bytes || (tape.memory_limit() != 0 && *bytes > tape.memory_limit())) {
    throw CapacityError("conv2d: input " + x.shape().str() + ", filter " + w.shape().str() +
                        ": the im2col buffers need " + (bytes ? std::to_string(*bytes) : "more than 2^64") +
                        " bytes, the limit is " + std::to_string(tape.memory_limit()) +
                        " bytes (Tape::set_memory_limit)");
  }
  const TensorArg args[] = {x.arg(), w.arg(), b ? b->arg() : TensorArg{}};
  const TensorVar y = detail::record(tape, conv2d_info, g.out_shape(), std::span(args, b ? 3 : 2), name, options);
  detail::dispatch(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* values = detail::values<T>(tape);  // read after recording: the arena may have moved
    conv2d_forward(values + x.offset(), values + w.offset(), b ? values + b->offset() : nullptr, g,
                   detail::values<T>(tape) + y.offset());
  });
  return y;
}

}  // namespace

TensorVar conv2d(const TensorVar& x, const TensorVar& w, Conv2dOptions options, std::string_view name) {
  return conv2d_impl(x, w, nullptr, options, name);
}
TensorVar conv2d(const TensorVar& x, const TensorVar& w, const TensorVar& b, Conv2dOptions options,
                 std::string_view name) {
  return conv2d_impl(x, w, &b, options, name);
}

namespace {

// Σ row[0, n) in a fixed order through 16 independent partial sums, which the compiler
// vectorises: one running sum is a chain of dependent adds, the bias grad's whole cost.
template <typename T>
T row_sum(const T* row, std::size_t n) {
  constexpr std::size_t lanes = 16;
  std::array<T, lanes> partial{};
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes)
    for (std::size_t j = 0; j < lanes; ++j) partial[j] += row[i + j];
  for (std::size_t j = 0; i < n; ++i, ++j) partial[j] += row[i];
  T total = 0;
  for (T p : partial) total += p;
  return total;
}

// dX, dW and db from dY, each added into its operand's grads; a null one (no bias, or an
// operand no grad is wanted for) is skipped.
template <typename T>
void conv2d_backward_kernel(const T* x, const T* w, const T* dy, const Conv2dGeometry& g, T* dx, T* dw, T* db) {
  const GemmDims d(g);
  // dX: each image's own cells, so the images may run on any thread.
  auto image_dx = [&](std::size_t n) {
    Scratch<T>& s = Scratch<T>::get();
    T* dcols = s.reserve(s.dcols, d.k * d.p);
    detail::gemm(true, false, d.k, d.p, d.o, w, dy + n * d.o * d.p, dcols, T(0), "conv2d");
    col2im_add(dcols, g, dx + n * g.channels * g.height * g.width);
  };
  if (dx != nullptr) detail::parallel_for(g.batch, d.o * d.k * d.p, image_dx);
  if (dw == nullptr && db == nullptr) return;
  // dW and db: each chunk of images sums into its own partial (dW's O x K, then db's O)
  // on any thread, then the partials add up in chunk order (PartialChunks).
  const PartialChunks chunks(g, d);
  const std::size_t partial_size = d.o * d.k + d.o;
  std::vector<T>& partials = Scratch<T>::get().partials;
  partials.assign(chunks.count * partial_size, T(0));
  auto chunk_sums = [&](std::size_t c) {
    Scratch<T>& s = Scratch<T>::get();
    T* cols = s.reserve(s.cols, d.k * d.p);
    T* pw = partials.data() + c * partial_size;
    T* pb = pw + d.o * d.k;
    for (std::size_t n = c * chunks.images; n < std::min(g.batch, (c + 1) * chunks.images); ++n) {
      const T* dyn = dy + n * d.o * d.p;
      if (dw != nullptr) {
        im2col(x + n * g.channels * g.height * g.width, g, cols);  // recomputed: nothing saved on the tape
        detail::gemm(false, true, d.o, d.k, d.p, dyn, cols, pw, T(1), "conv2d");
      }
      if (db != nullptr) {
        for (std::size_t o = 0; o < d.o; ++o) pb[o] += row_sum(dyn + o * d.p, d.p);
      }
    }
  };
  detail::parallel_for(chunks.count, chunks.images * d.o * d.k * d.p, chunk_sums);
  for (std::size_t c = 0; c < chunks.count; ++c) {
    const T* pw = partials.data() + c * partial_size;
    if (dw != nullptr)
      for (std::size_t i = 0; i < d.o * d.k; ++i) dw[i] += pw[i];
    if (db != nullptr)
      for (std::size_t o = 0; o < d.o; ++o) db[o] += pw[d.o * d.k + o];
  }
}

void conv2d_backward(Tape& tape, const TensorRecord& r) {
  const auto args = tape.tensor_args(r);
  detail::dispatch(r.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* dy = detail::grads<T>(tape) + r.output;
    const Conv2dGeometry g = record_geometry(tape, r);
    const T* values = detail::values<T>(tape);
    conv2d_backward_kernel(values + args[0].offset, values + args[1].offset, dy, g,
                           detail::operand_grads<T>(tape, args[0]), detail::operand_grads<T>(tape, args[1]),
                           args.size() > 2 ? detail::operand_grads<T>(tape, args[2]) : nullptr);
  });
}

// Bilinear in (x, w), linear in b: ẏ = conv(ẋ, w) + ḃ + conv(x, ẇ).
void conv2d_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents) {
  const auto args = tape.tensor_args(r);
  const Conv2dGeometry g = record_geometry(tape, r);
  const double* values = tape.values().data();
  double* ty = tangents.data() + r.output;
  conv2d_forward(tangents.data() + args[0].offset, values + args[1].offset,
                 args.size() > 2 ? tangents.data() + args[2].offset : nullptr, g, ty);
  Scratch<double>& s = Scratch<double>::get();  // dcols: free outside backward, and it only grows
  double* filter_term = s.reserve(s.dcols, r.shape.size());
  conv2d_forward(values + args[0].offset, tangents.data() + args[1].offset, static_cast<const double*>(nullptr), g,
                 filter_term);
  for (std::size_t i = 0; i < r.shape.size(); ++i) ty[i] += filter_term[i];
}

// Bilinear in (x, w), linear in b: the backward kernel with x and w replaced by their
// tangents, ġx += convᵀ(ẇ, ḡ), ġw += ḡ ⋆ ẋ, and no bias term.
void conv2d_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas) {
  const auto args = tape.tensor_args(r);
  double* gt = arenas.grad_tangents.data();
  conv2d_backward_kernel(arenas.tangents.data() + args[0].offset, arenas.tangents.data() + args[1].offset,
                         arenas.grads.data() + r.output, record_geometry(tape, r), gt + args[0].offset,
                         gt + args[1].offset, static_cast<double*>(nullptr));
}

// y(n, o, oy, ox) = Σ_{c, ky, kx} x(n, c, iy, ix) w(o, c, ky, kx) + b(o), padding taps
// left out: the partial with respect to an input or a filter element is the other's name.
bool conv2d_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out) {
  if (r.dtype == DType::f32) return false;
  const auto args = tape.tensor_args(r);
  const Conv2dGeometry g = record_geometry(tape, r);
  const std::size_t ox = e % g.out_w, oy = e / g.out_w % g.out_h, o = e / (g.out_w * g.out_h) % g.out_channels,
                    n = e / (g.out_w * g.out_h * g.out_channels);
  for (std::size_t c = 0; c < g.channels; ++c) {
    for (std::size_t ky = 0; ky < g.kernel_h; ++ky) {
      for (std::size_t kx = 0; kx < g.kernel_w; ++kx) {
        const std::size_t py = oy * g.stride + ky, px = ox * g.stride + kx;  // in padded coordinates
        if (py < g.padding || px < g.padding || py - g.padding >= g.height || px - g.padding >= g.width) continue;
        const auto x = static_cast<Slot>(args[0].offset + ((n * g.channels + c) * g.height + py - g.padding) * g.width +
                                         px - g.padding);
        const auto w = static_cast<Slot>(args[1].offset + ((o * g.channels + c) * g.kernel_h + ky) * g.kernel_w + kx);
        const std::string x_name = tape.slot_name(x), w_name = tape.slot_name(w);
        if (x_name.empty() || w_name.empty()) return false;
        out.push_back({x, 1.0, {w_name}});
        out.push_back({w, 1.0, {x_name}});
      }
    }
  }
  if (args.size() > 2) out.push_back({static_cast<Slot>(args[2].offset + o), 1.0, {}});
  return true;
}

}  // namespace

}  // namespace gradpath::ops
