// SPDX-License-Identifier: MIT
// max_pool2d and avg_pool2d against a plain loop: values, grads, the tie rule, padding, errors.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/tensor.hpp"
#include "check_gradients.hpp"
#include "ops/pool.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"
#include "ops/threads.hpp"

using namespace gradpath;
using gradpath::test::check_close;
using gradpath::test::check_gradients;
using gradpath::test::weighted_sum;

namespace {

// The loop of the definition, over planes of H x W: for each window, its real cells in
// row-major order. Max: the first largest cell; avg: the cell sum over kernel^2.
struct Reference {
  std::size_t planes, h, w, k, s, p;
  std::size_t oh() const { return (h + 2 * p - k) / s + 1; }
  std::size_t ow() const { return (w + 2 * p - k) / s + 1; }
  std::vector<std::vector<std::size_t>> windows() const {
    std::vector<std::vector<std::size_t>> out;
    for (std::size_t pl = 0; pl < planes; ++pl)
      for (std::size_t y = 0; y < oh(); ++y)
        for (std::size_t x = 0; x < ow(); ++x) {
          auto& cells = out.emplace_back();
          for (std::size_t ky = 0; ky < k; ++ky)
            for (std::size_t kx = 0; kx < k; ++kx) {
              const long iy = long(y * s + ky) - long(p), ix = long(x * s + kx) - long(p);
              if (iy >= 0 && ix >= 0 && iy < long(h) && ix < long(w))
                cells.push_back((pl * h + std::size_t(iy)) * w + std::size_t(ix));
            }
        }
    return out;
  }
  std::size_t argmax(const std::vector<std::size_t>& cells, const std::vector<double>& x) const {
    std::size_t best = cells.front();
    for (std::size_t c : cells)
      if (x[c] > x[best]) best = c;
    return best;
  }
};

std::vector<double> random_values(std::size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = u(rng);
  return v;
}

}  // namespace

TEST_CASE("max_pool2d and avg_pool2d == reference loop: values and grads", "[pool]") {
  const std::size_t kernel = GENERATE(1, 2, 3);
  const std::optional<std::size_t> stride =
      GENERATE(std::optional<std::size_t>{}, std::optional<std::size_t>{1}, std::optional<std::size_t>{2});
  const std::size_t padding = GENERATE(0, 1);
  const Shape shape = GENERATE(Shape{5, 5}, Shape{2, 3, 6, 5});
  if (2 * padding > kernel) return;
  const bool batched = shape.rank() == 4;
  const Reference ref{batched ? shape[0] * shape[1] : 1, shape[shape.rank() - 2],
                      shape[shape.rank() - 1],           kernel,
                      stride.value_or(kernel),           padding};
  INFO("kernel " << kernel << " stride " << ref.s << " padding " << padding << " input " << shape.str());
  std::mt19937_64 rng(kernel * 100 + ref.s * 10 + padding + shape.rank());
  const auto xv = random_values(shape.size(), rng);
  const auto windows = ref.windows();
  const auto coef = random_values(windows.size(), rng);
  const Shape out_shape = batched ? Shape{shape[0], shape[1], ref.oh(), ref.ow()} : Shape{ref.oh(), ref.ow()};
  const ops::Pool2dOptions opt{.kernel = kernel, .stride = stride, .padding = padding};

  Tape tape;
  const TensorVar x = tape.input(xv, shape, "x");
  SECTION("max") {
    const TensorVar y = ops::max_pool2d(x, opt, "Z");
    CHECK(y.shape() == out_shape);
    std::vector<double> want, dx(xv.size(), 0.0);
    for (std::size_t k = 0; k < windows.size(); ++k) {
      const std::size_t best = ref.argmax(windows[k], xv);
      want.push_back(xv[best]);
      dx[best] += coef[k];
    }
    check_close(y.values(), want, "max value");
    tape.backward(weighted_sum(y, coef));
    check_close(x.grads(), dx, "max dX");
  }
  SECTION("avg") {
    const TensorVar y = ops::avg_pool2d(x, opt, "Z");
    CHECK(y.shape() == out_shape);
    std::vector<double> want, dx(xv.size(), 0.0);
    const double area = double(kernel * kernel);
    for (std::size_t k = 0; k < windows.size(); ++k) {
      double total = 0.0;
      for (std::size_t c : windows[k]) {
        total += xv[c];
        dx[c] += coef[k] / area;
      }
      want.push_back(total / area);
    }
    check_close(y.values(), want, "avg value");
    tape.backward(weighted_sum(y, coef));
    check_close(x.grads(), dx, "avg dX");
  }
}

