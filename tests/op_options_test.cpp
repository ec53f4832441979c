// SPDX-License-Identifier: MIT
// Typed op options: what an op records reads back as given, and reading a record with
// another op's options struct is an Error naming both ops, never a read of wrong bytes.
#include <catch2/catch.hpp>

#include <array>
#include <optional>
#include <vector>

#include "autodiff/tensor.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/pool.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;
using Catch::Matchers::Contains;

namespace {

const TensorRecord& record_of(const TensorVar& t) { return t.tape().tensor_record(t.first().node()); }

struct Probe {
  static constexpr std::string_view op = "probe";
  double value;
  std::array<std::int32_t, 3> sizes;
};

std::vector<double> iota(std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = 0.1 * static_cast<double>(i);
  return v;
}

}  // namespace

TEST_CASE("matmul's options read back as recorded", "[options]") {
  Tape tape;
  const TensorVar a = tape.input(iota(2 * 3 * 4), Shape{2, 3, 4}, "a");
  const TensorVar b = tape.input(iota(2 * 4 * 5), Shape{2, 4, 5}, "b");
  const auto o = options<ops::detail::MatmulOptions>(record_of(ops::matmul(a, b)));
  CHECK(o.batch == 2);
  CHECK(o.m == 3);
  CHECK(o.k == 4);
  CHECK(o.n == 5);
  CHECK(o.a_stride == 3 * 4);
  CHECK(o.b_stride == 4 * 5);

  const TensorVar shared = tape.input(iota(4 * 5), Shape{4, 5}, "w");  // one tall GEMM
  const auto tall = options<ops::detail::MatmulOptions>(record_of(ops::matmul(a, shared)));
  CHECK(tall.batch == 1);
  CHECK(tall.m == 6);
  CHECK(tall.b_stride == 0);
  CHECK(tall.a_stride == 0);
}

TEST_CASE("conv2d's and pooling's options read back as given", "[options]") {
  Tape tape;
  const TensorVar x = tape.input(iota(1 * 2 * 5 * 5), Shape{1, 2, 5, 5}, "x");
  const TensorVar w = tape.input(iota(3 * 2 * 3 * 3), Shape{3, 2, 3, 3}, "w");
  const auto conv = options<ops::Conv2dOptions>(record_of(ops::conv2d(x, w, {.stride = 2, .padding = 1})));
  CHECK(conv.stride == 2);
  CHECK(conv.padding == 1);

  const auto max = options<ops::Pool2dOptions>(record_of(ops::max_pool2d(x, {.kernel = 3, .stride = 1, .padding = 1})));
  CHECK(max.kernel == 3);
  CHECK(max.stride == std::optional<std::size_t>(1));
  CHECK(max.padding == 1);
  const auto avg = options<ops::Pool2dOptions>(record_of(ops::avg_pool2d(x, {.kernel = 2})));
  CHECK(avg.kernel == 2);
  CHECK_FALSE(avg.stride.has_value());  // as given: the op resolves the default itself
  CHECK(avg.padding == 0);
}

TEST_CASE("reading a record with another op's options struct is an Error naming both ops", "[options][errors]") {
  Tape tape;
  const TensorVar x = tape.input(iota(1 * 1 * 4 * 4), Shape{1, 1, 4, 4}, "x");
  const TensorVar w = tape.input(iota(1 * 1 * 2 * 2), Shape{1, 1, 2, 2}, "w");
  const TensorRecord& conv = record_of(ops::conv2d(x, w));
  CHECK_THROWS_AS(options<ops::detail::MatmulOptions>(conv), Error);
  CHECK_THROWS_WITH(options<ops::detail::MatmulOptions>(conv),
                    Contains("is a conv2d") && Contains("the options of conv2d") && Contains("options of matmul"));
  CHECK_THROWS_WITH(options<ops::Pool2dOptions>(conv), Contains("conv2d") && Contains("max_pool2d or avg_pool2d"));

  const TensorVar a = tape.input(iota(6), Shape{2, 3}, "a");
  const TensorRecord& product = record_of(ops::matmul(a, ops::transpose(a)));
  CHECK_THROWS_WITH(options<ops::Conv2dOptions>(product), Contains("is a matmul") && Contains("options of conv2d"));

  // An op that records no options says so.
  const TensorRecord& soft = record_of(ops::softmax(a));
  CHECK_THROWS_WITH(options<ops::Conv2dOptions>(soft), Contains("is a softmax, which recorded no options"));
}

TEST_CASE("a binary op keeps its constant operand in its options", "[options]") {
  Tape tape;
  const TensorVar a = tape.input(iota(3), Shape{3}, "a");
  const auto o = options<ops::detail::ElementwiseOptions>(record_of(2.5 - a));
  CHECK(o.constant_side == 1);
  CHECK(o.constant == 2.5);
  CHECK(options<ops::detail::ElementwiseOptions>(record_of(a * a)).constant_side == 0);
}

TEST_CASE("OpOptions: a struct round-trips through the bytes, and holds() tells structs apart", "[options]") {
  const OpOptions stored = OpOptions::of(Probe{-0.25, {1, 2, 3}});
  CHECK(stored.holds<Probe>());
  CHECK_FALSE(stored.holds<ops::Conv2dOptions>());
  CHECK(stored.type()->op == "probe");
  const Probe back = stored.unchecked<Probe>();
  CHECK(back.value == -0.25);
  CHECK(back.sizes == std::array<std::int32_t, 3>{1, 2, 3});
  CHECK(OpOptions{}.type() == nullptr);
}
