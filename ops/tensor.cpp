// SPDX-License-Identifier: MIT
// Tensor ops. Each op reads top to bottom: its options, its TensorOpInfo (the backward
// and symbolic rules it names are declared just above it), its forward (the public
// function), then its vector-Jacobian rule and its symbolic partials.
#include "ops/tensor.hpp"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <climits>
#include <cmath>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "autodiff/second_order.hpp"
#include "ops/threads.hpp"

namespace gradpath::ops {

namespace detail {

DType common_dtype(std::span<const TensorArg> args, std::string_view op) {
  for (const TensorArg& a : args) {
    if (a.dtype != args.front().dtype) {
      throw Error(std::string(op) + ": operands of different dtypes, " + std::string(dtype_name(args.front().dtype)) +
                  " " + args.front().shape.str() + " and " + std::string(dtype_name(a.dtype)) + " " + a.shape.str() +
                  "; convert one with ops::cast");
    }
  }
  return args.empty() ? DType::f64 : args.front().dtype;
}

namespace {
TensorVar record_as(Tape& tape, const TensorOpInfo& info, const Shape& shape, std::span<const TensorArg> args,
                    std::string_view name, const OpOptions& options, std::size_t saved_size, DType dtype) {
  NodeId node = 0;
  try {
    node = tape.record_tensor(info, shape, args, options, saved_size, dtype);
  } catch (const CapacityError& e) {  // say which shapes asked for more than the tape can give
    std::string shapes;
    for (const TensorArg& a : args) shapes += (shapes.empty() ? "" : ", ") + a.shape.str();
    throw CapacityError(std::string(e.what()) + "; " + std::string(info.name) + " of " + shapes + " gives " +
                        shape.str());
  }
  if (!name.empty()) tape.set_name(node, name);
  const Var first = tape.var_at(tape.offset(node));
  // A tensor computed from constants alone needs no grad either.
  const bool needs_grad =
      args.empty() || std::any_of(args.begin(), args.end(), [](const TensorArg& a) { return a.needs_grad; });
  return dtype == DType::f32 ? TensorVar::float32(first, tape.tensor_records().back().output, shape, needs_grad)
                             : TensorVar(first, shape, needs_grad);
}
}  // namespace

TensorVar record(Tape& tape, const TensorOpInfo& info, const Shape& shape, std::span<const TensorArg> args,
                 std::string_view name, const OpOptions& options, std::size_t saved_size) {
  return record_as(tape, info, shape, args, name, options, saved_size, common_dtype(args, info.name));
}

TensorVar record_elementwise(const TensorOpInfo& info, const Operand& a, const Operand& b, const Shape& shape,
                             std::string_view name) {
  const std::string op(info.name);
  if (a.is_constant() && b.is_constant()) throw Error(op + ": both operands are constants; one must be on a tape");
  Tape& tape = a.is_constant()   ? Tape::of(b.var(), op)
               : b.is_constant() ? Tape::of(a.var(), op)
                                 : Tape::of(a.var(), b.var(), op);
  std::array<TensorArg, 2> args;
  std::size_t count = 0;
  for (const Operand* o : {&a, &b}) {
    if (!o->is_constant()) args[count++] = o->arg();
  }
  const int constant_side = a.is_constant() ? 1 : b.is_constant() ? 2 : 0;
  const ElementwiseOptions options{constant_side, a.is_constant() ? a.constant() : b.constant()};
  return record(tape, info, shape, std::span(args.data(), count), name, options);
}

ElementwiseSides elementwise_sides(const Tape& tape, const TensorRecord& r, const Shape& shape) {
  const auto args = tape.tensor_args(r);
  const auto o = options<ElementwiseOptions>(r);
  ElementwiseSides sides;
  sides.constant = o.constant;
  std::size_t next = 0;
  for (std::size_t side = 0; side < 2; ++side) {
    if (o.constant_side == static_cast<int>(side) + 1) continue;
    const TensorArg& arg = args[next++];
    sides.offset[side] = arg.offset;
    sides.strides[side] = broadcast_strides(arg.shape, shape);
  }
  return sides;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  const std::size_t rank = std::max(a.rank(), b.rank());
  Shape out;
  for (std::size_t axis = 0; axis < rank; ++axis) {
    // Dimension of each shape at this axis counted from the left of the result; 1 if missing.
    const std::size_t da = axis + a.rank() >= rank ? a[axis + a.rank() - rank] : 1;
    const std::size_t db = axis + b.rank() >= rank ? b[axis + b.rank() - rank] : 1;
    if (da != db && da != 1 && db != 1) {
      throw Error(std::string(op) + ": shapes " + a.str() + " and " + b.str() + " do not broadcast");
    }
    out.push_back(std::max(da, db));
  }
  return out;
}

Strides broadcast_strides(const Shape& from, const Shape& to) {
  Strides strides{};
  std::size_t stride = 1;
  for (std::size_t axis = from.rank(); axis-- > 0;) {
    strides[axis + to.rank() - from.rank()] = from[axis] == 1 ? 0 : stride;
    stride *= from[axis];
  }
  return strides;
}

std::size_t normalize_axis(int axis, const Shape& shape, std::string_view op) {
  const auto rank = static_cast<int>(shape.rank());
  if (axis < -rank || axis >= rank) {
    throw Error(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for shape " + shape.str());
  }
  return static_cast<std::size_t>(axis < 0 ? axis + rank : axis);
}

template <typename T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const T* a, const T* b, T* c, T beta,
          std::string_view op) {
  if (std::max({m, n, k}) > static_cast<std::size_t>(INT_MAX)) {
    throw Error(std::string(op) + ": a GEMM dimension (" + std::to_string(m) + ", " + std::to_string(n) + ", " +
                std::to_string(k) + ") exceeds the BLAS index range");
  }
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  const auto ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  const int lda = trans_a ? mi : ki, ldb = trans_b ? ki : ni;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, ta, tb, mi, ni, ki, 1.0f, a, lda, b, ldb, beta, c, ni);
  } else {
    cblas_dgemm(CblasRowMajor, ta, tb, mi, ni, ki, 1.0, a, lda, b, ldb, beta, c, ni);
  }
}
template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, const float*, const float*, float*, float,
                          std::string_view);
