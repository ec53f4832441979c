// SPDX-License-Identifier: MIT
// conv2d (fused) against conv2d_mac (scalar oracle) against a plain loop: values, dX, dW, db.
#include <catch2/catch.hpp>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "autodiff/tensor.hpp"
#include "check_gradients.hpp"
#include "ops/conv.hpp"
#include "ops/scalar.hpp"
#include "ops/threads.hpp"

using namespace gradpath;
using gradpath::test::check_close;
using gradpath::test::check_gradients;
using gradpath::test::weighted_sum;

namespace {

std::vector<double> random_values(std::size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = u(rng);
  return v;
}

// The textbook loop: out[n,o,oy,ox] = b[o] + sum_{c,ky,kx} w[o,c,ky,kx] x[n,c,oy*s+ky-p,ox*s+kx-p],
// and, for L = sum_k c_k out_k, the grads dL/dx, dL/dw, dL/db by the same loop.
struct Reference {
  std::size_t n, c, h, w, o, kh, kw, s, p;
  std::size_t oh() const { return (h + 2 * p - kh) / s + 1; }
  std::size_t ow() const { return (w + 2 * p - kw) / s + 1; }
  std::size_t outputs() const { return n * o * oh() * ow(); }

  template <typename Tap>
  void for_each_tap(Tap tap) const {
    std::size_t k = 0;
    for (std::size_t in = 0; in < n; ++in)
      for (std::size_t io = 0; io < o; ++io)
        for (std::size_t y = 0; y < oh(); ++y)
          for (std::size_t x = 0; x < ow(); ++x, ++k)
            for (std::size_t ic = 0; ic < c; ++ic)
              for (std::size_t ky = 0; ky < kh; ++ky)
                for (std::size_t kx = 0; kx < kw; ++kx) {
                  const long iy = long(y * s + ky) - long(p), ix = long(x * s + kx) - long(p);
                  if (iy < 0 || ix < 0 || iy >= long(h) || ix >= long(w)) continue;
                  tap(k, io, ((in * c + ic) * h + std::size_t(iy)) * w + std::size_t(ix),
                      ((io * c + ic) * kh + ky) * kw + kx);
                }
  }
  std::vector<double> forward(const std::vector<double>& xv, const std::vector<double>& wv,
                              const std::vector<double>& bv) const {
    std::vector<double> out(outputs());
    for (std::size_t k = 0; k < out.size(); ++k) out[k] = bv[(k / (oh() * ow())) % o];
    for_each_tap([&](std::size_t k, std::size_t, std::size_t xi, std::size_t wi) { out[k] += wv[wi] * xv[xi]; });
    return out;
  }
  void grads(const std::vector<double>& xv, const std::vector<double>& wv, const std::vector<double>& coef,
             std::vector<double>& dx, std::vector<double>& dw, std::vector<double>& db) const {
    dx.assign(xv.size(), 0.0);
    dw.assign(wv.size(), 0.0);
    db.assign(o, 0.0);
    for (std::size_t k = 0; k < coef.size(); ++k) db[(k / (oh() * ow())) % o] += coef[k];
    for_each_tap([&](std::size_t k, std::size_t, std::size_t xi, std::size_t wi) {
      dw[wi] += coef[k] * xv[xi];
      dx[xi] += coef[k] * wv[wi];
    });
  }
};

}  // namespace