TEST_CASE("pooling: central differences away from ties", "[pool][gradcheck]") {
  // x (1, 2, 4, 5): distinct values at least 0.05 apart, far above the difference step.
  std::vector<double> point(40);
  for (std::size_t i = 0; i < point.size(); ++i) point[i] = 0.05 * double((i * 17) % 40) - 1.0;
  const bool max = GENERATE(true, false);
  const std::size_t padding = GENERATE(0, 1);
  check_gradients(
      [&](Tape&, std::span<const Var> v) {
        const TensorVar x = stack(v, Shape{1, 2, 4, 5});
        const ops::Pool2dOptions opt{.kernel = 3, .stride = 2, .padding = padding};
        const TensorVar y = max ? ops::max_pool2d(x, opt) : ops::avg_pool2d(x, opt);
        std::vector<Var> terms;
        for (std::size_t k = 0; k < y.size(); ++k) terms.push_back(y[k] * y[k] * (0.5 + double(k)));
        return sum(terms);
      },
      point);
}

TEST_CASE("max_pool2d: on a tie the first maximum in row-major window order gets the whole grad", "[pool]") {
  Tape tape;
  // Window 1 (kernel 2, stride 2) holds 3 at (0,1) and (1,0); window 2 holds 7 at (0,3) and (1,3).
  const TensorVar x = tape.input(std::vector<double>{1, 3, 7, 7, 3, 0, 2, 7}, Shape{2, 4});
  const TensorVar y = ops::max_pool2d(x, {.kernel = 2});
  REQUIRE(y.shape() == Shape{1, 2});
  CHECK(y.values()[0] == 3.0);
  CHECK(y.values()[1] == 7.0);
  tape.backward(y[0] * 10.0 + y[1]);
  const std::vector<double> want{0, 10, 1, 0, 0, 0, 0, 0};  // (0,1) before (1,0); (0,2) first of three 7s
  check_close(x.grads(), want, "dX");
}

TEST_CASE("pooling: padded cells never win a max and count as zeros in an average", "[pool]") {
  Tape tape;
  const TensorVar x = tape.input(std::vector<double>{-1, -2, -3, -4}, Shape{2, 2});
  SECTION("max over all-negative input: padding (0) does not win") {
    const TensorVar y = ops::max_pool2d(x, {.kernel = 2, .stride = 1, .padding = 1});  // 3 x 3 windows
    REQUIRE(y.shape() == Shape{3, 3});
    check_close(y.values(), {-1, -1, -2, -1, -1, -2, -3, -3, -4}, "value");
    tape.backward(sum(y.elements()));
    check_close(x.grads(), {4, 2, 2, 1}, "dX");
  }
  SECTION("avg divides by the full kernel area") {
    const TensorVar y = ops::avg_pool2d(x, {.kernel = 2, .stride = 1, .padding = 1});
    REQUIRE(y.shape() == Shape{3, 3});
    check_close(y.values(), {-0.25, -0.75, -0.5, -1.0, -2.5, -1.5, -0.75, -1.75, -1.0}, "value");
    tape.backward(sum(y.elements()));
    check_close(x.grads(), {1, 1, 1, 1}, "dX");  // every cell sits in 4 windows, each 1/4
  }
}

