// SPDX-License-Identifier: MIT
// Network layers and losses: each forward is followed by its vector-Jacobian rule.
#include "ops/nn.hpp"

#include <cstdio>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <string>

#include "autodiff/second_order.hpp"

namespace gradpath::ops {

namespace {

// ---- dense ----------------------------------------------------------------------------------
struct DenseOptions {
  static constexpr std::string_view op = "dense";
  std::size_t batch, in, out;
  bool has_bias;  // the third operand
};
template <typename T>
void add_bias_kernel(std::size_t batch, std::size_t out, const T* b, T* y) {
  for (std::size_t i = 0; i < batch; ++i)
    for (std::size_t o = 0; o < out; ++o) y[i * out + o] += b[o];
}
void dense_backward(Tape& tape, const TensorRecord& r);
bool dense_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out);
void dense_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents);
void dense_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas);
constexpr TensorOpInfo dense_info{"dense", &dense_backward, nullptr, &dense_symbolic, &dense_tangent, &dense_curvature};

TensorVar dense_impl(const TensorVar& x, const TensorVar& w, std::optional<TensorArg> b, std::string_view name) {
  Tape& tape = Tape::of(x.first(), w.first(), "dense");
  const Shape &sx = x.shape(), &sw = w.shape();
  if (sx.rank() < 1) throw Error("dense: x must be (in) or (..., in), got " + sx.str());
  if (sw.rank() < 1 || sw.rank() > 2) throw Error("dense: W must be (out, in) or (in), got " + sw.str());
  // Every leading axis of x is a batch axis, as for PyTorch's nn.Linear.
  Shape shape;
  std::size_t batch = 1;
  for (std::size_t i = 0; i + 1 < sx.rank(); ++i) {
    shape.push_back(sx[i]);
    batch *= sx[i];
  }
  const std::size_t in = sx[sx.rank() - 1];
  const std::size_t out = sw.rank() == 2 ? sw[0] : 1;
  if (sw[sw.rank() - 1] != in) {
    throw Error("dense: input sizes differ: x " + sx.str() + " and W " + sw.str() + " (W is (out, in))");
  }
  if (b && (b->shape.rank() > 1 || b->shape.size() != out)) {
    throw Error("dense: bias " + b->shape.str() + " does not match the " + std::to_string(out) + " outputs of W " +
                sw.str());
  }
  if (sw.rank() == 2) shape.push_back(out);
  std::array<TensorArg, 3> args{x.arg(), w.arg(), b.value_or(TensorArg{})};
  TensorVar y = detail::record(tape, dense_info, shape, std::span(args.data(), b ? 3 : 2), name,
                               DenseOptions{batch, in, out, b.has_value()});
  detail::dispatch(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* values = detail::values<T>(tape);
    detail::gemm(false, true, batch, out, in, values + x.offset(), values + w.offset(), values + y.offset(), T(0),
                 "dense");  // Y = X W^T
    if (b) add_bias_kernel(batch, out, values + b->offset, values + y.offset());
  });
  return y;
}

}  // namespace

TensorVar dense(const TensorVar& x, const TensorVar& w, const TensorVar& b, std::string_view name) {
  Tape::of(x.first(), b.first(), "dense");
  return dense_impl(x, w, b.arg(), name);
}
TensorVar dense(const TensorVar& x, const TensorVar& w, const Var& b, std::string_view name) {
  Tape::of(x.first(), b, "dense");
  return dense_impl(x, w, TensorArg{b.slot(), Shape{}}, name);
}
TensorVar dense(const TensorVar& x, const TensorVar& w, std::string_view name) {
  return dense_impl(x, w, std::nullopt, name);
}