TEST_CASE("conv2d == conv2d_mac == reference loop: values, dX, dW, db", "[conv2d]") {
  const std::size_t stride = GENERATE(1, 2, 3);
  const std::size_t padding = GENERATE(0, 1, 2, 3);  // 3 passes every kernel, as PyTorch allows
  const std::size_t batch = GENERATE(1, 2);
  const std::size_t in_ch = GENERATE(1, 2, 3);
  const std::size_t out_ch = GENERATE(1, 2, 3);
  const auto [h, w] = GENERATE(std::pair<std::size_t, std::size_t>{5, 5}, std::pair<std::size_t, std::size_t>{6, 4});
  const auto [kh, kw] = GENERATE(std::pair<std::size_t, std::size_t>{3, 3}, std::pair<std::size_t, std::size_t>{2, 3});
  if (kh > h + 2 * padding || kw > w + 2 * padding) return;  // kernel does not fit
  const Reference ref{batch, in_ch, h, w, out_ch, kh, kw, stride, padding};
  INFO("stride " << stride << " padding " << padding << " batch " << batch << " channels " << in_ch << "->" << out_ch
                 << " input " << h << "x" << w << " kernel " << kh << "x" << kw);

  std::mt19937_64 rng(stride * 1000 + padding * 100 + batch * 10 + in_ch + out_ch * 7 + h * 13 + kw * 17);
  const auto xv = random_values(batch * in_ch * h * w, rng);
  const auto wv = random_values(out_ch * in_ch * kh * kw, rng);
  const auto bv = random_values(out_ch, rng);
  const auto coef = random_values(ref.outputs(), rng);

  Tape tape;
  const TensorVar x = tape.input(xv, Shape{batch, in_ch, h, w}, "x");
  const TensorVar wt = tape.param(wv, Shape{out_ch, in_ch, kh, kw}, "w");
  const TensorVar b = tape.param(bv, Shape{out_ch}, "b");
  const TensorVar mac = ops::conv2d_mac(x, wt, b, {.stride = stride, .padding = padding});
  const TensorVar fused = ops::conv2d(x, wt, b, {.stride = stride, .padding = padding});
  const Shape expected_shape{batch, out_ch, ref.oh(), ref.ow()};
  CHECK(mac.shape() == expected_shape);
  CHECK(fused.shape() == expected_shape);

  const auto want = ref.forward(xv, wv, bv);
  check_close(mac.values(), want, "conv2d_mac value");
  check_close(fused.values(), want, "conv2d value");

  std::vector<double> dx, dw, db;
  ref.grads(xv, wv, coef, dx, dw, db);
  const Var loss_mac = weighted_sum(mac, coef), loss_fused = weighted_sum(fused, coef);
  tape.backward(loss_mac);
  check_close(x.grads(), dx, "conv2d_mac dX");
  check_close(wt.grads(), dw, "conv2d_mac dW");
  check_close(b.grads(), db, "conv2d_mac db");
  tape.backward(loss_fused);
  check_close(x.grads(), dx, "conv2d dX");
  check_close(wt.grads(), dw, "conv2d dW");
  check_close(b.grads(), db, "conv2d db");
}

// At stride 1 with kW = 2 padding + 1 the output is as wide as the input, and im2col and
// col2im move each tap's plane as one shifted run; the cells that wrap past a row's end
// land on padding. Narrow images make the shift as wide as the row, or wider.
TEST_CASE("conv2d: same-width planes as shifted runs, down to one-column images", "[conv2d]") {
  struct Case {
    std::size_t h, w, kh, kw, padding;
  };
  const Case c = GENERATE(Case{1, 1, 3, 3, 1}, Case{2, 1, 3, 3, 1}, Case{3, 1, 5, 5, 2}, Case{3, 2, 5, 5, 2},
                          Case{4, 3, 1, 5, 2}, Case{2, 2, 3, 7, 3}, Case{5, 6, 2, 3, 1}, Case{7, 9, 3, 3, 1});
  const std::size_t batch = 2, in_ch = 2, out_ch = 3;
  const Reference ref{batch, in_ch, c.h, c.w, out_ch, c.kh, c.kw, 1, c.padding};
  INFO("input " << c.h << "x" << c.w << " kernel " << c.kh << "x" << c.kw << " padding " << c.padding);
  REQUIRE(ref.ow() == c.w);
  std::mt19937_64 rng(c.h * 100 + c.w * 10 + c.kw);
  const auto xv = random_values(batch * in_ch * c.h * c.w, rng);
  const auto wv = random_values(out_ch * in_ch * c.kh * c.kw, rng);
  const auto bv = random_values(out_ch, rng);
  const auto coef = random_values(ref.outputs(), rng);
  Tape tape;
  const TensorVar x = tape.input(xv, Shape{batch, in_ch, c.h, c.w}, "x");
  const TensorVar wt = tape.param(wv, Shape{out_ch, in_ch, c.kh, c.kw}, "w");
  const TensorVar b = tape.param(bv, Shape{out_ch}, "b");
  const TensorVar y = ops::conv2d(x, wt, b, {.stride = 1, .padding = c.padding});
  check_close(y.values(), ref.forward(xv, wv, bv), "conv2d value");
  std::vector<double> dx, dw, db;
  ref.grads(xv, wv, coef, dx, dw, db);
  tape.backward(weighted_sum(y, coef));
  check_close(x.grads(), dx, "conv2d dX");
  check_close(wt.grads(), dw, "conv2d dW");
  check_close(b.grads(), db, "conv2d db");
}