template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, const double*, const double*, double*,
                           double, std::string_view);

// Starts the thread pool, which puts OpenBLAS on one thread, before the first GEMM.
[[maybe_unused]] const std::size_t threads_at_start = num_threads();

}  // namespace detail

namespace {

using detail::Strides;

Strides contiguous_strides(const Shape& shape) { return detail::broadcast_strides(shape, shape); }

// ---- elementwise binary ops ---------------------------------------------------------------
// A rule gives the value and both partials of one element, for element type T;
// broadcasting and the sum over broadcast axes are the kernels' business.
template <typename T>
struct AddRule {
  static constexpr std::string_view name = "add";
  static T value(T x, T y) { return x + y; }
  static T dx(T, T) { return T(1); }
  static T dy(T, T) { return T(1); }
  static T dxx(T, T) { return T(0); }  // second partials: the curvature rule's
  static T dxy(T, T) { return T(0); }
  static T dyy(T, T) { return T(0); }
};
template <typename T>
struct SubRule {
  static constexpr std::string_view name = "sub";
  static T value(T x, T y) { return x - y; }
  static T dx(T, T) { return T(1); }
  static T dy(T, T) { return T(-1); }
  static T dxx(T, T) { return T(0); }
  static T dxy(T, T) { return T(0); }
  static T dyy(T, T) { return T(0); }
};
template <typename T>
struct MulRule {
  static constexpr std::string_view name = "mul";
  static T value(T x, T y) { return x * y; }
  static T dx(T, T y) { return y; }
  static T dy(T x, T) { return x; }
  static T dxx(T, T) { return T(0); }
  static T dxy(T, T) { return T(1); }
  static T dyy(T, T) { return T(0); }
};
template <typename T>
struct DivRule {
  static constexpr std::string_view name = "div";
  static T value(T x, T y) { return x / y; }
  static T dx(T, T y) { return T(1) / y; }
  static T dy(T x, T y) { return -x / (y * y); }
  static T dxx(T, T) { return T(0); }
  static T dxy(T, T y) { return T(-1) / (y * y); }
  static T dyy(T x, T y) { return T(2) * x / (y * y * y); }
};

template <typename Rule, typename T>
void binary_kernel(const Shape& shape, const T* a, const Strides& sa, const T* b, const Strides& sb, T* out) {
  detail::for_each_index(shape, sa, sb,
                         [&](std::size_t i, std::size_t ia, std::size_t ib) { out[i] = Rule::value(a[ia], b[ib]); });
}
template <template <typename> class Rule>
void binary_backward(Tape& tape, const TensorRecord& r);
template <template <typename> class Rule>
bool binary_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out);
template <template <typename> class Rule>
void binary_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents);
template <template <typename> class Rule>
void binary_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas);
template <template <typename> class Rule>
constexpr TensorOpInfo binary_info{Rule<double>::name,     &binary_backward<Rule>, nullptr,
                                   &binary_symbolic<Rule>, &binary_tangent<Rule>,  &binary_curvature<Rule>};

template <template <typename> class Rule>
TensorVar binary(const Operand& a, const Operand& b, std::string_view name) {
  const Shape shape = detail::broadcast_shapes(a.shape(), b.shape(), Rule<double>::name);
  TensorVar out = detail::record_elementwise(binary_info<Rule>, a, b, shape, name);
  Tape& tape = out.tape();
  detail::dispatch(out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* values = detail::values<T>(tape) + out.offset();
    detail::with_operands<T>(tape, tape.tensor_records().back(), shape, false,
                             [&](const auto& v, const auto&, const auto& s) {
                               binary_kernel<Rule<T>>(shape, v[0], s[0], v[1], s[1], values);
                             });
  });
  return out;
}

// A broadcast operand is read at many output indices; += sums its grad over them.
// A null grad pointer is a constant operand.
template <typename Rule, typename T>
void binary_vjp_kernel(const Shape& shape, const T* gout, const T* a, const Strides& sa, T* ga, const T* b,
                       const Strides& sb, T* gb) {
  detail::for_each_index(shape, sa, sb, [&](std::size_t i, std::size_t ia, std::size_t ib) {
    if (ga) ga[ia] += gout[i] * Rule::dx(a[ia], b[ib]);
    if (gb) gb[ib] += gout[i] * Rule::dy(a[ia], b[ib]);
  });
}