namespace {

template <typename T>
void bias_vjp_kernel(std::size_t batch, std::size_t out, const T* gy, T* gb) {
  for (std::size_t i = 0; i < batch; ++i)
    for (std::size_t o = 0; o < out; ++o) gb[o] += gy[i * out + o];
}

void dense_backward(Tape& tape, const TensorRecord& r) {
  const auto args = tape.tensor_args(r);
  const DenseOptions o = options<DenseOptions>(r);
  const std::size_t batch = o.batch, in = o.in, out = o.out;
  detail::dispatch(r.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* gy = detail::grads<T>(tape) + r.output;
    const T* x = detail::values<T>(tape) + args[0].offset;
    const T* w = detail::values<T>(tape) + args[1].offset;
    if (T* gx = detail::operand_grads<T>(tape, args[0]))
      detail::gemm(false, false, batch, in, out, gy, w, gx, T(1), "dense");  // dX += dY W
    if (T* gw = detail::operand_grads<T>(tape, args[1]))
      detail::gemm(true, false, out, in, batch, gy, x, gw, T(1), "dense");  // dW += dY^T X
    if (o.has_bias) {
      if (T* gb = detail::operand_grads<T>(tape, args[2])) bias_vjp_kernel(batch, out, gy, gb);
    }
  });
}
// Ẏ = Ẋ Wᵀ + X Ẇᵀ + ḃ.
void dense_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents) {
  const auto args = tape.tensor_args(r);
  const DenseOptions o = options<DenseOptions>(r);
  const double* values = tape.values().data();
  double* ty = tangents.data() + r.output;
  detail::gemm(false, true, o.batch, o.out, o.in, tangents.data() + args[0].offset, values + args[1].offset, ty, 0.0,
               "dense");
  detail::gemm(false, true, o.batch, o.out, o.in, values + args[0].offset, tangents.data() + args[1].offset, ty, 1.0,
               "dense");
  if (o.has_bias) add_bias_kernel(o.batch, o.out, tangents.data() + args[2].offset, ty);
}
// Bilinear in (x, W), linear in the bias: ġX += ḡ Ẇ, ġW += ḡᵀ Ẋ.
void dense_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas) {
  const auto args = tape.tensor_args(r);
  const DenseOptions o = options<DenseOptions>(r);
  const double* gy = arenas.grads.data() + r.output;
  double* gt = arenas.grad_tangents.data();
  detail::gemm(false, false, o.batch, o.in, o.out, gy, arenas.tangents.data() + args[1].offset, gt + args[0].offset,
               1.0, "dense");
  detail::gemm(true, false, o.out, o.in, o.batch, gy, arenas.tangents.data() + args[0].offset, gt + args[1].offset, 1.0,
               "dense");
}
// y(b, o) = Σ_i x(b, i) W(o, i) + bias(o): the partial with respect to an x or a W element
// is the other's name; with respect to the bias, 1.
bool dense_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out) {
  if (r.dtype == DType::f32) return false;
  const auto args = tape.tensor_args(r);
  const DenseOptions dense = options<DenseOptions>(r);
  const std::size_t in = dense.in, outs = dense.out;
  const std::size_t b = e / outs, o = e % outs;
  for (std::size_t i = 0; i < in; ++i) {
    const auto x = static_cast<Slot>(args[0].offset + b * in + i), w = static_cast<Slot>(args[1].offset + o * in + i);
    const std::string x_name = tape.slot_name(x), w_name = tape.slot_name(w);
    if (x_name.empty() || w_name.empty()) return false;
    out.push_back({x, 1.0, {w_name}});
    out.push_back({w, 1.0, {x_name}});
  }
  if (dense.has_bias) out.push_back({static_cast<Slot>(args[2].offset + o), 1.0, {}});
  return true;
}

// ---- softmax and log_softmax ------------------------------------------------------------------
// Both work on rows: the tensor viewed as (size / C, C) with C the last axis; a rank-0
// tensor is one row of one class (softmax 1, log_softmax 0), as in PyTorch.
std::size_t row_length(const Shape& shape) { return shape.rank() == 0 ? 1 : shape[shape.rank() - 1]; }

template <typename T>
void softmax_kernel(std::size_t rows, std::size_t cols, const T* x, T* y, bool log) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const T shift = *std::max_element(xr, xr + cols);
    T total = 0;
    for (std::size_t c = 0; c < cols; ++c) total += std::exp(xr[c] - shift);
    const T log_total = std::log(total);
    for (std::size_t c = 0; c < cols; ++c) yr[c] = log ? xr[c] - shift - log_total : std::exp(xr[c] - shift) / total;
  }
}
template <bool Log>
void softmax_backward(Tape& tape, const TensorRecord& r);
template <bool Log>
void softmax_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents);
template <bool Log>
void softmax_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas);
constexpr TensorOpInfo softmax_info{"softmax", &softmax_backward<false>, nullptr,
                                    nullptr,   &softmax_tangent<false>,  &softmax_curvature<false>};
constexpr TensorOpInfo log_softmax_info{"log_softmax", &softmax_backward<true>, nullptr,
                                        nullptr,       &softmax_tangent<true>,  &softmax_curvature<true>};