// Backward sums dW and db over chunks of images, as many as the shapes allow (one when a
// partial would not fit in an image's columns); the grads must be right and bitwise the
// same at any thread count.
TEST_CASE("conv2d: dW and db over chunks of images, the same bits at 1, 2 and 3 threads", "[conv2d]") {
  struct Case {
    std::size_t batch, in_ch, side, out_ch;  // 1, 3, 8 and 1 chunks
  };
  const Case c = GENERATE(Case{64, 4, 4, 16}, Case{64, 2, 4, 4}, Case{64, 2, 6, 4}, Case{5, 2, 6, 4});
  INFO("batch " << c.batch << ", " << c.in_ch << " -> " << c.out_ch << " channels, " << c.side << "x" << c.side);
  const Reference ref{c.batch, c.in_ch, c.side, c.side, c.out_ch, 3, 3, 1, 1};
  std::mt19937_64 rng(c.batch * 7 + c.in_ch * 3 + c.side + c.out_ch * 11);
  const auto xv = random_values(c.batch * c.in_ch * c.side * c.side, rng);
  const auto wv = random_values(c.out_ch * c.in_ch * 9, rng);
  const auto bv = random_values(c.out_ch, rng);
  const auto coef = random_values(ref.outputs(), rng);
  std::vector<double> dx, dw, db;
  ref.grads(xv, wv, coef, dx, dw, db);
  std::vector<std::vector<double>> runs;
  for (const std::size_t threads : {1, 2, 3}) {
    set_num_threads(threads);
    Tape tape;
    const TensorVar x = tape.input(xv, Shape{c.batch, c.in_ch, c.side, c.side}, "x");
    const TensorVar wt = tape.param(wv, Shape{c.out_ch, c.in_ch, 3, 3}, "w");
    const TensorVar b = tape.param(bv, Shape{c.out_ch}, "b");
    tape.backward(weighted_sum(ops::conv2d(x, wt, b, {.padding = 1}), coef));
    check_close(wt.grads(), dw, "conv2d dW");
    check_close(b.grads(), db, "conv2d db");
    std::vector<double> grads(wt.grads().begin(), wt.grads().end());
    grads.insert(grads.end(), b.grads().begin(), b.grads().end());
    runs.push_back(grads);
  }
  set_num_threads(1);
  CHECK(runs[1] == runs[0]);
  CHECK(runs[2] == runs[0]);
}

TEST_CASE("conv2d: 2-D conveniences, without bias and with a rank-0 bias", "[conv2d]") {
  std::mt19937_64 rng(7);
  const auto xv = random_values(6 * 7, rng), wv = random_values(9, rng), coef = random_values(12, rng);
  const Reference ref{1, 1, 6, 7, 1, 3, 3, 2, 1};  // (6 + 2 - 3)/2 + 1 = 3, (7 + 2 - 3)/2 + 1 = 4
  REQUIRE(ref.outputs() == 12);
  const bool with_bias = GENERATE(false, true);
  const std::vector<double> bv{with_bias ? 0.75 : 0.0};
  Tape tape;
  const TensorVar x = tape.input(xv, Shape{6, 7}, "x");
  const TensorVar w = tape.param(wv, Shape{3, 3}, "w");
  const TensorVar b = tape.param(bv, Shape{}, "b");
  const ops::Conv2dOptions opt{.stride = 2, .padding = 1};
  const TensorVar mac = with_bias ? ops::conv2d_mac(x, w, b, opt, "m") : ops::conv2d_mac(x, w, opt, "m");
  const TensorVar fused = with_bias ? ops::conv2d(x, w, b, opt, "f") : ops::conv2d(x, w, opt, "f");
  CHECK(mac.shape() == Shape{3, 4});
  CHECK(fused.shape() == Shape{3, 4});
  CHECK(mac[11].name() == "m12");
  CHECK(fused[11].name() == "f12");
  const auto want = ref.forward(xv, wv, bv);
  check_close(mac.values(), want, "conv2d_mac value");
  check_close(fused.values(), want, "conv2d value");

  std::vector<double> dx, dw, db;
  ref.grads(xv, wv, coef, dx, dw, db);
  for (const TensorVar& out : {mac, fused}) {
    tape.backward(weighted_sum(out, coef));
    check_close(x.grads(), dx, "dX");
    check_close(w.grads(), dw, "dW");
    CHECK(b.grads()[0] == Approx(with_bias ? db[0] : 0.0).epsilon(1e-12).margin(1e-12));
  }
}