template <template <typename> class Rule>
void binary_backward(Tape& tape, const TensorRecord& r) {
  detail::dispatch(r.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* gout = detail::grads<T>(tape) + r.output;
    detail::with_operands<T>(tape, r, r.shape, true, [&](const auto& v, const auto& g, const auto& s) {
      binary_vjp_kernel<Rule<T>>(r.shape, gout, v[0], s[0], g[0], v[1], s[1], g[1]);
    });
  });
}
// ẏ = ∂y/∂a ȧ + ∂y/∂b ḃ, element by element; a constant side has no tangent.
template <template <typename> class Rule>
void binary_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents) {
  const detail::ElementwiseSides s = detail::elementwise_sides(tape, r, r.shape);
  const double no_tangent = 0.0;
  const auto in = [&](const double* arena, std::size_t side, const double* constant) {
    return s.offset[side] ? arena + *s.offset[side] : constant;
  };
  const double *a = in(tape.values().data(), 0, &s.constant), *b = in(tape.values().data(), 1, &s.constant);
  const double *ta = in(tangents.data(), 0, &no_tangent), *tb = in(tangents.data(), 1, &no_tangent);
  double* out = tangents.data() + r.output;
  detail::for_each_index(r.shape, s.strides[0], s.strides[1], [&](std::size_t i, std::size_t ia, std::size_t ib) {
    out[i] = Rule<double>::dx(a[ia], b[ib]) * ta[ia] + Rule<double>::dy(a[ia], b[ib]) * tb[ib];
  });
}
// ġa += ḡ (∂²y/∂a² ȧ + ∂²y/∂a∂b ḃ), ġb += ḡ (∂²y/∂a∂b ȧ + ∂²y/∂b² ḃ), summed where a side broadcasts.
template <template <typename> class Rule>
void binary_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas) {
  using R = Rule<double>;
  const detail::ElementwiseSides s = detail::elementwise_sides(tape, r, r.shape);
  const double no_tangent = 0.0;
  const auto in = [&](const double* arena, std::size_t side, const double* constant) {
    return s.offset[side] ? arena + *s.offset[side] : constant;
  };
  const double *a = in(tape.values().data(), 0, &s.constant), *b = in(tape.values().data(), 1, &s.constant);
  const double *ta = in(arenas.tangents.data(), 0, &no_tangent), *tb = in(arenas.tangents.data(), 1, &no_tangent);
  double* ga = s.offset[0] ? arenas.grad_tangents.data() + *s.offset[0] : nullptr;
  double* gb = s.offset[1] ? arenas.grad_tangents.data() + *s.offset[1] : nullptr;
  const double* g = arenas.grads.data() + r.output;
  detail::for_each_index(r.shape, s.strides[0], s.strides[1], [&](std::size_t i, std::size_t ia, std::size_t ib) {
    const double x = a[ia], y = b[ib], cross = R::dxy(x, y);
    if (ga) ga[ia] += g[i] * (R::dxx(x, y) * ta[ia] + cross * tb[ib]);
    if (gb) gb[ib] += g[i] * (cross * ta[ia] + R::dyy(x, y) * tb[ib]);
  });
}
// The two operand elements output element e of an elementwise binary op reads: a slot, or
// none for a constant operand, with the constant.
struct ElementOperands {
  std::array<std::optional<Slot>, 2> slot;
  double constant = 0.0;
};
ElementOperands element_operands(const Tape& tape, const TensorRecord& r, std::size_t e) {
  const auto args = tape.tensor_args(r);
  const auto [constant, value] = options<detail::ElementwiseOptions>(r);  // constant: 1 the left operand, 2 the right
  ElementOperands out;
  out.constant = value;
  std::size_t next = 0;
  for (int side = 0; side < 2; ++side) {
    if (constant == side + 1) continue;
    const TensorArg& a = args[next++];
    const detail::Strides strides = detail::broadcast_strides(a.shape, r.shape);
    std::size_t rest = e, index = 0;
    for (std::size_t axis = r.shape.rank(); axis-- > 0;) {
      index += (rest % r.shape[axis]) * strides[axis];
      rest /= r.shape[axis];
    }
    out.slot[static_cast<std::size_t>(side)] = a.offset + static_cast<Slot>(index);
  }
  return out;
}
// add, sub and mul in symbols: ±1, or the other operand's element (its name, or the
// constant). Broadcasting maps output element e to each operand's element.
template <template <typename> class Rule>
bool binary_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out) {
  constexpr std::string_view op = Rule<double>::name;
  if constexpr (op != "add" && op != "sub" && op != "mul") return false;
  if (r.dtype == DType::f32) return false;
  const ElementOperands o = element_operands(tape, r, e);
  for (std::size_t side = 0; side < 2; ++side) {
    if (!o.slot[side]) continue;
    if (op != "mul") {
      out.push_back({*o.slot[side], op == "sub" && side == 1 ? -1.0 : 1.0, {}});
      continue;
    }
    const std::optional<Slot> other = o.slot[1 - side];
    if (!other) {
      out.push_back({*o.slot[side], o.constant, {}});
      continue;
    }
    const std::string name = tape.slot_name(*other);
    if (name.empty()) return false;
    out.push_back({*o.slot[side], 1.0, {name}});
  }
  return true;
}

// max and min: a tie gives the whole gradient to the first operand, as the scalar ops do.
template <typename T>
struct MaxRule {
  static constexpr std::string_view name = "max";
  static T value(T x, T y) { return x >= y ? x : y; }
  static T dx(T x, T y) { return x >= y ? T(1) : T(0); }
  static T dy(T x, T y) { return x >= y ? T(0) : T(1); }
};
template <typename T>
struct MinRule {
  static constexpr std::string_view name = "min";
  static T value(T x, T y) { return x <= y ? x : y; }
  static T dx(T x, T y) { return x <= y ? T(1) : T(0); }
  static T dy(T x, T y) { return x <= y ? T(0) : T(1); }
};
// Each output element of max is a switch between its operands (branch 0: the first wins,
// ties included), as relu's is between its input and 0. A constant operand other than 0
// cannot be written as a condition on slots: such an element gets no switch.
template <bool is_max>
void max_min_switches(const Tape& tape, const TensorRecord& r, std::vector<Switch>& out) {
  if (r.dtype == DType::f32) return;
  for (std::size_t e = 0; e < r.shape.size(); ++e) {
    const ElementOperands o = element_operands(tape, r, e);
    if ((!o.slot[0] || !o.slot[1]) && o.constant != 0.0) continue;
    if (o.slot[0] == o.slot[1]) continue;
    const std::optional<Slot> a = o.slot[0], b = o.slot[1];
    out.push_back(is_max ? Switch{r.node, e, {Branch{{Condition{a, b, true}}}, Branch{{Condition{b, a, false}}}}}
                         : Switch{r.node, e, {Branch{{Condition{b, a, true}}}, Branch{{Condition{a, b, false}}}}});
  }
}
// The partial of max in symbols is the Iverson bracket of its branch: [a ≥ b] for the
// first operand, [b > a] for the second (min: ≤ and <).
template <bool is_max>
bool max_min_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out) {
  if (r.dtype == DType::f32) return false;
  const ElementOperands o = element_operands(tape, r, e);
  std::array<std::string, 2> text;
  for (std::size_t side = 0; side < 2; ++side) {
    text[side] = o.slot[side] ? tape.slot_name(*o.slot[side]) : std::string();
    if (!o.slot[side]) {
      std::array<char, 32> buf{};
      text[side].assign(buf.data(), std::to_chars(buf.data(), buf.data() + buf.size(), o.constant).ptr);
    }
    if (text[side].empty()) return false;
  }
  for (std::size_t side = 0; side < 2; ++side) {
    if (!o.slot[side]) continue;
    const char* op = is_max ? (side == 0 ? " ≥ " : " > ") : (side == 0 ? " ≤ " : " < ");
    out.push_back({*o.slot[side], 1.0, {"[" + text[side] + op + text[1 - side] + "]"}});
  }
  return true;
}
template <>
constexpr TensorOpInfo binary_info<MaxRule>{"max",
                                            &binary_backward<MaxRule>,
                                            &max_min_switches<true>,
                                            &max_min_symbolic<true>,
                                            &binary_tangent<MaxRule>,
                                            &zero_curvature};
