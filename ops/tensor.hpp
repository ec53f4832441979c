// SPDX-License-Identifier: MIT
// Tensor ops: broadcasting arithmetic, elementwise functions, matmul, reductions, views.
// Each op records one tensor node (views record none) and takes an optional trailing
// name for it. Backward rules read operand values from the tape when the sweep runs: as
// for scalars, change leaves with set_value only before recording or after backward.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>

#include "autodiff/functions.hpp"
#include "autodiff/tensor.hpp"

namespace gradpath::ops {

// One side of an elementwise op: a tensor, a scalar Var (taken as a rank-0 f64 tensor, so
// it broadcasts against anything) or a plain constant (not on the tape, gets no grad; it
// takes the other operand's dtype).
class Operand {
 public:
  Operand(const TensorVar& t) : var_(t.first()), arg_(t.arg()) {}
  Operand(const Var& v) : var_(v), arg_{v.slot(), Shape{}, DType::f64} {}
  Operand(double c) : constant_(c), is_constant_(true) {}

  bool is_constant() const { return is_constant_; }
  double constant() const { return constant_; }
  const Var& var() const { return var_; }
  const Shape& shape() const { return arg_.shape; }
  const TensorArg& arg() const { return arg_; }

 private:
  Var var_;
  TensorArg arg_;
  double constant_ = 0.0;
  bool is_constant_ = false;
};

// ---- elementwise arithmetic with NumPy broadcasting ------------------------------------
// Shapes are aligned from the last axis; an axis broadcasts when it is 1 or missing.
// The backward rule sums the grad over every broadcast axis. Division by zero follows
// IEEE (inf or NaN), as for scalars. At least one operand must be on a tape.
TensorVar add(const Operand& a, const Operand& b, std::string_view name = {});
TensorVar sub(const Operand& a, const Operand& b, std::string_view name = {});
TensorVar mul(const Operand& a, const Operand& b, std::string_view name = {});
TensorVar div(const Operand& a, const Operand& b, std::string_view name = {});
// The larger (smaller) operand; a tie gives the whole gradient to the first, as for scalars.
TensorVar max(const Operand& a, const Operand& b, std::string_view name = {});
TensorVar min(const Operand& a, const Operand& b, std::string_view name = {});

// ---- elementwise functions (the table of autodiff/functions.hpp; derivative choices as
// there: relu'(0) = abs'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha) ------------------
TensorVar exp(const TensorVar& x, std::string_view name = {});
TensorVar log(const TensorVar& x, std::string_view name = {});   // log(<0) NaN, log(0) -inf
TensorVar sqrt(const TensorVar& x, std::string_view name = {});  // sqrt'(0) = +inf
TensorVar tanh(const TensorVar& x, std::string_view name = {});
TensorVar sigmoid(const TensorVar& x, std::string_view name = {});
TensorVar relu(const TensorVar& x, std::string_view name = {});
TensorVar abs(const TensorVar& x, std::string_view name = {});
TensorVar sin(const TensorVar& x, std::string_view name = {});
TensorVar cos(const TensorVar& x, std::string_view name = {});
TensorVar leaky_relu(const TensorVar& x, double slope = fn::LeakyRelu::parameter.fallback, std::string_view name = {});
TensorVar elu(const TensorVar& x, double alpha = fn::Elu::parameter.fallback, std::string_view name = {});
TensorVar softplus(const TensorVar& x, std::string_view name = {});
TensorVar gelu(const TensorVar& x, std::string_view name = {});
TensorVar gelu_tanh(const TensorVar& x, std::string_view name = {});
TensorVar silu(const TensorVar& x, std::string_view name = {});
// Any function of the table by id; p its parameter, the function's default when none.
TensorVar apply_function(FnId f, const TensorVar& x, std::optional<double> p = std::nullopt,
                         std::string_view name = {});
TensorVar neg(const TensorVar& x, std::string_view name = {});
TensorVar pow(const TensorVar& x, double p, std::string_view name = {});

// ---- matmul: one GEMM forward, two in backward ----------------------------------------
// (m, k) x (k, n) -> (m, n); (b, m, k) x (b, k, n) -> (b, m, n);
// (b, m, k) x (k, n) -> (b, m, n), the right operand shared by every batch entry;
// (m, k) x (b, k, n) -> (b, m, n), the left operand shared by every batch entry.
TensorVar matmul(const TensorVar& a, const TensorVar& b, std::string_view name = {});

// ---- reductions -------------------------------------------------------------------------
enum class KeepDim : bool { no, yes };
// Over all elements: a rank-0 result.
TensorVar sum(const TensorVar& x, std::string_view name = {});
TensorVar mean(const TensorVar& x, std::string_view name = {});
// Along one axis (negative counts from the end); KeepDim::yes leaves that axis as 1.
TensorVar sum(const TensorVar& x, int axis, KeepDim keep = KeepDim::no, std::string_view name = {});
TensorVar mean(const TensorVar& x, int axis, KeepDim keep = KeepDim::no, std::string_view name = {});

// ---- shape ------------------------------------------------------------------------------
// Views: the same slots under another shape, no node recorded.
TensorVar reshape(const TensorVar& x, const Shape& shape);
// flatten(x) -> (size); flatten(x, start) keeps the axes before `start` and merges the
// rest, so an NCHW batch with start 1 becomes (N, C*H*W).
TensorVar flatten(const TensorVar& x, std::size_t start_axis = 0);
// A copy node: the 2-D transpose, or any tensor with two axes swapped.
TensorVar transpose(const TensorVar& x, std::string_view name = {});
TensorVar transpose(const TensorVar& x, int axis0, int axis1, std::string_view name = {});

// ---- dtype ------------------------------------------------------------------------------
// x converted to `dtype` (a node; x itself when it has that dtype already). The grad is
// converted back: to f32 rounds, to f64 is exact. Ops on two tensors of different dtypes
// raise an Error naming the op and both dtypes: cast one of them first.
TensorVar cast(const TensorVar& x, DType dtype, std::string_view name = {});

namespace detail {
using Strides = std::array<std::size_t, Shape::max_rank>;

// matmul's options: the sizes of one GEMM and the batch strides of the right and the left
// operand (0 when that operand is shared by every batch entry).
struct MatmulOptions {
  static constexpr std::string_view op = "matmul";
  std::size_t batch, m, k, n, b_stride, a_stride;
};

// Records a tensor node for `info` and returns its output (values still to be filled);
// names the node when `name` is non-empty. The node has its operands' dtype: an Error
// naming the op and both dtypes when they differ.
TensorVar record(Tape& tape, const TensorOpInfo& info, const Shape& shape, std::span<const TensorArg> args,
                 std::string_view name, const OpOptions& options = {}, std::size_t saved_size = 0);
// The same with the op's options struct (see OpOptions), read back by options<T>(record).
template <typename Options>
requires requires { Options::op; }
TensorVar record(Tape& tape, const TensorOpInfo& info, const Shape& shape, std::span<const TensorArg> args,
                 std::string_view name, const Options& options, std::size_t saved_size = 0) {
  return record(tape, info, shape, args, name, OpOptions::of(options), saved_size);
}
// The common dtype of `args`, or the Error record() raises.
DType common_dtype(std::span<const TensorArg> args, std::string_view op);

// Calls f(T()) with T the element type of `dtype` (double or float): one templated body
// serves both arenas.
template <typename F>
decltype(auto) dispatch(DType dtype, F&& f) {
  if (dtype == DType::f32) return f(float{});
  return f(double{});
}
// The value and grad arenas of element type T.
template <typename T>
T* values(Tape& tape) {
  if constexpr (std::is_same_v<T, float>) {
    return tape.values_f32().data();
  } else {
    return tape.values().data();
  }
}
template <typename T>
T* grads(Tape& tape) {
  if constexpr (std::is_same_v<T, float>) {
    return tape.grads_f32().data();
  } else {
    return tape.grads().data();
  }
}
// The grads a rule adds into for operand `arg`, or null when no grad is wanted for it (a
// constant, Tape::constant): every rule skips the work for a null operand.
template <typename T>
T* operand_grads(Tape& tape, const TensorArg& arg) {
  return arg.needs_grad ? grads<T>(tape) + arg.offset : nullptr;
}
// The options of an elementwise node (binary ops, squared errors): a plain constant
// operand is not an arg but lives here.
struct ElementwiseOptions {
  static constexpr std::string_view op = "add, sub, mul, div, half_squared_error or mse";
  int constant_side = 0;  // 0 none, 1 the left operand (a), 2 the right (b)
  double constant = 0.0;
};
// Records a node reading two elementwise operands, with their ElementwiseOptions. Read
// them back with with_operands.
TensorVar record_elementwise(const TensorOpInfo& info, const Operand& a, const Operand& b, const Shape& shape,
                             std::string_view name);
// The operands of a record_elementwise node as offsets into any float64 arena (values,
// tangents, grads) with the strides that read them at every index of `shape`; a constant
// side has no offset. The forward-mode and curvature rules read their arenas through it.
struct ElementwiseSides {
  std::array<std::optional<Slot>, 2> offset;
  std::array<Strides, 2> strides{};
  double constant = 0.0;
};
ElementwiseSides elementwise_sides(const Tape& tape, const TensorRecord& r, const Shape& shape);
// The NumPy broadcast of two shapes; an Error naming `op` and both shapes if none exists.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);
// Strides that read a tensor of shape `from` at every index of the shape `to` it
// broadcasts to: 0 on broadcast axes, aligned to the last axis of `to`.
Strides broadcast_strides(const Shape& from, const Shape& to);
// An axis in [-rank, rank) as an index, or an Error naming `op`, the axis and the shape.
std::size_t normalize_axis(int axis, const Shape& shape, std::string_view op);

// Calls f(i, ia, ib) for every row-major index i of `shape`, where ia and ib are offsets
// stepping by `sa` and `sb` per axis (broadcast or permuted reads).
template <typename F>
void for_each_index(const Shape& shape, const Strides& sa, const Strides& sb, F f) {
  const std::size_t rank = shape.rank(), n = shape.size();
  if (rank == 0) {
    f(std::size_t{0}, std::size_t{0}, std::size_t{0});
    return;
  }
  const std::size_t inner = shape[rank - 1], step_a = sa[rank - 1], step_b = sb[rank - 1];
  Strides index{};
  std::size_t ia = 0, ib = 0;
  for (std::size_t i = 0; i < n;) {
    for (std::size_t j = 0; j < inner; ++j, ++i) f(i, ia + j * step_a, ib + j * step_b);
    for (std::size_t axis = rank - 1; axis-- > 0;) {  // odometer over the outer axes
      ia += sa[axis];
      ib += sb[axis];
      if (++index[axis] < shape[axis]) break;
      ia -= sa[axis] * shape[axis];
      ib -= sb[axis] * shape[axis];
      index[axis] = 0;
    }
  }
}

// Calls f(values, grads, strides) with both operands of a record_elementwise node as
// arrays of two T pointers: strides read each at every index of `shape` (which they
// broadcast to); a constant has stride 0 and a null grad. Grads are looked up only when
// want_grads.
template <typename T, typename F>
void with_operands(Tape& tape, const TensorRecord& r, const Shape& shape, bool want_grads, F f) {
  const auto args = tape.tensor_args(r);
  const auto o = options<ElementwiseOptions>(r);
  const auto constant = static_cast<T>(o.constant);
  std::array<const T*, 2> values{};
  std::array<T*, 2> grads{};
  std::array<Strides, 2> strides{};
  std::size_t next = 0;
  for (std::size_t side = 0; side < 2; ++side) {
    if (o.constant_side == static_cast<int>(side) + 1) {
      values[side] = &constant;
      continue;
    }
    const TensorArg& arg = args[next++];
    values[side] = detail::values<T>(tape) + arg.offset;
    if (want_grads) grads[side] = operand_grads<T>(tape, arg);
    strides[side] = broadcast_strides(arg.shape, shape);
  }
  f(values, grads, strides);
}

// Row-major C = op(A) op(B) + beta C through cblas_?gemm; op(A) is m x k, op(B) k x n.
// An Error naming `op` when a dimension exceeds what BLAS indexes (int).
template <typename T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const T* a, const T* b, T* c, T beta,
          std::string_view op);
}  // namespace detail

}  // namespace gradpath::ops

