// SPDX-License-Identifier: MIT
// The elementary functions (exp, σ, relu, gelu, …), one struct each: everything the scalar
// op, the tensor kernel, the formula language, the checker, the symbolic partials and the
// model loader need to know about a function lives in its struct, and nowhere else.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "autodiff/tape.hpp"

namespace gradpath {

// A function's position in fn::All.
enum class FnId : std::uint8_t {};

namespace fn {

// An option of a function (leaky_relu's slope): its name, and the value when none is given.
struct Parameter {
  std::string_view name;  // "" for a function without one
  double fallback = 0.0;
};

// What a function has unless it says otherwise. In each function:
//   name        the canonical ASCII name (op_name, the model format, the formula language);
//   spellings   the other words the formula language reads as it (LaTeX, capitalised,
//               Unicode); a word in neither is a name, so a node called Exp stays a node;
//   value(x, p), derivative(x, y, p), second(x, y, p) with y = value(x, p) (sigmoid, tanh
//               and exp reuse it) and p the parameter (unused by functions without one);
//   symbol      the partial as formula text, % standing for the input and $ for the
//               parameter: σ′(%), [% > 0], leaky_relu′(%, $);
//   kinked      the derivative jumps at x = 0 (it takes the x <= 0 side there), so the
//               checker draws both sides.
struct Function {
  static constexpr std::array<std::string_view, 0> spellings{};
  static constexpr bool kinked = false;
  static constexpr Parameter parameter{};
};

// σ(x), written so that neither branch overflows for large |x|.
template <typename T>
T logistic(T x) {
  return x >= 0 ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
}

struct Exp : Function {
  static constexpr std::string_view name = "exp", symbol = "exp(%)";
  template <typename T>
  static T value(T x, T) {
    return std::exp(x);
  }
  template <typename T>
  static T derivative(T, T y, T) {
    return y;
  }
  template <typename T>
  static T second(T, T y, T) {
    return y;
  }
};
// log of a negative number is NaN, log(0) is -inf with derivative +inf.
struct Log : Function {
  static constexpr std::string_view name = "log", symbol = "1/%";
  static constexpr std::array<std::string_view, 1> spellings{"ln"};
  template <typename T>
  static T value(T x, T) {
    return std::log(x);
  }
  template <typename T>
  static T derivative(T x, T, T) {
    return T(1) / x;
  }
  template <typename T>
  static T second(T x, T, T) {
    return T(-1) / (x * x);
  }
};
// sqrt of a negative number is NaN; sqrt'(0) is +inf.
struct Sqrt : Function {
  static constexpr std::string_view name = "sqrt", symbol = "1/(2·sqrt(%))";
  template <typename T>
  static T value(T x, T) {
    return std::sqrt(x);
  }
  template <typename T>
  static T derivative(T, T y, T) {
    return T(0.5) / y;
  }
  template <typename T>
  static T second(T x, T y, T) {
    return T(-0.25) / (x * y);
  }
};
struct Tanh : Function {
  static constexpr std::string_view name = "tanh", symbol = "tanh′(%)";
  static constexpr std::array<std::string_view, 1> spellings{"Tanh"};
  template <typename T>
  static T value(T x, T) {
    return std::tanh(x);
  }
  template <typename T>
  static T derivative(T, T y, T) {
    return T(1) - y * y;
  }
  template <typename T>
  static T second(T, T y, T) {
    return T(-2) * y * (T(1) - y * y);
  }
};
struct Sigmoid : Function {
  static constexpr std::string_view name = "sigmoid", symbol = "σ′(%)";
  static constexpr std::array<std::string_view, 3> spellings{"sigma", "σ", "Sigmoid"};  // sigma: \sigma
  template <typename T>
  static T value(T x, T) {
    return logistic(x);
  }
  template <typename T>
  static T derivative(T, T y, T) {
    return y * (T(1) - y);
  }
  template <typename T>
  static T second(T, T y, T) {
    return y * (T(1) - y) * (T(1) - T(2) * y);
  }
};
// `x > 0 ? above : otherwise` (NaN takes otherwise), built from the compare as a bit mask.
// Not the ?: itself: GCC turns it into a branch around the arithmetic that uses it, and
// under -ftrapping-math will not if-convert that arithmetic back, so the loop neither
// vectorises nor avoids mispredicting on the sign; the mask vectorises (float: cmpltps,
// pand, mulps). Both sides are evaluated, so they must be cheap and free of side effects.
template <typename T>
T select_positive(T x, T above, T otherwise) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  const auto mask = static_cast<Bits>(-static_cast<std::make_signed_t<Bits>>(x > T(0)));
  return std::bit_cast<T>(
      static_cast<Bits>((mask & std::bit_cast<Bits>(above)) | (~mask & std::bit_cast<Bits>(otherwise))));
}
// 1 where x > 0, +0 elsewhere.
template <typename T>
T positive_step(T x) {
  return select_positive(x, T(1), T(0));
}
// relu'(0) is taken as 0, as PyTorch does. The kinked functions write their sides as
// selects with no branch (a compare turned into 0 or 1): the tensor kernels loop them over
// a whole tensor, where a branch on the sign mispredicts about every other element and a
// select vectorises (ops/tensor.cpp's unary kernels). Same values, NaN included: a NaN
// compares false, so it takes the x <= 0 side as before.
struct Relu : Function {
  static constexpr std::string_view name = "relu", symbol = "[% > 0]";
  static constexpr std::array<std::string_view, 3> spellings{"ReLU", "Relu", "ReLu"};
  static constexpr bool kinked = true;
  template <typename T>
  static T value(T x, T) {
    return x > 0 ? x : T(0);
  }
  template <typename T>
  static T derivative(T x, T, T) {
    return positive_step(x);
  }
  template <typename T>
  static T second(T, T, T) {
    return T(0);
  }
};
// abs'(0) is taken as 0 (the subgradient PyTorch uses).
struct Abs : Function {
  static constexpr std::string_view name = "abs", symbol = "abs′(%)";
  static constexpr bool kinked = true;
  template <typename T>
  static T value(T x, T) {
    return std::abs(x);
  }
  template <typename T>
  static T derivative(T x, T, T) {
    return positive_step(x) - positive_step(-x);
  }
  template <typename T>
  static T second(T, T, T) {
    return T(0);
  }
};
struct Sin : Function {
  static constexpr std::string_view name = "sin", symbol = "cos(%)";
  template <typename T>
  static T value(T x, T) {
    return std::sin(x);
  }
  template <typename T>
  static T derivative(T x, T, T) {
    return std::cos(x);
  }
  template <typename T>
  static T second(T, T y, T) {
    return -y;
  }
};
struct Cos : Function {
  static constexpr std::string_view name = "cos", symbol = "cos′(%)";
  template <typename T>
  static T value(T x, T) {
    return std::cos(x);
  }
  template <typename T>
  static T derivative(T x, T, T) {
    return -std::sin(x);
  }
  template <typename T>
  static T second(T, T y, T) {
    return -y;
  }
};
// x above zero, slope·x at or below it; the derivative at 0 is the slope.
struct LeakyRelu : Function {
  static constexpr std::string_view name = "leaky_relu", symbol = "leaky_relu′(%, $)";
  static constexpr std::array<std::string_view, 1> spellings{"LeakyReLU"};
  static constexpr bool kinked = true;
  static constexpr Parameter parameter{"slope", 0.01};
  template <typename T>
  static T value(T x, T slope) {
    return select_positive(x, x, slope * x);
  }
  template <typename T>
  static T derivative(T x, T, T slope) {
    return select_positive(x, T(1), slope);
  }
  template <typename T>
  static T second(T, T, T) {
    return T(0);
  }
};
// x above zero, alpha·(e^x − 1) at or below it (expm1: exact near 0).
struct Elu : Function {
  static constexpr std::string_view name = "elu", symbol = "elu′(%, $)";
  static constexpr std::array<std::string_view, 1> spellings{"ELU"};
  static constexpr bool kinked = true;
  static constexpr Parameter parameter{"alpha", 1.0};
  template <typename T>
  static T value(T x, T alpha) {
    return x > 0 ? x : alpha * std::expm1(x);
  }
  template <typename T>
  static T derivative(T x, T y, T alpha) {
    return select_positive(x, T(1), y + alpha);
  }
  template <typename T>
  static T second(T x, T y, T alpha) {
    return x > 0 ? T(0) : y + alpha;
  }
};
// log(1 + e^x) as log1p(e^−|x|) + max(x, 0): no overflow for large x, no lost digits for
// very negative x. Its derivative is σ(x).
struct Softplus : Function {
  static constexpr std::string_view name = "softplus", symbol = "σ(%)";
  static constexpr std::array<std::string_view, 1> spellings{"Softplus"};
  template <typename T>
  static T value(T x, T) {
    return std::log1p(std::exp(-std::abs(x))) + (x > 0 ? x : T(0));
  }
  template <typename T>
  static T derivative(T x, T, T) {
    return logistic(x);
  }
  template <typename T>
  static T second(T x, T, T) {
    const T s = logistic(x);
    return s * (T(1) - s);
  }
};
// x·Φ(x), Φ the standard normal CDF (the exact GELU).
struct Gelu : Function {
  static constexpr std::string_view name = "gelu", symbol = "gelu′(%)";
  static constexpr std::array<std::string_view, 1> spellings{"GELU"};
  template <typename T>
  static T cdf(T x) {
    return T(0.5) * std::erfc(-x / std::numbers::sqrt2_v<T>);
  }
  template <typename T>
  static T pdf(T x) {
    return std::exp(T(-0.5) * x * x) * (std::numbers::inv_sqrtpi_v<T> / std::numbers::sqrt2_v<T>);
  }
  template <typename T>
  static T value(T x, T) {
    return x * cdf(x);
  }
  template <typename T>
  static T derivative(T x, T, T) {
    return cdf(x) + x * pdf(x);
  }
  template <typename T>
  static T second(T x, T, T) {
    return pdf(x) * (T(2) - x * x);
  }
};
// GELU's tanh approximation: x/2·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³).
struct GeluTanh : Function {
  static constexpr std::string_view name = "gelu_tanh", symbol = "gelu_tanh′(%)";
  template <typename T>
  static constexpr T c = std::numbers::sqrt2_v<T>* std::numbers::inv_sqrtpi_v<T>;  // √(2/π)
  template <typename T>
  static constexpr T k = T(0.044715);
  template <typename T>
  static T value(T x, T) {
    return T(0.5) * x * (T(1) + std::tanh(c<T> * (x + k<T> * x * x * x)));
  }
  template <typename T>
  static T derivative(T x, T, T) {
    const T t = std::tanh(c<T> * (x + k<T> * x * x * x)), du = c<T> * (T(1) + T(3) * k<T> * x * x);
    return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du;
  }
  template <typename T>
  static T second(T x, T, T) {
    const T t = std::tanh(c<T> * (x + k<T> * x * x * x)), du = c<T> * (T(1) + T(3) * k<T> * x * x);
    const T ddu = c<T> * T(6) * k<T> * x;
    return (T(1) - t * t) * (du + T(0.5) * x * (ddu - T(2) * t * du * du));
  }
};
// x·σ(x), also called swish.
struct Silu : Function {
  static constexpr std::string_view name = "silu", symbol = "silu′(%)";
  static constexpr std::array<std::string_view, 1> spellings{"SiLU"};
  template <typename T>
  static T value(T x, T) {
    return x * logistic(x);
  }
  template <typename T>
  static T derivative(T x, T, T) {
    const T s = logistic(x);
    return s * (T(1) + x * (T(1) - s));
  }
  template <typename T>
  static T second(T x, T, T) {
    const T s = logistic(x);
    return s * (T(1) - s) * (T(2) + x * (T(1) - T(2) * s));
  }
};

// Every function, in FnId order. A new function is a struct above and an entry here.
using All =
    std::tuple<Exp, Log, Sqrt, Tanh, Sigmoid, Relu, Abs, Sin, Cos, LeakyRelu, Elu, Softplus, Gelu, GeluTanh, Silu>;
inline constexpr std::size_t count = std::tuple_size_v<All>;

namespace detail {
template <typename F, std::size_t... I>
constexpr std::size_t index_of(std::index_sequence<I...>) {
  std::size_t index = count;
  ((std::is_same_v<F, std::tuple_element_t<I, All>> ? (index = I) : 0), ...);
  return index;
}
}  // namespace detail

template <typename F>
inline constexpr FnId id_of = FnId{static_cast<std::uint8_t>(detail::index_of<F>(std::make_index_sequence<count>{}))};

}  // namespace fn