TEST_CASE("max_pool2d: a NaN in a window propagates", "[pool]") {
  Tape tape;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const TensorVar x = tape.input(std::vector<double>{1, nan, 5, 2}, Shape{2, 2});
  const TensorVar y = ops::max_pool2d(x, {.kernel = 2});
  CHECK(std::isnan(y.values()[0]));
  tape.backward(y[0]);
  check_close(x.grads(), {0, 1, 0, 0}, "dX");
}

TEST_CASE("pooling: names and repeated use on one tape", "[pool]") {
  Tape tape;
  const TensorVar x = tape.input(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}, Shape{3, 3}, "O");
  const TensorVar z = ops::max_pool2d(x, {.kernel = 2, .stride = 1}, "Z");
  CHECK(z[3].name() == "Z4");
  check_close(z.values(), {5, 6, 8, 9}, "value");
  const TensorVar a = ops::avg_pool2d(z, {.kernel = 2});
  tape.backward(a[0]);
  check_close(x.grads(), {0, 0, 0, 0, 0.25, 0.25, 0, 0.25, 0.25}, "dX");
}

TEST_CASE("pooling: errors name the op and the shape", "[pool][errors]") {
  const bool max = GENERATE(true, false);
  const std::string op = max ? "max_pool2d" : "avg_pool2d";
  auto pool = [max](const TensorVar& x, ops::Pool2dOptions o) {
    return max ? ops::max_pool2d(x, o) : ops::avg_pool2d(x, o);
  };
  Tape tape;
  const TensorVar x = tape.input(std::vector<double>(25, 1.0), Shape{5, 5});
  CHECK_THROWS_WITH(pool(tape.input(std::vector<double>(5, 1.0), Shape{5}), {}),
                    op + ": input [5]: expected (H, W) or (N, C, H, W)");
  CHECK_THROWS_WITH(pool(x, {.kernel = 0}), op + ": input [5, 5]: kernel must be at least 1");
  CHECK_THROWS_WITH(pool(x, {.kernel = 2, .stride = 0}), op + ": input [5, 5]: stride must be at least 1");
  CHECK_THROWS_WITH(pool(x, {.kernel = 3, .padding = 2}),
                    op + ": input [5, 5]: padding 2 is more than half the kernel 3");
  CHECK_THROWS_WITH(pool(tape.input(std::vector<double>(6, 1.0), Shape{1, 1, 2, 3}), {.kernel = 3}),
                    op + ": input [1, 1, 2, 3]: kernel 3 is larger than the input padded by 0 (2 x 3)");
  CHECK_NOTHROW(pool(x, {.kernel = 2, .padding = 1}));
}