TensorVar softmax_impl(const TensorVar& x, const TensorOpInfo& info, std::string_view name) {
  Tape& tape = Tape::of(x.first(), info.name);
  const std::size_t cols = row_length(x.shape());
  const TensorArg arg = x.arg();
  TensorVar y = detail::record(tape, info, x.shape(), std::span(&arg, 1), name);
  detail::dispatch(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    softmax_kernel(x.size() / cols, cols, detail::values<T>(tape) + arg.offset, detail::values<T>(tape) + y.offset(),
                   &info == &log_softmax_info);
  });
  return y;
}

}  // namespace

TensorVar softmax(const TensorVar& x, std::string_view name) { return softmax_impl(x, softmax_info, name); }
TensorVar log_softmax(const TensorVar& x, std::string_view name) { return softmax_impl(x, log_softmax_info, name); }

namespace {

// softmax: dx = y * (dy - <dy, y>) per row.
template <typename T>
void softmax_vjp_kernel(std::size_t rows, std::size_t cols, const T* y, const T* gy, T* gx) {
  for (std::size_t r = 0; r < rows; ++r) {
    T dot = 0;
    for (std::size_t c = 0; c < cols; ++c) dot += gy[r * cols + c] * y[r * cols + c];
    for (std::size_t c = 0; c < cols; ++c) gx[r * cols + c] += y[r * cols + c] * (gy[r * cols + c] - dot);
  }
}
// log_softmax: dx = dy - softmax * sum(dy) per row, softmax = exp(y).
template <typename T>
void log_softmax_vjp_kernel(std::size_t rows, std::size_t cols, const T* y, const T* gy, T* gx) {
  for (std::size_t r = 0; r < rows; ++r) {
    T total = 0;
    for (std::size_t c = 0; c < cols; ++c) total += gy[r * cols + c];
    for (std::size_t c = 0; c < cols; ++c) gx[r * cols + c] += gy[r * cols + c] - std::exp(y[r * cols + c]) * total;
  }
}

template <bool Log>
void softmax_backward(Tape& tape, const TensorRecord& r) {
  const std::size_t cols = row_length(r.shape), rows = r.shape.size() / cols;
  detail::dispatch(r.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* y = detail::values<T>(tape) + r.output;
    const T* gy = detail::grads<T>(tape) + r.output;
    T* gx = detail::operand_grads<T>(tape, tape.tensor_args(r)[0]);
    if (gx == nullptr) return;
    if constexpr (Log) {
      log_softmax_vjp_kernel(rows, cols, y, gy, gx);
    } else {
      softmax_vjp_kernel(rows, cols, y, gy, gx);
    }
  });
}

// Per row, with s the softmax: softmax ẏ = s ⊙ (ẋ − ⟨s, ẋ⟩), log_softmax ẏ = ẋ − ⟨s, ẋ⟩.
template <bool Log>
void softmax_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents) {
  const std::size_t cols = row_length(r.shape), rows = r.shape.size() / cols;
  const double* y = tape.values().data() + r.output;
  const double* tx = tangents.data() + tape.tensor_args(r)[0].offset;
  double* ty = tangents.data() + r.output;
  for (std::size_t row = 0; row < rows; ++row) {
    const std::size_t at = row * cols;
    double mean = 0.0;  // ⟨s, ẋ⟩
    for (std::size_t c = 0; c < cols; ++c) mean += (Log ? std::exp(y[at + c]) : y[at + c]) * tx[at + c];
    for (std::size_t c = 0; c < cols; ++c) ty[at + c] = Log ? tx[at + c] - mean : y[at + c] * (tx[at + c] - mean);
  }
}