template <>
constexpr TensorOpInfo binary_info<MinRule>{"min",
                                            &binary_backward<MinRule>,
                                            &max_min_switches<false>,
                                            &max_min_symbolic<false>,
                                            &binary_tangent<MinRule>,
                                            &zero_curvature};

}  // namespace

TensorVar add(const Operand& a, const Operand& b, std::string_view name) { return binary<AddRule>(a, b, name); }
TensorVar sub(const Operand& a, const Operand& b, std::string_view name) { return binary<SubRule>(a, b, name); }
TensorVar mul(const Operand& a, const Operand& b, std::string_view name) { return binary<MulRule>(a, b, name); }
TensorVar div(const Operand& a, const Operand& b, std::string_view name) { return binary<DivRule>(a, b, name); }
TensorVar max(const Operand& a, const Operand& b, std::string_view name) { return binary<MaxRule>(a, b, name); }
TensorVar min(const Operand& a, const Operand& b, std::string_view name) { return binary<MinRule>(a, b, name); }

namespace {

// ---- elementwise unary ops ----------------------------------------------------------------
// The elementary functions come from the table (autodiff/functions.hpp), instantiated on
// the element type, so a kernel makes no indirect call per element. neg and pow have the
// same shape but are not functions of the table: neg has a constant partial, pow's
// exponent is an operand of the scalar op.
struct Neg {
  static constexpr std::string_view name = "neg", symbol = "";
  static constexpr bool kinked = false;
  template <typename T>
  static T value(T x, T) {
    return -x;
  }
  template <typename T>
  static T derivative(T, T, T) {
    return T(-1);
  }
  template <typename T>
  static T second(T, T, T) {
    return T(0);
  }
};
struct Pow {
  static constexpr std::string_view name = "pow", symbol = "";
  static constexpr bool kinked = false;
  template <typename T>
  static T value(T x, T p) {
    return std::pow(x, p);
  }
  template <typename T>
  static T derivative(T x, T, T p) {
    return p == 0 ? T(0) : p * std::pow(x, p - T(1));
  }
  template <typename T>
  static T second(T x, T, T p) {
    return p == 0 || p == 1 ? T(0) : p * (p - T(1)) * std::pow(x, p - T(2));
  }
};

// Elements per chunk of a threaded elementwise loop: large enough to pay for a hand-off.
constexpr std::size_t elementwise_chunk = std::size_t{1} << 14;

template <typename F, typename T>
void unary_kernel(std::size_t n, const T* x, T* y, T p) {
  detail::parallel_chunks(n, elementwise_chunk, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) y[i] = F::template value<T>(x[i], p);
  });
}
template <typename F, typename T>
void unary_vjp_kernel(std::size_t n, const T* x, const T* y, const T* gy, T* gx, T p) {
  detail::parallel_chunks(n, elementwise_chunk, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) gx[i] += gy[i] * F::template derivative<T>(x[i], y[i], p);
  });
}

// Its options: FunctionOptions, the parameter p.
template <typename F>
void unary_backward(Tape& tape, const TensorRecord& r) {
  detail::dispatch(r.dtype, [&](auto zero) {
    using T = decltype(zero);
    const TensorArg& x = tape.tensor_args(r)[0];
    T* gx = detail::operand_grads<T>(tape, x);
    if (gx == nullptr) return;
    const T* values = detail::values<T>(tape);
    unary_vjp_kernel<F, T>(r.shape.size(), values + x.offset, values + r.output, detail::grads<T>(tape) + r.output, gx,
                           static_cast<T>(function_parameter(r)));
  });
}