TEST_CASE("conv2d, conv2d_mac: padding at or above the kernel, windows of padding only", "[conv2d]") {
  // x (2, 2) = [1 2; 3 4], w (1, 1) = [2], padding 1: a 4x4 output whose border windows
  // hold only padding, so they give the bias (or 0) and nothing flows back from them.
  Tape tape;
  const TensorVar x = tape.input(std::vector<double>{1, 2, 3, 4}, Shape{2, 2}, "x");
  const TensorVar w = tape.param(std::vector<double>{2}, Shape{1, 1}, "w");
  const TensorVar b = tape.param(std::vector<double>{0.5}, Shape{}, "b");
  const bool with_bias = GENERATE(false, true);
  const double bias = with_bias ? 0.5 : 0.0;
  const std::vector<double> want = {bias, bias,     bias,     bias, bias, 2 + bias, 4 + bias, bias,
                                    bias, 6 + bias, 8 + bias, bias, bias, bias,     bias,     bias};
  const ops::Conv2dOptions opt{.padding = 1};
  const TensorVar mac = with_bias ? ops::conv2d_mac(x, w, b, opt, "m") : ops::conv2d_mac(x, w, opt, "m");
  const TensorVar fused = with_bias ? ops::conv2d(x, w, b, opt) : ops::conv2d(x, w, opt);
  REQUIRE(mac.shape() == Shape{4, 4});
  REQUIRE(fused.shape() == Shape{4, 4});
  check_close(mac.values(), want, "conv2d_mac value");
  check_close(fused.values(), want, "conv2d value");
  // A padding-only output is still one sum node, named, of the bias alone or of nothing.
  CHECK(tape.op(mac[0].node()) == Op::Sum);
  CHECK(tape.arg_slots(mac[0].node()).size() == (with_bias ? 1u : 0u));
  CHECK(tape.arg_slots(mac[5].node()).size() == (with_bias ? 2u : 1u));
  CHECK(mac[0].name() == "m1");
  CHECK(mac[15].node() == mac[0].node() + 15);
  // L = sum_k k z_k: dL/dx_j = 2 k(j), dL/dw = sum_k k x(k), dL/db = sum_k k.
  std::vector<double> coef(16);
  for (std::size_t k = 0; k < 16; ++k) coef[k] = double(k);
  for (const TensorVar& out : {mac, fused}) {
    tape.backward(weighted_sum(out, coef));
    check_close(x.grads(), {2 * 5.0, 2 * 6.0, 2 * 9.0, 2 * 10.0}, "dX");
    check_close(w.grads(), {5 * 1.0 + 6 * 2.0 + 9 * 3.0 + 10 * 4.0}, "dW");
    CHECK(b.grads()[0] == Approx(with_bias ? 120.0 : 0.0).margin(1e-12));
  }
  // Stride 5, padding 3: the windows start at padded rows and columns 0 and 5, while the
  // image sits at 3 and 4, so every window is padding only.
  const TensorVar all_padding = ops::conv2d_mac(x, w, b, {.stride = 5, .padding = 3});
  REQUIRE(all_padding.shape() == Shape{2, 2});
  check_close(all_padding.values(), {0.5, 0.5, 0.5, 0.5}, "bias only");
  check_close(ops::conv2d(x, w, {.stride = 5, .padding = 3}).values(), {0, 0, 0, 0}, "zeros");
}

