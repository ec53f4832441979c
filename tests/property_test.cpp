// SPDX-License-Identifier: MIT
// Property tests: random scalar DAGs and random tensor-op chains, every grad against
// central finite differences. Seeded and reproducible; a failure prints its seed and program.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "autodiff/gradcheck.hpp"
#include "autodiff/tensor.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/pool.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;

namespace {

// Values stay below this, so a central difference with h = 1e-6 keeps about 8 digits.
constexpr double value_bound = 100.0;
// A kink (relu, abs, max, min, max_pool2d ties) must be at least this far from the
// point, far beyond the finite-difference steps, or the op is not chosen there.
constexpr double kink_margin = 1e-2;
const GradcheckOptions tolerance{.step = 1e-6, .rtol = 1e-4, .atol = 1e-6};

double uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}
std::size_t pick(std::mt19937_64& rng, std::size_t n) {
  return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
}

// ---- scalar DAGs ---------------------------------------------------------------------

enum class S {
  Add,
  Sub,
  Mul,
  Div,
  AddC,
  RSubC,
  MulC,
  RDivC,
  Neg,
  Exp,
  Log,
  Sqrt,
  PowC,
  PowVV,
  PowCV,
  Tanh,
  Sigmoid,
  Relu,
  Abs,
  Sin,
  Cos,
  Max,
  Min,
  Sum,
  count
};

struct Instr {
  S op;
  std::vector<std::size_t> args;  // indices into the pool: leaves first, then results
  double c = 0.0;                 // the constant of AddC ... PowCV
};

Var evaluate(const Instr& in, const std::vector<Var>& pool) {
  const Var& a = pool[in.args[0]];
  const Var& b = pool[in.args.size() > 1 ? in.args[1] : in.args[0]];
  switch (in.op) {
    case S::Add:
      return a + b;
    case S::Sub:
      return a - b;
    case S::Mul:
      return a * b;
    case S::Div:
      return a / b;
    case S::AddC:
      return a + in.c;
    case S::RSubC:
      return in.c - a;
    case S::MulC:
      return a * in.c;
    case S::RDivC:
      return in.c / a;
    case S::Neg:
      return -a;
    case S::Exp:
      return exp(a);
    case S::Log:
      return log(a);
    case S::Sqrt:
      return sqrt(a);
    case S::PowC:
      return pow(a, in.c);
    case S::PowVV:
      return pow(a, b);
    case S::PowCV:
      return pow(in.c, a);
    case S::Tanh:
      return tanh(a);
    case S::Sigmoid:
      return sigmoid(a);
    case S::Relu:
      return relu(a);
    case S::Abs:
      return abs(a);
    case S::Sin:
      return sin(a);
    case S::Cos:
      return cos(a);
    case S::Max:
      return max(a, b);
    case S::Min:
      return min(a, b);
    case S::Sum: {
      std::vector<Var> terms;
      for (std::size_t i : in.args) terms.push_back(pool[i]);
      return sum(terms);
    }
    case S::count:
      break;
  }
  throw Error("property_test: bad instruction");
}

const char* const scalar_names[] = {"add",     "sub",  "mul", "div",  "addc", "rsubc", "mulc", "rdivc",
                                    "neg",     "exp",  "log", "sqrt", "powc", "pow",   "cpow", "tanh",
                                    "sigmoid", "relu", "abs", "sin",  "cos",  "max",   "min",  "sum"};

bool binary(S op) { return op <= S::Div || op == S::PowVV || op == S::Max || op == S::Min; }