// d/dt of the backward rule along the tangents, per row (ẏ is the output's tangent):
// softmax, whose rule is y ⊙ (ḡ − ⟨ḡ, y⟩): ẏ ⊙ (ḡ − ⟨ḡ, y⟩) − y ⟨ḡ, ẏ⟩;
// log_softmax, whose rule is ḡ − s Σ ḡ: −ṡ Σ ḡ with ṡ = s ⊙ ẏ.
template <bool Log>
void softmax_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas) {
  const std::size_t cols = row_length(r.shape), rows = r.shape.size() / cols;
  const double* y = tape.values().data() + r.output;
  const double* ty = arenas.tangents.data() + r.output;
  const double* g = arenas.grads.data() + r.output;
  double* gx = arenas.grad_tangents.data() + tape.tensor_args(r)[0].offset;
  for (std::size_t row = 0; row < rows; ++row) {
    const std::size_t at = row * cols;
    double g_y = 0.0, g_ty = 0.0, g_sum = 0.0;  // ⟨ḡ, y⟩, ⟨ḡ, ẏ⟩, Σ ḡ
    for (std::size_t c = 0; c < cols; ++c) {
      g_y += g[at + c] * y[at + c];
      g_ty += g[at + c] * ty[at + c];
      g_sum += g[at + c];
    }
    for (std::size_t c = 0; c < cols; ++c) {
      gx[at + c] += Log ? -std::exp(y[at + c]) * ty[at + c] * g_sum : ty[at + c] * (g[at + c] - g_y) - y[at + c] * g_ty;
    }
  }
}

// ---- squared errors -------------------------------------------------------------------------------
// L = scale * sum (y - t)^2 with t broadcast to y's shape; half_squared_error has
// scale 1/2, mse 1/size. dL/dy = 2 scale (y - t), dL/dt the negative, summed where t broadcasts.
void squared_error_backward(Tape& tape, const TensorRecord& r);
bool squared_error_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out);
void squared_error_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents);
void squared_error_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas);
constexpr TensorOpInfo half_squared_error_info{
    "half_squared_error",    &squared_error_backward, nullptr,
    &squared_error_symbolic, &squared_error_tangent,  &squared_error_curvature};
constexpr TensorOpInfo mse_info{
    "mse", &squared_error_backward, nullptr, &squared_error_symbolic, &squared_error_tangent, &squared_error_curvature};

double squared_error_scale(const TensorRecord& r, std::size_t size) {
  return r.info == &half_squared_error_info ? 0.5 : 1.0 / static_cast<double>(size);
}

TensorVar squared_error(const TensorVar& y, const Operand& target, const TensorOpInfo& info, std::string_view name) {
  const std::string_view op = info.name;
  Tape::of(y.first(), op);
  if (detail::broadcast_shapes(y.shape(), target.shape(), op) != y.shape()) {
    throw Error(std::string(op) + ": target shape " + target.shape().str() + " does not match prediction shape " +
                y.shape().str());
  }
  TensorVar loss = detail::record_elementwise(info, y, target, Shape{}, name);
  Tape& tape = loss.tape();
  const TensorRecord& r = tape.tensor_records().back();
  detail::dispatch(loss.dtype(), [&](auto zero) {
    using T = decltype(zero);
    // Summed in double for either dtype, element i into lane i mod 8 and then the lanes in
    // order: a fixed order, without one chain of dependent adds through every element.
    std::array<double, 8> lanes{};
    detail::with_operands<T>(tape, r, y.shape(), false, [&](const auto& v, const auto&, const auto& s) {
      detail::for_each_index(y.shape(), s[0], s[1], [&](std::size_t i, std::size_t iy, std::size_t it) {
        const double d = static_cast<double>(v[0][iy]) - static_cast<double>(v[1][it]);
        lanes[i % lanes.size()] += d * d;
      });
    });
    double total = 0.0;
    for (double lane : lanes) total += lane;
    detail::values<T>(tape)[loss.offset()] = static_cast<T>(total * squared_error_scale(r, y.size()));
  });
  return loss;
}

}  // namespace

TensorVar half_squared_error(const TensorVar& y, const Operand& target, std::string_view name) {
  return squared_error(y, target, half_squared_error_info, name);
}
TensorVar mse(const TensorVar& y, const Operand& target, std::string_view name) {
  return squared_error(y, target, mse_info, name);
}

namespace {

void squared_error_backward(Tape& tape, const TensorRecord& r) {
  const Shape& shape = tape.tensor_args(r)[0].shape;
  detail::dispatch(r.dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto g = static_cast<T>(detail::grads<T>(tape)[r.output] * 2.0 * squared_error_scale(r, shape.size()));
    detail::with_operands<T>(tape, r, shape, true, [&](const auto& v, const auto& gr, const auto& s) {
      detail::for_each_index(shape, s[0], s[1], [&](std::size_t, std::size_t iy, std::size_t it) {
        const T d = g * (v[0][iy] - v[1][it]);
        if (gr[0]) gr[0][iy] += d;
        if (gr[1]) gr[1][it] -= d;
      });
    });
  });
}