// A kinked function (relu, abs, leaky_relu, elu) changes rule at zero: element i takes
// one branch or the other by the sign of input element i (zero goes with the x <= 0 side).
void sign_switches(const Tape& tape, const TensorRecord& r, std::vector<Switch>& out) {
  const TensorArg& x = tape.tensor_args(r)[0];
  if (r.dtype == DType::f32) return;
  for (std::size_t i = 0; i < r.shape.size(); ++i) {
    const Slot in = x.offset + static_cast<Slot>(i);
    out.push_back({r.node, i, {Branch{{Condition{in, {}, false}}}, Branch{{Condition{{}, in, true}}}}});
  }
}
// An elementwise op's partial in symbols: the function's symbol at the input's name (and
// its parameter): σ′(z1), [z1 > 0], leaky_relu′(z1, 0.2); neg is the constant -1, pow has none.
template <typename F>
bool unary_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out) {
  if (r.dtype == DType::f32) return false;
  const Slot in = tape.tensor_args(r)[0].offset + static_cast<Slot>(e);
  if constexpr (std::is_same_v<F, Neg>) {
    out.push_back({in, -1.0, {}});
    return true;
  } else if constexpr (std::is_same_v<F, Pow>) {
    return false;
  } else {
    const std::string z = tape.slot_name(in);
    if (z.empty()) return false;
    out.push_back({in, 1.0, {function_info(fn::id_of<F>).symbol_at(z, function_parameter(r))}});
    return true;
  }
}
// ẏ = f'(x) ẋ, element by element.
template <typename F>
void unary_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents) {
  const Slot in = tape.tensor_args(r)[0].offset;
  const double *x = tape.values().data() + in, *y = tape.values().data() + r.output, *tx = tangents.data() + in;
  double* ty = tangents.data() + r.output;
  const double p = function_parameter(r);
  const std::size_t n = r.shape.size();
  for (std::size_t i = 0; i < n; ++i) ty[i] = F::template derivative<double>(x[i], y[i], p) * tx[i];
}
// ġx += f''(x) ẋ ḡ, element by element.
template <typename F>
void unary_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas) {
  const Slot in = tape.tensor_args(r)[0].offset;
  const double *x = tape.values().data() + in, *y = tape.values().data() + r.output;
  const double *tx = arenas.tangents.data() + in, *gy = arenas.grads.data() + r.output;
  double* gx = arenas.grad_tangents.data() + in;
  const double p = function_parameter(r);
  const std::size_t n = r.shape.size();
  for (std::size_t i = 0; i < n; ++i) gx[i] += F::template second<double>(x[i], y[i], p) * tx[i] * gy[i];
}
template <typename F>
constexpr TensorOpInfo unary_info{
    F::name,           &unary_backward<F>, F::kinked ? &sign_switches : nullptr, &unary_symbolic<F>,
    &unary_tangent<F>, &unary_curvature<F>};

template <typename F>
TensorVar unary(const TensorVar& x, std::string_view name, double p = 0.0) {
  Tape& tape = Tape::of(x.first(), F::name);
  const TensorArg arg = x.arg();
  TensorVar out = detail::record(tape, unary_info<F>, x.shape(), std::span(&arg, 1), name, FunctionOptions{p});
  detail::dispatch(out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    unary_kernel<F, T>(x.size(), detail::values<T>(tape) + arg.offset, detail::values<T>(tape) + out.offset(),
                       static_cast<T>(p));
  });
  return out;
}

// The table's functions by id: one recording function each, chosen once per op.
using FunctionOp = TensorVar (*)(const TensorVar&, std::string_view, double);
template <std::size_t... I>
constexpr std::array<FunctionOp, fn::count> function_ops(std::index_sequence<I...>) {
  return {&unary<std::tuple_element_t<I, fn::All>>...};
}
constexpr std::array<FunctionOp, fn::count> function_op_table = function_ops(std::make_index_sequence<fn::count>{});

}  // namespace

TensorVar apply_function(FnId f, const TensorVar& x, std::optional<double> p, std::string_view name) {
  return function_op_table.at(static_cast<std::size_t>(f))(x, name, p.value_or(function_info(f).parameter.fallback));
}
TensorVar exp(const TensorVar& x, std::string_view name) { return unary<fn::Exp>(x, name); }
TensorVar log(const TensorVar& x, std::string_view name) { return unary<fn::Log>(x, name); }
TensorVar sqrt(const TensorVar& x, std::string_view name) { return unary<fn::Sqrt>(x, name); }
TensorVar tanh(const TensorVar& x, std::string_view name) { return unary<fn::Tanh>(x, name); }
TensorVar sigmoid(const TensorVar& x, std::string_view name) { return unary<fn::Sigmoid>(x, name); }
TensorVar relu(const TensorVar& x, std::string_view name) { return unary<fn::Relu>(x, name); }
TensorVar abs(const TensorVar& x, std::string_view name) { return unary<fn::Abs>(x, name); }
TensorVar sin(const TensorVar& x, std::string_view name) { return unary<fn::Sin>(x, name); }
TensorVar cos(const TensorVar& x, std::string_view name) { return unary<fn::Cos>(x, name); }
TensorVar leaky_relu(const TensorVar& x, double slope, std::string_view name) {
  return unary<fn::LeakyRelu>(x, name, slope);
}
TensorVar elu(const TensorVar& x, double alpha, std::string_view name) { return unary<fn::Elu>(x, name, alpha); }
TensorVar softplus(const TensorVar& x, std::string_view name) { return unary<fn::Softplus>(x, name); }
TensorVar gelu(const TensorVar& x, std::string_view name) { return unary<fn::Gelu>(x, name); }
TensorVar gelu_tanh(const TensorVar& x, std::string_view name) { return unary<fn::GeluTanh>(x, name); }
TensorVar silu(const TensorVar& x, std::string_view name) { return unary<fn::Silu>(x, name); }
TensorVar neg(const TensorVar& x, std::string_view name) { return unary<Neg>(x, name); }
TensorVar pow(const TensorVar& x, double p, std::string_view name) { return unary<Pow>(x, name, p); }

// ---- matmul ---------------------------------------------------------------------------------
// Its options: detail::MatmulOptions (ops/tensor.hpp).
namespace {
void matmul_backward(Tape& tape, const TensorRecord& r);
bool matmul_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out);
void matmul_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents);
void matmul_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas);
constexpr TensorOpInfo matmul_info{"matmul",         &matmul_backward, nullptr,
                                   &matmul_symbolic, &matmul_tangent,  &matmul_curvature};
}  // namespace