// A function as the code that works by name sees it: its struct's fields, and its
// templates instantiated on double.
struct FunctionInfo {
  FnId id{};
  std::string_view name;
  std::span<const std::string_view> spellings;
  std::string_view symbol;
  bool kinked = false;
  fn::Parameter parameter;
  double (*value)(double x, double p) = nullptr;
  double (*derivative)(double x, double y, double p) = nullptr;
  double (*second)(double x, double y, double p) = nullptr;

  bool has_parameter() const { return !parameter.name.empty(); }
  // The partial as formula text at input `input`: σ′(z1), leaky_relu′(z1, 0.2).
  std::string symbol_at(std::string_view input, double p) const;
};

namespace fn::detail {
template <typename F>
constexpr FunctionInfo info_of() {
  return {id_of<F>,
          F::name,
          std::span<const std::string_view>(F::spellings),
          F::symbol,
          F::kinked,
          F::parameter,
          &F::template value<double>,
          &F::template derivative<double>,
          &F::template second<double>};
}
template <std::size_t... I>
constexpr std::array<FunctionInfo, count> table(std::index_sequence<I...>) {
  return {info_of<std::tuple_element_t<I, All>>()...};
}
}  // namespace fn::detail

// Every function, indexed by FnId.
inline constexpr std::array<FunctionInfo, fn::count> functions =
    fn::detail::table(std::make_index_sequence<fn::count>{});