// L̇ = 2 scale Σ (y − t)(ẏ − ṫ); a constant target has no tangent.
void squared_error_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents) {
  const Shape& shape = tape.tensor_args(r)[0].shape;
  const detail::ElementwiseSides s = detail::elementwise_sides(tape, r, shape);
  const double* values = tape.values().data();
  const double no_tangent = 0.0;
  const double* t = s.offset[1] ? values + *s.offset[1] : &s.constant;
  const double* tt = s.offset[1] ? tangents.data() + *s.offset[1] : &no_tangent;
  double total = 0.0;
  detail::for_each_index(shape, s.strides[0], s.strides[1], [&](std::size_t, std::size_t iy, std::size_t it) {
    total += (values[*s.offset[0] + iy] - t[it]) * (tangents[*s.offset[0] + iy] - tt[it]);
  });
  tangents[r.output] = 2.0 * squared_error_scale(r, shape.size()) * total;
}
// The rule's d/dt: ġy += 2 scale ḡ (ẏ − ṫ), ġt the negative, summed where t broadcasts.
void squared_error_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas) {
  const Shape& shape = tape.tensor_args(r)[0].shape;
  const detail::ElementwiseSides s = detail::elementwise_sides(tape, r, shape);
  const double no_tangent = 0.0;
  const double* tt = s.offset[1] ? arenas.tangents.data() + *s.offset[1] : &no_tangent;
  const double* ty = arenas.tangents.data() + *s.offset[0];
  double* gy = arenas.grad_tangents.data() + *s.offset[0];
  double* gt = s.offset[1] ? arenas.grad_tangents.data() + *s.offset[1] : nullptr;
  const double g = arenas.grads[r.output] * 2.0 * squared_error_scale(r, shape.size());
  detail::for_each_index(shape, s.strides[0], s.strides[1], [&](std::size_t, std::size_t iy, std::size_t it) {
    const double d = g * (ty[iy] - tt[it]);
    gy[iy] += d;
    if (gt) gt[it] -= d;
  });
}
// dL/dy_i = 2 scale (y_i - t_i), dL/dt_i its negative: "(y1 - t)", or "(y1 - 0.3)" for a
// constant target. A target broadcast over y (one value) pairs with every y_i.
bool squared_error_symbolic(const Tape& tape, const TensorRecord& r, std::size_t, std::vector<SymbolicEdge>& out) {
  if (r.dtype == DType::f32) return false;
  const auto args = tape.tensor_args(r);
  const std::size_t n = args[0].shape.size();
  const double twice_scale = 2.0 * squared_error_scale(r, n);
  const bool constant = args.size() == 1;
  const double target = options<detail::ElementwiseOptions>(r).constant;
  if (!constant && args[1].shape.size() != n && args[1].shape.size() != 1) return false;
  for (std::size_t i = 0; i < n; ++i) {
    const auto y = static_cast<Slot>(args[0].offset + i);
    const auto t = static_cast<Slot>(constant ? 0 : args[1].offset + (args[1].shape.size() == 1 ? 0 : i));
    char constant_text[32];
    std::snprintf(constant_text, sizeof constant_text, "%.6g", target);
    const std::string y_name = tape.slot_name(y), t_name = constant ? constant_text : tape.slot_name(t);
    if (y_name.empty() || t_name.empty()) return false;
    const std::string residual = "(" + y_name + " - " + t_name + ")";
    out.push_back({y, twice_scale, {residual}});
    if (!constant) out.push_back({t, -twice_scale, {residual}});
  }
  return true;
}

// ---- softmax cross-entropy -------------------------------------------------------------------------
// saved: the log-softmax of the logits (N * C, in double for either dtype), then the N
// labels.
struct CrossEntropyOptions {
  static constexpr std::string_view op = "softmax_cross_entropy";
  std::size_t n, c;  // N rows of C classes
};
void cross_entropy_backward(Tape& tape, const TensorRecord& r);
void cross_entropy_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents);
void cross_entropy_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas);
constexpr TensorOpInfo cross_entropy_info{"softmax_cross_entropy", &cross_entropy_backward, nullptr, nullptr,
                                          &cross_entropy_tangent,  &cross_entropy_curvature};

}  // namespace