TensorVar matmul(const TensorVar& a, const TensorVar& b, std::string_view name) {
  Tape& tape = Tape::of(a.first(), b.first(), "matmul");
  const Shape &sa = a.shape(), &sb = b.shape();
  const std::string shapes = sa.str() + " x " + sb.str();
  if (!((sa.rank() == 2 || sa.rank() == 3) && (sb.rank() == 2 || sb.rank() == 3))) {
    throw Error(
        "matmul: expects (m, k) x (k, n), (b, m, k) x (b, k, n), (b, m, k) x (k, n) or (m, k) x (b, k, n), got " +
        shapes);
  }
  const bool batched = sb.rank() == 3;
  if (batched && sa.rank() == 3 && sa[0] != sb[0]) throw Error("matmul: batch sizes differ: " + shapes);
  const std::size_t k = sa[sa.rank() - 1], n = sb[sb.rank() - 1];
  if (k != sb[sb.rank() - 2]) throw Error("matmul: inner dimensions differ: " + shapes);
  // A shared right operand makes the batch one tall GEMM: (b*m, k) x (k, n). A shared
  // left operand (m, k) is read again by every batch entry (stride 0), as in PyTorch.
  const std::size_t batch = batched ? sb[0] : 1, m = batched || sa.rank() == 2 ? sa[sa.rank() - 2] : sa[0] * sa[1];
  Shape shape;
  if (batched) shape.push_back(batch);
  for (std::size_t i = batched ? sa.rank() - 2 : 0; i + 1 < sa.rank(); ++i) shape.push_back(sa[i]);
  shape.push_back(n);
  const std::array args{a.arg(), b.arg()};
  const std::size_t a_stride = batched && sa.rank() == 3 ? m * k : 0, b_stride = batched ? k * n : 0;
  TensorVar out =
      detail::record(tape, matmul_info, shape, args, name, detail::MatmulOptions{batch, m, k, n, b_stride, a_stride});
  detail::dispatch(out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* va = detail::values<T>(tape) + a.offset();
    const T* vb = detail::values<T>(tape) + b.offset();
    T* vc = detail::values<T>(tape) + out.offset();
    for (std::size_t i = 0; i < batch; ++i) {
      detail::gemm(false, false, m, n, k, va + i * a_stride, vb + i * b_stride, vc + i * m * n, T(0), "matmul");
    }
  });
  return out;
}

namespace {
void matmul_backward(Tape& tape, const TensorRecord& r) {
  const auto args = tape.tensor_args(r);
  const detail::MatmulOptions o = options<detail::MatmulOptions>(r);
  const std::size_t m = o.m, k = o.k, n = o.n;
  detail::dispatch(r.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* a = detail::values<T>(tape) + args[0].offset;
    const T* b = detail::values<T>(tape) + args[1].offset;
    T* ga = detail::operand_grads<T>(tape, args[0]);
    T* gb = detail::operand_grads<T>(tape, args[1]);
    const T* gc = detail::grads<T>(tape) + r.output;
    for (std::size_t i = 0; i < o.batch; ++i) {
      // dA += dC B^T, dB += A^T dC (beta = 1 accumulates)
      if (ga)
        detail::gemm(false, true, m, k, n, gc + i * m * n, b + i * o.b_stride, ga + i * o.a_stride, T(1), "matmul");
      if (gb)
        detail::gemm(true, false, k, n, m, a + i * o.a_stride, gc + i * m * n, gb + i * o.b_stride, T(1), "matmul");
    }
  });
}
// Ċ = Ȧ B + A Ḃ.
void matmul_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents) {
  const auto args = tape.tensor_args(r);
  const detail::MatmulOptions o = options<detail::MatmulOptions>(r);
  const double *a = tape.values().data() + args[0].offset, *b = tape.values().data() + args[1].offset;
  const double *ta = tangents.data() + args[0].offset, *tb = tangents.data() + args[1].offset;
  double* tc = tangents.data() + r.output;
  for (std::size_t i = 0; i < o.batch; ++i) {
    const std::size_t ia = i * o.a_stride, ib = i * o.b_stride, ic = i * o.m * o.n;
    detail::gemm(false, false, o.m, o.n, o.k, ta + ia, b + ib, tc + ic, 0.0, "matmul");
    detail::gemm(false, false, o.m, o.n, o.k, a + ia, tb + ib, tc + ic, 1.0, "matmul");
  }
}
// Bilinear: the backward rule with each factor replaced by its tangent, ġA += ḡ Ḃᵀ, ġB += Ȧᵀ ḡ.
void matmul_curvature(const Tape& tape, const TensorRecord& r, const SecondOrderArenas& arenas) {
  const auto args = tape.tensor_args(r);
  const detail::MatmulOptions o = options<detail::MatmulOptions>(r);
  const double *ta = arenas.tangents.data() + args[0].offset, *tb = arenas.tangents.data() + args[1].offset;
  double *ga = arenas.grad_tangents.data() + args[0].offset, *gb = arenas.grad_tangents.data() + args[1].offset;
  const double* gc = arenas.grads.data() + r.output;
  for (std::size_t i = 0; i < o.batch; ++i) {
    const std::size_t ia = i * o.a_stride, ib = i * o.b_stride, ic = i * o.m * o.n;
    detail::gemm(false, true, o.m, o.k, o.n, gc + ic, tb + ib, ga + ia, 1.0, "matmul");
    detail::gemm(true, false, o.k, o.n, o.m, ta + ia, gc + ic, gb + ib, 1.0, "matmul");
  }
}
// C(i, j) = Σ_p A(i, p) B(p, j): the partial with respect to one factor is the other's name.
bool matmul_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out) {
  if (r.dtype == DType::f32) return false;
  const auto args = tape.tensor_args(r);
  const detail::MatmulOptions o = options<detail::MatmulOptions>(r);
  const std::size_t m = o.m, k = o.k, n = o.n, b_stride = o.b_stride, a_stride = o.a_stride;
  const std::size_t batch = e / (m * n), i = e / n % m, j = e % n;
  for (std::size_t p = 0; p < k; ++p) {
    const auto a = static_cast<Slot>(args[0].offset + batch * a_stride + i * k + p);
    const auto b = static_cast<Slot>(args[1].offset + batch * b_stride + p * n + j);
    const std::string a_name = tape.slot_name(a), b_name = tape.slot_name(b);
    if (a_name.empty() || b_name.empty()) return false;
    out.push_back({a, 1.0, {b_name}});
    out.push_back({b, 1.0, {a_name}});
  }
  return true;
}
}  // namespace