namespace gradpath {

// Arithmetic on tensors, found by argument-dependent lookup: x * w + b, 1.0 - x, x / s.
inline TensorVar operator+(const TensorVar& a, const TensorVar& b) { return ops::add(a, b); }
inline TensorVar operator+(const TensorVar& a, const ops::Operand& b) { return ops::add(a, b); }
inline TensorVar operator+(const ops::Operand& a, const TensorVar& b) { return ops::add(a, b); }
inline TensorVar operator-(const TensorVar& a, const TensorVar& b) { return ops::sub(a, b); }
inline TensorVar operator-(const TensorVar& a, const ops::Operand& b) { return ops::sub(a, b); }
inline TensorVar operator-(const ops::Operand& a, const TensorVar& b) { return ops::sub(a, b); }
inline TensorVar operator*(const TensorVar& a, const TensorVar& b) { return ops::mul(a, b); }
inline TensorVar operator*(const TensorVar& a, const ops::Operand& b) { return ops::mul(a, b); }
inline TensorVar operator*(const ops::Operand& a, const TensorVar& b) { return ops::mul(a, b); }
inline TensorVar operator/(const TensorVar& a, const TensorVar& b) { return ops::div(a, b); }
inline TensorVar operator/(const TensorVar& a, const ops::Operand& b) { return ops::div(a, b); }
inline TensorVar operator/(const ops::Operand& a, const TensorVar& b) { return ops::div(a, b); }
inline TensorVar operator-(const TensorVar& x) { return ops::neg(x); }

// The reverse sweep from a one-element tensor of either dtype (a loss): Tape::backward(root).
void backward(const TensorVar& root);

}  // namespace gradpath