// True when the op is smooth around operand values x, y and its value stays bounded.
bool smooth_at(const Instr& in, double x, double y) {
  switch (in.op) {
    case S::Div:
      return std::abs(y) > 0.2;
    case S::RDivC:
      return std::abs(x) > 0.2;
    case S::Exp:
      return x < 4.0;
    case S::Log:
    case S::Sqrt:
    case S::PowVV:
      return x > 0.2 && std::abs(y) < 3.0;
    case S::PowC:
      return in.c == std::round(in.c) ? (in.c >= 0 || std::abs(x) > 0.2) : x > 0.2;
    case S::Relu:
    case S::Abs:
      return std::abs(x) > kink_margin;
    case S::Max:
    case S::Min:
      return in.args[0] != in.args[1] && std::abs(x - y) > kink_margin;
    default:
      return true;
  }
}

struct ScalarProgram {
  std::vector<double> point;
  std::vector<Instr> code;

  // Replays the program on the leaves; the root sums every result, so each is used.
  Var run(std::span<const Var> leaves) const {
    std::vector<Var> pool(leaves.begin(), leaves.end());
    for (const Instr& in : code) pool.push_back(evaluate(in, pool));
    return sum(std::span(pool).subspan(point.size()));
  }
  std::string text() const {
    std::string out;
    for (std::size_t i = 0; i < point.size(); ++i)
      out += "v" + std::to_string(i) + " = " + std::to_string(point[i]) + "; ";
    for (std::size_t k = 0; k < code.size(); ++k) {
      out += "v" + std::to_string(point.size() + k) + " = " + scalar_names[static_cast<int>(code[k].op)] + "(";
      const Instr& in = code[k];
      const std::size_t used = in.op == S::Sum ? in.args.size() : binary(in.op) ? 2 : 1;
      for (std::size_t i = 0; i < used; ++i) out += (i ? ", v" : "v") + std::to_string(in.args[i]);
      if ((in.op >= S::AddC && in.op <= S::RDivC) || in.op == S::PowC || in.op == S::PowCV)
        out += ", c=" + std::to_string(in.c);
      out += "); ";
    }
    return out + "root = sum of v" + std::to_string(point.size()) + " ...";
  }
};

// Draws instructions at the point, keeping only those smooth there with a bounded value;
// operands favour recent results (depth) but any earlier value may be reused (fan-out).
ScalarProgram random_scalar_program(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  ScalarProgram p;
  const std::size_t inputs = 1 + pick(rng, 4), length = 2 + pick(rng, 14);
  for (std::size_t i = 0; i < inputs; ++i) p.point.push_back(uniform(rng, -2.0, 2.0));
  Tape tape;
  std::vector<Var> pool;
  for (double x : p.point) pool.push_back(tape.input(x));
  auto operand = [&] {
    return rng() % 2 ? pool.size() - 1 - pick(rng, std::min<std::size_t>(3, pool.size())) : pick(rng, pool.size());
  };
  for (std::size_t tries = 0; p.code.size() < length && tries < 20 * length; ++tries) {
    Instr in{static_cast<S>(pick(rng, static_cast<std::size_t>(S::count))), {operand(), operand()}};
    if (in.op == S::Sum) {
      for (std::size_t extra = pick(rng, 5); extra-- > 0;) in.args.push_back(operand());
    }
    const double powers[] = {-2.0, -1.0, 0.5, 1.5, 2.0, 3.0};
    in.c = in.op == S::PowC    ? powers[pick(rng, 6)]
           : in.op == S::PowCV ? uniform(rng, 0.3, 2.5)
                               : uniform(rng, -2.0, 2.0);
    if (in.op == S::RDivC && std::abs(in.c) < 0.1) in.c = 1.0;
    if (!smooth_at(in, pool[in.args[0]].value(), pool[in.args[1]].value())) continue;
    const Var v = evaluate(in, pool);
    if (!(std::abs(v.value()) < value_bound)) continue;
    pool.push_back(v);
    p.code.push_back(std::move(in));
  }
  return p;
}