TEST_CASE("max_pool2d: long rows of windows (runs past 64), ties, NaN, both dtypes, 1 and 2 threads", "[pool]") {
  // Windows wholly inside the image go through a vectorised run; the rest one by one.
  // Values from {-1, 0, 1} tie often (as after a relu), with a few NaN.
  const std::size_t kernel = GENERATE(2, 3);
  const std::size_t stride = GENERATE(1, 2, 3);
  const std::size_t padding = GENERATE(0, 1);
  if (2 * padding > kernel) return;
  // Whole planes of 2x2 windows go through in passes of whole rows (60 x 60) or of parts
  // of one row (9 x 600).
  const auto [h, w] = GENERATE(std::pair<std::size_t, std::size_t>{7, 150}, std::pair<std::size_t, std::size_t>{60, 60},
                               std::pair<std::size_t, std::size_t>{9, 600});
  const Shape shape{2, 3, h, w};
  const Reference ref{6, h, w, kernel, stride, padding};
  INFO("kernel " << kernel << " stride " << stride << " padding " << padding << " plane " << h << "x" << w);
  std::mt19937_64 rng(kernel * 10 + stride + padding * 100 + h * w);
  std::vector<double> xv(shape.size());
  for (double& v : xv) v = rng() % 97 == 0 ? std::numeric_limits<double>::quiet_NaN() : double(int(rng() % 3) - 1);
  // The first NaN of the window wins; else the first largest cell.
  std::vector<std::size_t> winner;
  for (const auto& cells : ref.windows()) {
    std::size_t best = cells.front();
    for (std::size_t c : cells)
      if (!std::isnan(xv[best]) && (std::isnan(xv[c]) || xv[c] > xv[best])) best = c;
    winner.push_back(best);
  }
  const ops::Pool2dOptions opt{.kernel = kernel, .stride = stride, .padding = padding};
  for (const DType dtype : {DType::f64, DType::f32}) {
    for (const std::size_t threads : {1, 2}) {
      INFO(dtype_name(dtype) << " at " << threads << " threads");
      set_num_threads(threads);
      Tape tape;
      const TensorVar x = tape.input(xv, shape, "x", dtype);
      const TensorVar y = ops::max_pool2d(x, opt);
      tape.backward(ops::sum(y));  // every output's grad 1, NaN or not
      std::vector<double> got_y, got_dx;
      if (dtype == DType::f32) {
        got_y.assign(y.values_f32().begin(), y.values_f32().end());
        got_dx.assign(x.grads_f32().begin(), x.grads_f32().end());
      } else {
        got_y.assign(y.values().begin(), y.values().end());
        got_dx.assign(x.grads().begin(), x.grads().end());
      }
      REQUIRE(got_y.size() == winner.size());
      std::vector<double> want_dx(xv.size(), 0.0);
      bool same = true;
      for (std::size_t k = 0; k < winner.size(); ++k) {
        const double want = xv[winner[k]];
        same &= std::isnan(want) ? std::isnan(got_y[k]) : got_y[k] == want;
        want_dx[winner[k]] += 1.0;
      }
      CHECK(same);
      CHECK(got_dx == want_dx);
    }
  }
  set_num_threads(1);
}

TEST_CASE("max_pool2d 2x2: every window of NaN, 0 and 1 picks the first NaN, else the first maximum", "[pool]") {
  // The 81 windows of {NaN, 0, 1}^4 side by side in one (2, 162) image: ties and NaNs in
  // every position, across the column-first 2x2 path's chunk of 64 windows.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::array<double, 3> cell{nan, 0.0, 1.0};
  constexpr std::size_t windows = 81, width = 2 * windows;
  std::vector<double> xv(2 * width);
  std::vector<std::size_t> want;  // the winner's index in xv
  for (std::size_t wdw = 0; wdw < windows; ++wdw) {
    const std::array<std::size_t, 4> at{2 * wdw, 2 * wdw + 1, width + 2 * wdw, width + 2 * wdw + 1};  // row-major
    for (std::size_t t = 0, code = wdw; t < 4; ++t, code /= 3) xv[at[t]] = cell[code % 3];
    std::size_t best = at[0];
    for (std::size_t c : at)
      if (!std::isnan(xv[best]) && (std::isnan(xv[c]) || xv[c] > xv[best])) best = c;
    want.push_back(best);
  }
  for (const DType dtype : {DType::f64, DType::f32}) {
    INFO(dtype_name(dtype));
    Tape tape;
    const TensorVar x = tape.input(xv, Shape{2, width}, "x", dtype);
    const TensorVar y = ops::max_pool2d(x, {.kernel = 2});
    tape.backward(ops::sum(y));
    std::vector<double> got_y, got_dx;
    if (dtype == DType::f32) {
      got_y.assign(y.values_f32().begin(), y.values_f32().end());
      got_dx.assign(x.grads_f32().begin(), x.grads_f32().end());
    } else {
      got_y.assign(y.values().begin(), y.values().end());
      got_dx.assign(x.grads().begin(), x.grads().end());
    }
    std::vector<double> want_dx(xv.size(), 0.0);
    for (std::size_t k = 0; k < windows; ++k) {
      INFO("window " << k);
      CHECK((std::isnan(xv[want[k]]) ? std::isnan(got_y[k]) : got_y[k] == xv[want[k]]));
      want_dx[want[k]] = 1.0;
    }
    CHECK(got_dx == want_dx);
  }
}