inline const FunctionInfo& function_info(FnId f) { return functions.at(static_cast<std::size_t>(f)); }
// By canonical name (op_name, the model format); null when none is called that.
const FunctionInfo* function_named(std::string_view name);
// By a word the formula language reads as a function: the name or one of its spellings,
// exactly (only a listed spelling may differ in case).
const FunctionInfo* function_spelled(std::string_view word);

// The scalar Op of a function: Op::Function + its FnId.
constexpr Op function_op(FnId f) {
  return static_cast<Op>(static_cast<std::uint8_t>(Op::Function) + static_cast<std::uint8_t>(f));
}
constexpr std::optional<FnId> function_of(Op op) {
  const auto base = static_cast<std::uint8_t>(Op::Function), code = static_cast<std::uint8_t>(op);
  if (code < base || code - base >= static_cast<int>(fn::count)) return std::nullopt;
  return FnId{static_cast<std::uint8_t>(code - base)};
}
// The options a tensor function records: its parameter (leaky_relu's slope, pow's exponent;
// unused by the others).
struct FunctionOptions {
  static constexpr std::string_view op = "an elementwise function";
  double parameter = 0.0;
};
// A tensor function's parameter, from its FunctionOptions.
double function_parameter(const TensorRecord& record);

}  // namespace gradpath