TEST_CASE("property: random scalar DAGs match finite differences", "[property][scalar]") {
  constexpr std::uint64_t programs = 10000;
  for (std::uint64_t seed = 1; seed <= programs; ++seed) {
    const ScalarProgram p = random_scalar_program(seed);
    const GradcheckResult result =
        gradcheck([&p](Tape&, std::span<const Var> leaves) { return p.run(leaves); }, p.point, tolerance);
    if (!result.ok) {
      INFO("seed " << seed << ": " << p.text() << "\n" << result.report());
      CHECK(result.ok);
    }
  }
}

// ---- tensor chains -------------------------------------------------------------------

// One step of a chain: the op applied to the running tensor, with `leaves` new leaf
// elements (its parameters) that are checked too.
struct Step {
  std::string text;
  std::vector<double> values;  // initial values of its own leaves
  std::function<TensorVar(const TensorVar& x, std::span<const Var> own)> apply;
};

struct TensorProgram {
  Shape input;
  std::vector<double> input_values;
  std::vector<Step> steps;

  std::vector<double> point() const {
    std::vector<double> all = input_values;
    for (const Step& s : steps) all.insert(all.end(), s.values.begin(), s.values.end());
    return all;
  }
  Var run(std::span<const Var> leaves) const {
    TensorVar x = stack(leaves.first(input.size()), input);
    std::size_t at = input.size();
    for (const Step& s : steps) {
      x = s.apply(x, leaves.subspan(at, s.values.size()));
      at += s.values.size();
    }
    return ops::sum(x)[0];
  }
  std::string text() const {
    std::string out = "x " + input.str();
    for (const Step& s : steps) out += " -> " + s.text;
    return out + " -> sum";
  }
};

std::vector<double> random_values(std::mt19937_64& rng, std::size_t n, double lo, double hi) {
  std::vector<double> v(n);
  for (double& x : v) x = uniform(rng, lo, hi);
  return v;
}

// The smallest gap between the largest and second-largest real cell of any max_pool2d
// window over the last two axes; windows with one real cell have no tie.
double max_pool_gap(const TensorVar& x, std::size_t k, std::size_t stride, std::size_t pad) {
  const std::size_t r = x.rank(), h = x.shape()[r - 2], w = x.shape()[r - 1];
  const std::size_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
  const std::span<const double> v = x.values();
  double gap = INFINITY;
  for (std::size_t plane = 0; plane < x.size() / (h * w); ++plane) {
    for (std::size_t i = 0; i < oh * ow; ++i) {
      std::vector<double> cells;
      for (std::size_t di = 0; di < k; ++di) {
        for (std::size_t dj = 0; dj < k; ++dj) {
          const auto row = static_cast<long>((i / ow) * stride + di) - static_cast<long>(pad);
          const auto col = static_cast<long>((i % ow) * stride + dj) - static_cast<long>(pad);
          if (row >= 0 && col >= 0 && row < static_cast<long>(h) && col < static_cast<long>(w))
            cells.push_back(v[plane * h * w + static_cast<std::size_t>(row) * w + static_cast<std::size_t>(col)]);
        }
      }
      std::sort(cells.rbegin(), cells.rend());
      if (cells.size() > 1) gap = std::min(gap, cells[0] - cells[1]);
    }
  }
  return gap;
}