// ---- reductions -----------------------------------------------------------------------------
namespace {
// The input is viewed as (outer, n, inner) and reduced over n.
struct ReduceOptions {
  static constexpr std::string_view op = "sum or mean";
  std::size_t outer, n, inner;
  bool is_mean;  // scale 1/n
};
template <typename T>
void reduce_kernel(std::size_t outer, std::size_t n, std::size_t inner, T scale, const T* x, T* y) {
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t i = 0; i < inner; ++i) {
      T total = 0;
      for (std::size_t j = 0; j < n; ++j) total += x[(o * n + j) * inner + i];
      y[o * inner + i] = total * scale;
    }
  }
}
void reduce_backward(Tape& tape, const TensorRecord& r);
bool reduce_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out);
void reduce_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents);
constexpr TensorOpInfo sum_info{"sum", &reduce_backward, nullptr, &reduce_symbolic, &reduce_tangent, &zero_curvature};
constexpr TensorOpInfo mean_info{"mean", &reduce_backward, nullptr, &reduce_symbolic, &reduce_tangent, &zero_curvature};

TensorVar reduce(const TensorVar& x, std::optional<int> axis, KeepDim keep, bool is_mean, std::string_view name) {
  const TensorOpInfo& info = is_mean ? mean_info : sum_info;
  Tape& tape = Tape::of(x.first(), info.name);
  const Shape& in = x.shape();
  std::size_t outer = 1, n = x.size(), inner = 1;
  Shape shape;
  if (axis) {
    const std::size_t ax = detail::normalize_axis(*axis, in, info.name);
    n = in[ax];
    for (std::size_t i = 0; i < in.rank(); ++i) {
      if (i < ax) outer *= in[i];
      if (i > ax) inner *= in[i];
      if (i != ax) shape.push_back(in[i]);
      if (i == ax && keep == KeepDim::yes) shape.push_back(1);
    }
  }
  const TensorArg arg = x.arg();
  TensorVar out = detail::record(tape, info, shape, std::span(&arg, 1), name, ReduceOptions{outer, n, inner, is_mean});
  detail::dispatch(out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    reduce_kernel(outer, n, inner, is_mean ? T(1) / static_cast<T>(n) : T(1), detail::values<T>(tape) + arg.offset,
                  detail::values<T>(tape) + out.offset());
  });
  return out;
}

template <typename T>
void reduce_vjp_kernel(std::size_t outer, std::size_t n, std::size_t inner, T scale, const T* gy, T* gx) {
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t i = 0; i < inner; ++i) gx[(o * n + j) * inner + i] += gy[o * inner + i] * scale;
    }
  }
}

void reduce_backward(Tape& tape, const TensorRecord& r) {
  const ReduceOptions o = options<ReduceOptions>(r);
  detail::dispatch(r.dtype, [&](auto zero) {
    using T = decltype(zero);
    T* gx = detail::operand_grads<T>(tape, tape.tensor_args(r)[0]);
    if (gx == nullptr) return;
    const T scale = o.is_mean ? T(1) / static_cast<T>(o.n) : T(1);
    reduce_vjp_kernel(o.outer, o.n, o.inner, scale, detail::grads<T>(tape) + r.output, gx);
  });
}
// Linear: the tangent is the reduction of the tangents.
void reduce_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents) {
  const ReduceOptions o = options<ReduceOptions>(r);
  reduce_kernel(o.outer, o.n, o.inner, o.is_mean ? 1.0 / static_cast<double>(o.n) : 1.0,
                tangents.data() + tape.tensor_args(r)[0].offset, tangents.data() + r.output);
}
// Each input element of the reduced run, with 1 (sum) or 1/n (mean).
bool reduce_symbolic(const Tape& tape, const TensorRecord& r, std::size_t e, std::vector<SymbolicEdge>& out) {
  if (r.dtype == DType::f32) return false;
  const ReduceOptions reduced = options<ReduceOptions>(r);
  const std::size_t n = reduced.n, inner = reduced.inner;
  const double scale = reduced.is_mean ? 1.0 / static_cast<double>(n) : 1.0;
  const std::size_t o = e / inner, i = e % inner;
  for (std::size_t j = 0; j < n; ++j) {
    out.push_back({static_cast<Slot>(tape.tensor_args(r)[0].offset + (o * n + j) * inner + i), scale, {}});
  }
  return true;
}

}  // namespace

TensorVar sum(const TensorVar& x, std::string_view name) { return reduce(x, std::nullopt, KeepDim::no, false, name); }
TensorVar mean(const TensorVar& x, std::string_view name) { return reduce(x, std::nullopt, KeepDim::no, true, name); }
TensorVar sum(const TensorVar& x, int axis, KeepDim keep, std::string_view name) {
  return reduce(x, axis, keep, false, name);
}
TensorVar mean(const TensorVar& x, int axis, KeepDim keep, std::string_view name) {
  return reduce(x, axis, keep, true, name);
}

// ---- views ---------------------------------------------------------------------------------
TensorVar reshape(const TensorVar& x, const Shape& shape) { return x.reshape(shape); }

TensorVar flatten(const TensorVar& x, std::size_t start_axis) {
  const Shape& in = x.shape();
  if (start_axis > in.rank() || (start_axis == in.rank() && in.rank() > 0)) {
    throw Error("flatten: start axis " + std::to_string(start_axis) + " is out of range for shape " + in.str());
  }
  Shape shape;
  std::size_t rest = 1;
  for (std::size_t i = 0; i < in.rank(); ++i) {
    if (i < start_axis)
      shape.push_back(in[i]);
    else
      rest *= in[i];
  }
  shape.push_back(rest);
  return x.reshape(shape);
}