TensorVar softmax_cross_entropy(const TensorVar& logits, std::span<const int> labels, std::string_view name) {
  const std::string_view op = cross_entropy_info.name;
  Tape& tape = Tape::of(logits.first(), op);
  const Shape& shape = logits.shape();
  if (shape.rank() < 1 || shape.rank() > 2)
    throw Error(std::string(op) + ": logits must be (N, C) or (C), got " + shape.str());
  const std::size_t c = shape[shape.rank() - 1], n = logits.size() / c;
  if (labels.size() != n) {
    throw Error(std::string(op) + ": " + std::to_string(labels.size()) + " labels for logits " + shape.str() +
                " (one per row)");
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= c) {
      throw Error(std::string(op) + ": label " + std::to_string(labels[i]) + " (row " + std::to_string(i) +
                  ") is out of range for " + std::to_string(c) + " classes, logits " + shape.str());
    }
  }
  const TensorArg arg = logits.arg();
  TensorVar loss =
      detail::record(tape, cross_entropy_info, Shape{}, std::span(&arg, 1), name, CrossEntropyOptions{n, c}, n * c + n);
  const auto saved = tape.saved(tape.tensor_records().back());
  detail::dispatch(loss.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* x = detail::values<T>(tape) + arg.offset;
    std::copy(x, x + n * c, saved.begin());
    softmax_kernel(n, c, saved.data(), saved.data(), true);  // log-softmax in place, shifted: exact for large logits
    double total = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      total -= saved[i * c + static_cast<std::size_t>(labels[i])];
      saved[n * c + i] = labels[i];
    }
    detail::values<T>(tape)[loss.offset()] = static_cast<T>(total / static_cast<double>(n));
  });
  return loss;
}

namespace {

void cross_entropy_backward(Tape& tape, const TensorRecord& r) {
  const CrossEntropyOptions o = options<CrossEntropyOptions>(r);
  const std::size_t n = o.n, c = o.c;
  const auto saved = tape.saved(r);
  detail::dispatch(r.dtype, [&](auto zero) {
    using T = decltype(zero);
    T* gx = detail::operand_grads<T>(tape, tape.tensor_args(r)[0]);
    if (gx == nullptr) return;
    const double g = static_cast<double>(detail::grads<T>(tape)[r.output]) / static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto label = static_cast<std::size_t>(saved[n * c + i]);
      for (std::size_t j = 0; j < c; ++j) {
        gx[i * c + j] += static_cast<T>(g * (std::exp(saved[i * c + j]) - (j == label ? 1.0 : 0.0)));
      }
    }
  });
}

// L̇ = (1/N) Σ_i ⟨s_i − onehot(label_i), ẋ_i⟩, s_i the softmax of row i (saved as its log).
void cross_entropy_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents) {
  const CrossEntropyOptions o = options<CrossEntropyOptions>(r);
  const auto saved = tape.saved(r);
  const double* tx = tangents.data() + tape.tensor_args(r)[0].offset;
  double total = 0.0;
  for (std::size_t i = 0; i < o.n; ++i) {
    const auto label = static_cast<std::size_t>(saved[o.n * o.c + i]);
    for (std::size_t j = 0; j < o.c; ++j) {
      total += (std::exp(saved[i * o.c + j]) - (j == label ? 1.0 : 0.0)) * tx[i * o.c + j];
    }
  }
  tangents[r.output] = total / static_cast<double>(o.n);
}

// The Hessian action: the rule is (ḡ/N)(s_i − onehot), so ġx_i += (ḡ/N) ṡ_i with
// ṡ_i = s_i ⊙ (ẋ_i − ⟨s_i, ẋ_i⟩).
void cross_entropy_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas) {
  const CrossEntropyOptions o = options<CrossEntropyOptions>(r);
  const auto saved = tape.saved(r);
  const Slot x = tape.tensor_args(r)[0].offset;
  const double g = arenas.grads[r.output] / static_cast<double>(o.n);
  for (std::size_t i = 0; i < o.n; ++i) {
    const std::size_t at = i * o.c;
    double s_tx = 0.0;  // ⟨s_i, ẋ_i⟩
    for (std::size_t j = 0; j < o.c; ++j) s_tx += std::exp(saved[at + j]) * arenas.tangents[x + at + j];
    for (std::size_t j = 0; j < o.c; ++j) {
      arenas.grad_tangents[x + at + j] += g * std::exp(saved[at + j]) * (arenas.tangents[x + at + j] - s_tx);
    }
  }
}

}  // namespace

}  // namespace gradpath::ops