// A random step valid for x's shape and smooth at x's values, or nothing this time.
std::optional<Step> random_step(std::mt19937_64& rng, const TensorVar& x) {
  const Shape s = x.shape();
  const std::size_t rank = s.rank();
  const auto values = x.values();
  const double hi = *std::max_element(values.begin(), values.end());
  double nearest_zero = INFINITY;
  for (double v : values) nearest_zero = std::min(nearest_zero, std::abs(v));
  switch (pick(rng, 12)) {
    case 0: {  // smooth elementwise functions, composites with fan-out among them
      switch (pick(rng, 8)) {
        case 0:
          return Step{"tanh", {}, [](const TensorVar& t, auto) { return ops::tanh(t); }};
        case 1:
          return Step{"sigmoid", {}, [](const TensorVar& t, auto) { return ops::sigmoid(t); }};
        case 2:
          if (hi > 3.0) return {};
          return Step{"exp", {}, [](const TensorVar& t, auto) { return ops::exp(t); }};
        case 3:
          return Step{"log(x*x+0.5)", {}, [](const TensorVar& t, auto) { return ops::log(t * t + 0.5); }};
        case 4:
          return Step{"sqrt(x*x+0.25)", {}, [](const TensorVar& t, auto) { return ops::sqrt(t * t + 0.25); }};
        case 5:
          return Step{"x*sigmoid(x)", {}, [](const TensorVar& t, auto) { return t * ops::sigmoid(t); }};
        case 6:
          return Step{"pow 3", {}, [](const TensorVar& t, auto) { return ops::pow(t, 3.0); }};
        default:
          return Step{"1.3 - neg(x)/2", {}, [](const TensorVar& t, auto) { return 1.3 - ops::neg(t) / 2.0; }};
      }
    }
    case 1: {  // kinked elementwise functions, only away from the kink
      if (nearest_zero < kink_margin) return {};
      if (rng() % 2) return Step{"relu", {}, [](const TensorVar& t, auto) { return ops::relu(t); }};
      return Step{"abs", {}, [](const TensorVar& t, auto) { return ops::abs(t); }};
    }
    case 2:
    case 3: {  // broadcasting with a new tensor: drop leading axes, set some to 1, maybe add one
      Shape b;
      const std::size_t dropped = pick(rng, rank + 1);
      if (dropped == 0 && rank < 4 && rng() % 3 == 0 && 2 * s.size() <= 96) b.push_back(2);
      for (std::size_t axis = dropped; axis < rank; ++axis) b.push_back(rng() % 3 ? s[axis] : 1);
      const int op = static_cast<int>(pick(rng, 4));
      const bool swap = rng() % 2;
      const std::vector<double> v =
          op == 3 ? random_values(rng, b.size(), 0.5, 1.5) : random_values(rng, b.size(), -1.0, 1.0);
      const char* names[] = {"add", "sub", "mul", "div"};
      return Step{std::string(names[op]) + (swap && op != 3 ? " (b first) " : " ") + b.str(), v,
                  [b, op, swap](const TensorVar& t, std::span<const Var> own) {
                    const TensorVar c = stack(own, b);
                    const TensorVar& l = swap ? c : t;
                    const TensorVar& r = swap ? t : c;
                    switch (op) {
                      case 0:
                        return ops::add(l, r);
                      case 1:
                        return ops::sub(l, r);
                      case 2:
                        return ops::mul(l, r);
                      default:
                        return ops::div(t, c);  // the new tensor is positive: a safe divisor
                    }
                  }};
    }
    case 4:  // a scalar Var operand broadcast against everything
      return Step{"mul by a scalar Var", random_values(rng, 1, -1.5, 1.5),
                  [](const TensorVar& t, std::span<const Var> own) { return ops::mul(t, own[0]); }};
    case 5: {  // matmul: (m,k)x(k,n), (b,m,k)x(k,n), (b,m,k)x(b,k,n); a vector becomes a row
      if (rank == 0 || rank > 3) return {};
      const std::size_t n = 1 + pick(rng, 4), k = s[rank - 1];
      const bool batched = rank == 3 && rng() % 2;
      const Shape w = batched ? Shape{s[0], k, n} : Shape{k, n};
      return Step{"matmul " + w.str(), random_values(rng, w.size(), -1.0, 1.0),
                  [w, rank](const TensorVar& t, std::span<const Var> own) {
                    const TensorVar a = rank == 1 ? t.reshape(Shape{1, t.shape()[0]}) : t;
                    return ops::matmul(a, stack(own, w));
                  }};
    }
    case 6: {  // dense, with or without bias
      if (rank != 1 && rank != 2) return {};
      const std::size_t out = 1 + pick(rng, 4), in = s[rank - 1];
      const bool bias = rng() % 2;
      return Step{"dense " + Shape{out, in}.str() + (bias ? " + b" : ""),
                  random_values(rng, out * in + (bias ? out : 0), -1.0, 1.0),
                  [out, in, bias](const TensorVar& t, std::span<const Var> own) {
                    const TensorVar w = stack(own.first(out * in), Shape{out, in});
                    return bias ? ops::dense(t, w, stack(own.subspan(out * in), Shape{out})) : ops::dense(t, w);
                  }};
    }
    case 7: {  // softmax family along the last axis
      if (rank == 0) return {};
      if (rng() % 2) return Step{"softmax", {}, [](const TensorVar& t, auto) { return ops::softmax(t); }};
      return Step{"log_softmax", {}, [](const TensorVar& t, auto) { return ops::log_softmax(t); }};
    }
    case 8: {  // reductions along an axis, keeping it or not
      if (rank < 2) return {};
      const int axis = static_cast<int>(pick(rng, rank)) - (rng() % 2 ? static_cast<int>(rank) : 0);
      const auto keep = rng() % 2 ? ops::KeepDim::yes : ops::KeepDim::no;
      const bool mean = rng() % 2;
      return Step{std::string(mean ? "mean" : "sum") + " axis " + std::to_string(axis) +
                      (keep == ops::KeepDim::yes ? " keep" : ""),
                  {},
                  [axis, keep, mean](const TensorVar& t, auto) {
                    return mean ? ops::mean(t, axis, keep) : ops::sum(t, axis, keep);
                  }};
    }
    case 9: {  // views and copies of the layout
      if (rank < 2) return {};
      if (rank == 2 && rng() % 2)
        return Step{"transpose", {}, [](const TensorVar& t, auto) { return ops::transpose(t); }};
      const int a0 = static_cast<int>(pick(rng, rank)), a1 = static_cast<int>(pick(rng, rank));
      if (rng() % 2) {
        return Step{"transpose " + std::to_string(a0) + " " + std::to_string(a1),
                    {},
                    [a0, a1](const TensorVar& t, auto) { return ops::transpose(t, a0, a1); }};
      }
      return Step{"flatten 1 then tanh", {}, [](const TensorVar& t, auto) { return ops::tanh(ops::flatten(t, 1)); }};
    }
    case 10: {  // conv2d, fused or as multiply-adds, on (H, W) or (N, C, H, W)
      if (rank != 2 && rank != 4) return {};
      const std::size_t h = s[rank - 2], w = s[rank - 1];
      const ops::Conv2dOptions opt{.stride = 1 + pick(rng, 2), .padding = pick(rng, 2)};
      const std::size_t kh = 1 + pick(rng, std::min<std::size_t>(3, h + 2 * opt.padding));
      const std::size_t kw = 1 + pick(rng, std::min<std::size_t>(3, w + 2 * opt.padding));
      const std::size_t o = 1 + pick(rng, 2);
      const Shape ws = rank == 2 ? Shape{kh, kw} : Shape{o, s[1], kh, kw};
      const bool fused = rng() % 2, bias = rank == 4 && rng() % 2;
      return Step{std::string(fused ? "conv2d " : "conv2d_mac ") + ws.str() + " stride " + std::to_string(opt.stride) +
                      " pad " + std::to_string(opt.padding) + (bias ? " + b" : ""),
                  random_values(rng, ws.size() + (bias ? o : 0), -1.0, 1.0),
                  [ws, opt, fused, bias, o](const TensorVar& t, std::span<const Var> own) {
                    const TensorVar k = stack(own.first(ws.size()), ws);
                    if (bias) {
                      const TensorVar b = stack(own.subspan(ws.size()), Shape{o});
                      return fused ? ops::conv2d(t, k, b, opt) : ops::conv2d_mac(t, k, b, opt);
                    }
                    return fused ? ops::conv2d(t, k, opt) : ops::conv2d_mac(t, k, opt);
                  }};
    }
    default: {  // pooling; max only where no window has a near tie
      if ((rank != 2 && rank != 4) || s[rank - 2] < 2 || s[rank - 1] < 2) return {};
      const std::size_t k = std::min<std::size_t>({2 + pick(rng, 2), s[rank - 2], s[rank - 1]});
      const ops::Pool2dOptions opt{.kernel = k, .stride = 1 + pick(rng, k), .padding = pick(rng, k / 2 + 1)};
      const bool max = rng() % 2 && max_pool_gap(x, k, *opt.stride, opt.padding) > kink_margin;
      return Step{
          std::string(max ? "max_pool2d" : "avg_pool2d") + " k " + std::to_string(k) + " stride " +
              std::to_string(*opt.stride) + " pad " + std::to_string(opt.padding),
          {},
          [opt, max](const TensorVar& t, auto) { return max ? ops::max_pool2d(t, opt) : ops::avg_pool2d(t, opt); }};
    }
  }
}