TEST_CASE("conv2d: central differences on a small batched case", "[conv2d][gradcheck]") {
  // x (1, 2, 4, 4), w (2, 2, 3, 3), b (2), stride 2, padding 1; L = sum_k c_k z_k^2.
  std::mt19937_64 rng(11);
  const auto point = random_values(32 + 36 + 2, rng);
  const auto coef = random_values(8, rng);
  const bool fused = GENERATE(false, true);
  check_gradients(
      [&](Tape&, std::span<const Var> v) {
        const TensorVar x = stack(v.subspan(0, 32), Shape{1, 2, 4, 4});
        const TensorVar w = stack(v.subspan(32, 36), Shape{2, 2, 3, 3});
        const TensorVar b = stack(v.subspan(68, 2), Shape{2});
        const ops::Conv2dOptions opt{.stride = 2, .padding = 1};
        const TensorVar z = fused ? ops::conv2d(x, w, b, opt) : ops::conv2d_mac(x, w, b, opt);
        std::vector<Var> terms;
        for (std::size_t k = 0; k < z.size(); ++k) terms.push_back(z[k] * z[k] * coef[k]);
        return sum(terms);
      },
      point);
}

TEST_CASE("conv2d: the im2col scratch is reused across sizes without stale data", "[conv2d]") {
  std::mt19937_64 rng(5);
  Tape tape;
  for (const auto& [n, c, h, o] : {std::array<std::size_t, 4>{2, 3, 9, 3}, std::array<std::size_t, 4>{1, 1, 4, 1},
                                   std::array<std::size_t, 4>{1, 2, 6, 2}}) {
    const Reference ref{n, c, h, h, o, 3, 3, 1, 1};
    const auto xv = random_values(n * c * h * h, rng), wv = random_values(o * c * 9, rng);
    const std::vector<double> bv(o, 0.0);
    const TensorVar z =
        ops::conv2d(tape.input(xv, Shape{n, c, h, h}), tape.param(wv, Shape{o, c, 3, 3}), {.padding = 1});
    check_close(z.values(), ref.forward(xv, wv, bv), "value");
    tape.reset();
  }
}

TEST_CASE("conv2d_mac: the seed note's graph, z1..z4 as sums of nine products", "[conv2d][seed]") {
  std::vector<double> image(25), filter(9);
  for (std::size_t i = 0; i < 25; ++i) image[i] = 0.1 * double(i + 1);
  for (std::size_t i = 0; i < 9; ++i) filter[i] = 1.0 - 0.2 * double(i);
  Tape tape;
  const TensorVar a = tape.input(image, Shape{5, 5}, "a");
  const TensorVar w = tape.param(filter, Shape{3, 3}, "w");
  const TensorVar z = ops::conv2d_mac(a, w, {.stride = 2}, "z");
  REQUIRE(z.shape() == Shape{2, 2});
  const std::size_t window_start[] = {0, 2, 10, 12};  // a1, a3, a11, a13
  for (std::size_t k = 0; k < 4; ++k) {
    INFO("z" << k + 1);
    const NodeId node = z[k].node();
    CHECK(node == z[0].node() + k);  // the sums are consecutive nodes
    CHECK(tape.op(node) == Op::Sum);
    CHECK(tape.name(node) == "z" + std::to_string(k + 1));
    CHECK(tape.scope(node) == "z");
    const auto operands = tape.arg_slots(node);
    REQUIRE(operands.size() == 9);
    for (std::size_t i = 0; i < 9; ++i) {
      const NodeId product = tape.node_of(operands[i]);
      CHECK(tape.op(product) == Op::Mul);
      CHECK(tape.scope(product) == "z");
      const auto factors = tape.arg_slots(product);
      REQUIRE(factors.size() == 2);
      const std::size_t j = window_start[k] + (i / 3) * 5 + i % 3;
      CHECK(product < z[0].node());  // every product is recorded before the first sum
      CHECK(factors[0] == w.offset() + i);
      CHECK(factors[1] == a.offset() + j);
      CHECK(tape.slot_name(factors[0]) == "w" + std::to_string(i + 1));
      CHECK(tape.slot_name(factors[1]) == "a" + std::to_string(j + 1));
    }
  }
  SECTION("padding taps record no nodes") {
    const TensorVar zp = ops::conv2d_mac(a, w, {.padding = 1}, "p");  // 5x5 outputs
    CHECK(tape.arg_slots(zp[0].node()).size() == 4);                  // corner: 2x2 real taps
    CHECK(tape.arg_slots(zp[2].node()).size() == 6);                  // top edge
    CHECK(tape.arg_slots(zp[12].node()).size() == 9);                 // centre
    CHECK(tape.scope(zp[0].node()) == "p");
  }
  SECTION("an unnamed conv2d_mac is scoped as conv2d_mac") {
    CHECK(tape.scope(ops::conv2d_mac(a, w)[0].node()) == "conv2d_mac");
  }
}