// ---- transpose --------------------------------------------------------------------------------
namespace {
// Output index i reads input offset ix: the input's strides with the two axes swapped.
struct TransposeOptions {
  static constexpr std::string_view op = "transpose";
  std::size_t axis0, axis1;
};
Strides swapped_strides(const Shape& in, std::size_t axis0, std::size_t axis1) {
  Strides s = contiguous_strides(in);
  std::swap(s[axis0], s[axis1]);
  return s;
}

template <typename T>
void transpose_kernel(const Shape& out_shape, const Strides& in_strides, const T* x, T* y) {
  detail::for_each_index(out_shape, in_strides, in_strides,
                         [&](std::size_t i, std::size_t ix, std::size_t) { y[i] = x[ix]; });
}
void transpose_backward(Tape& tape, const TensorRecord& r);
void transpose_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents);
constexpr TensorOpInfo transpose_info{"transpose", &transpose_backward, nullptr,
                                      nullptr,     &transpose_tangent,  &zero_curvature};
}  // namespace

TensorVar transpose(const TensorVar& x, std::string_view name) {
  if (x.rank() != 2) throw Error("transpose: expects a 2-D tensor, got shape " + x.shape().str() + "; name two axes");
  return transpose(x, 0, 1, name);
}

TensorVar transpose(const TensorVar& x, int axis0, int axis1, std::string_view name) {
  Tape& tape = Tape::of(x.first(), "transpose");
  const std::size_t a0 = detail::normalize_axis(axis0, x.shape(), "transpose");
  const std::size_t a1 = detail::normalize_axis(axis1, x.shape(), "transpose");
  Shape shape;
  for (std::size_t i = 0; i < x.rank(); ++i) shape.push_back(x.shape()[i == a0 ? a1 : i == a1 ? a0 : i]);
  const TensorArg arg = x.arg();
  TensorVar out = detail::record(tape, transpose_info, shape, std::span(&arg, 1), name, TransposeOptions{a0, a1});
  detail::dispatch(out.dtype(), [&](auto zero) {
    using T = decltype(zero);
    transpose_kernel(shape, swapped_strides(x.shape(), a0, a1), detail::values<T>(tape) + arg.offset,
                     detail::values<T>(tape) + out.offset());
  });
  return out;
}

namespace {
template <typename T>
void transpose_vjp_kernel(const Shape& out_shape, const Strides& in_strides, const T* gy, T* gx) {
  detail::for_each_index(out_shape, in_strides, in_strides,
                         [&](std::size_t i, std::size_t ix, std::size_t) { gx[ix] += gy[i]; });
}

void transpose_backward(Tape& tape, const TensorRecord& r) {
  const TensorArg& x = tape.tensor_args(r)[0];
  const TransposeOptions o = options<TransposeOptions>(r);
  detail::dispatch(r.dtype, [&](auto zero) {
    using T = decltype(zero);
    T* gx = detail::operand_grads<T>(tape, x);
    if (gx == nullptr) return;
    transpose_vjp_kernel(r.shape, swapped_strides(x.shape, o.axis0, o.axis1), detail::grads<T>(tape) + r.output, gx);
  });
}
// Linear: the tangent is the transpose of the tangents.
void transpose_tangent(const Tape& tape, const TensorRecord& r, std::span<double> tangents) {
  const TensorArg& x = tape.tensor_args(r)[0];
  const TransposeOptions o = options<TransposeOptions>(r);
  transpose_kernel(r.shape, swapped_strides(x.shape, o.axis0, o.axis1), tangents.data() + x.offset,
                   tangents.data() + r.output);
}
}  // namespace

// ---- cast ---------------------------------------------------------------------------------------
namespace {
template <typename From, typename To>
void convert_kernel(std::size_t n, const From* x, To* y) {
  for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<To>(x[i]);
}
void cast_backward(Tape& tape, const TensorRecord& r);
constexpr TensorOpInfo cast_info{"cast", &cast_backward};
}  // namespace

TensorVar cast(const TensorVar& x, DType dtype, std::string_view name) {
  Tape& tape = Tape::of(x.first(), "cast");
  if (x.dtype() == dtype) return x;
  const TensorArg arg = x.arg();
  TensorVar out = detail::record_as(tape, cast_info, x.shape(), std::span(&arg, 1), name, {}, 0, dtype);
  if (dtype == DType::f32) {
    convert_kernel(x.size(), tape.values().data() + arg.offset, tape.values_f32().data() + out.offset());
  } else {
    convert_kernel(x.size(), tape.values_f32().data() + arg.offset, tape.values().data() + out.offset());
  }
  return out;
}

namespace {
template <typename From, typename To>
void convert_add_kernel(std::size_t n, const From* gy, To* gx) {
  for (std::size_t i = 0; i < n; ++i) gx[i] += static_cast<To>(gy[i]);
}

void cast_backward(Tape& tape, const TensorRecord& r) {
  const std::size_t n = r.shape.size();
  const TensorArg& arg = tape.tensor_args(r)[0];
  if (!arg.needs_grad) return;  // as detail::operand_grads, in the other dtype's arena
  const Slot x = arg.offset;
  if (r.dtype == DType::f32) {
    convert_add_kernel(n, tape.grads_f32().data() + r.output, tape.grads().data() + x);
  } else {
    convert_add_kernel(n, tape.grads().data() + r.output, tape.grads_f32().data() + x);
  }
}
}  // namespace

}  // namespace gradpath::ops

namespace gradpath {

void backward(const TensorVar& root) { Tape::of(root.first(), "backward").backward(root); }

}  // namespace gradpath