// Draws steps at the point, keeping those whose output is small and bounded; ends with
// a weighted sum so every output element has its own grad.
TensorProgram random_tensor_program(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  TensorProgram p;
  const std::size_t rank = 1 + pick(rng, 4);
  for (std::size_t axis = 0; axis < rank; ++axis) p.input.push_back(1 + pick(rng, rank >= 3 ? 3 : 5));
  p.input_values = random_values(rng, p.input.size(), -2.0, 2.0);
  Tape tape;
  TensorVar x = tape.input(p.input_values, p.input);
  const std::size_t length = 1 + pick(rng, 5);
  for (std::size_t tries = 0; p.steps.size() < length && tries < 30; ++tries) {
    std::optional<Step> step = random_step(rng, x);
    if (!step) continue;
    std::vector<Var> own;
    for (double v : step->values) own.push_back(tape.input(v));
    const TensorVar y = step->apply(x, own);
    const auto v = y.values();
    if (y.size() > 96 || std::any_of(v.begin(), v.end(), [](double e) { return !(std::abs(e) < value_bound); }))
      continue;
    x = y;
    p.steps.push_back(std::move(*step));
  }
  const Shape out = x.shape();
  p.steps.push_back(Step{"mul " + out.str(), random_values(rng, out.size(), -1.0, 1.0),
                         [out](const TensorVar& t, std::span<const Var> own) { return ops::mul(t, stack(own, out)); }});
  return p;
}