TEST_CASE("conv2d and conv2d_mac: errors name the op and the shapes", "[conv2d][errors]") {
  using Conv = std::function<TensorVar(const TensorVar&, const TensorVar&, const TensorVar*, ops::Conv2dOptions)>;
  const auto [op, conv] = GENERATE(
      std::pair<std::string, Conv>{
          "conv2d", [](const TensorVar& x, const TensorVar& w, const TensorVar* b,
                       ops::Conv2dOptions o) { return b ? ops::conv2d(x, w, *b, o) : ops::conv2d(x, w, o); }},
      std::pair<std::string, Conv>{
          "conv2d_mac", [](const TensorVar& x, const TensorVar& w, const TensorVar* b, ops::Conv2dOptions o) {
            return b ? ops::conv2d_mac(x, w, *b, o) : ops::conv2d_mac(x, w, o);
          }});
  Tape tape;
  auto leaf = [&](const Shape& s) { return tape.input(std::vector<double>(s.size(), 0.5), s); };
  const TensorVar x4 = leaf(Shape{1, 2, 5, 5}), x2 = leaf(Shape{5, 5});
  const TensorVar w4 = leaf(Shape{4, 3, 3, 3}), w2 = leaf(Shape{3, 3});
  CHECK_THROWS_WITH(conv(x4, w4, nullptr, {}),
                    op + ": input [1, 2, 5, 5] has 2 channels but filter [4, 3, 3, 3] expects 3");
  CHECK_THROWS_WITH(conv(x2, w4, nullptr, {}),
                    Catch::Contains(op + ": input [5, 5], filter [4, 3, 3, 3]: expected input (H, W)"));
  CHECK_THROWS_WITH(conv(leaf(Shape{5}), w2, nullptr, {}), Catch::Contains(op + ": input [5], filter [3, 3]"));
  CHECK_THROWS_WITH(conv(x2, w2, nullptr, {.stride = 0}),
                    op + ": input [5, 5], filter [3, 3]: stride must be at least 1");
  CHECK_THROWS_WITH(conv(leaf(Shape{2, 6}), w2, nullptr, {}),
                    op + ": input [2, 6], filter [3, 3]: the kernel is larger than the input padded by 0 (2 x 6)");
  CHECK_THROWS_WITH(conv(x2, leaf(Shape{8, 8}), nullptr, {.padding = 1}),
                    Catch::Contains("filter [8, 8]: the kernel is larger than the input padded by 1 (7 x 7)"));
  const TensorVar w43 = leaf(Shape{4, 2, 3, 3}), b3 = leaf(Shape{3}), b0 = leaf(Shape{});
  CHECK_THROWS_WITH(conv(x4, w43, &b3, {}),
                    op + ": input [1, 2, 5, 5], filter [4, 2, 3, 3]: bias [3] does not match the 4 output "
                         "channel(s); expected [4]");
  CHECK_THROWS_WITH(conv(x4, w43, &b0, {}), Catch::Contains("bias [] does not match the 4 output channel(s)"));
  CHECK_NOTHROW(conv(x2, w2, &b0, {}));
  Tape other;
  const TensorVar foreign = other.input(std::vector<double>(9, 1.0), Shape{3, 3});
  CHECK_THROWS_WITH(conv(x2, foreign, nullptr, {}), op + ": operands are on different tapes");
  CHECK_THROWS_WITH(conv(x2, w2, &foreign, {}), op + ": operands are on different tapes");
}