TEST_CASE("property: random tensor-op chains match finite differences", "[property][tensor]") {
  constexpr std::uint64_t programs = 3000;
  for (std::uint64_t seed = 1; seed <= programs; ++seed) {
    const TensorProgram p = random_tensor_program(seed);
    const GradcheckResult result =
        gradcheck([&p](Tape&, std::span<const Var> leaves) { return p.run(leaves); }, p.point(), tolerance);
    if (!result.ok) {
      INFO("seed " << seed << ": " << p.text() << "\n" << result.report());
      CHECK(result.ok);
    }
  }
}

TEST_CASE("property: the generators are reproducible from the seed", "[property]") {
  CHECK(random_scalar_program(7).text() == random_scalar_program(7).text());
  CHECK(random_scalar_program(7).text() != random_scalar_program(8).text());
  CHECK(random_tensor_program(7).text() == random_tensor_program(7).text());
  CHECK(random_tensor_program(7).point() == random_tensor_program(7).point());
}

}  // namespace

TEST_CASE("property: the check catches a wrong partial", "[property]") {
  // sin recorded with the partial of cos: gradcheck must notice
  const auto wrong_sin = [](Tape& tape, std::span<const Var> v) {
    return tape.record(function_op(fn::id_of<fn::Sin>), std::sin(v[0].value()), v[0].slot(), -std::sin(v[0].value()));
  };
  CHECK_FALSE(gradcheck(wrong_sin, std::vector<double>{0.4}, tolerance).ok);
}
