// SPDX-License-Identifier: MIT
// Hostile input to the library (issue 12): sizes that would wrap, offsets past 32 bits,
// the tape serial's end, out of memory, options that would overflow an op's indices.
// Each is an Error before anything is written or allocated, never undefined behaviour.
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "autodiff/tensor.hpp"
#include "ops/conv.hpp"
#include "ops/pool.hpp"
#include "ops/scalar.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;
using Catch::Contains;

namespace {
void no_backward(Tape&, const TensorRecord&) {}
constexpr TensorOpInfo probe_info{"probe", &no_backward};
}  // namespace

TEST_CASE("hostile: a shape whose element count wraps is refused, so reshape cannot fake a match", "[hostile]") {
  // 3340214413 * 2761311370 * 2 = 2^64 + 4: it used to count as 4 elements.
  const Shape wraps{3340214413u, 2761311370u, 2};
  CHECK_THROWS_WITH(wraps.size(),
                    Contains("shape [3340214413, 2761311370, 2]: the element count does not fit in 64 bits"));
  Tape tape;
  const double values[] = {1, 2, 3, 4};
  const TensorVar x = tape.input(values, Shape{2, 2}, "x");
  // Then transpose wrote out of bounds through the view; now the view is never made.
  CHECK_THROWS_WITH(ops::reshape(x, wraps), Contains("reshape: shape [3340214413, 2761311370, 2]: the element count"));
  CHECK_THROWS_AS(TensorVar(x.first(), wraps), Error);
  CHECK(tape_sized({65535, 65535}) == 65535u * 65535u);
  CHECK_FALSE(tape_sized({65536, 65536}));  // 2^32 elements: one past a tape's slots
  CHECK_FALSE(tape_sized({std::size_t{1} << 32, 1}));
  CHECK_FALSE(tape_sized({4294967295u, 4294967295u, 4294967295u}));  // would wrap
}

TEST_CASE("hostile: 32-bit operand and saved offsets are checked before they could wrap", "[hostile]") {
  Tape tape;
  const double values[] = {1, 2};
  const TensorVar x = tape.input(values, Shape{2}, "x");
  // 2^32 scalar operands, 2^32 saved doubles: refused before a byte is reserved.
  const std::size_t reserved = tape.memory().total().reserved;
  CHECK_THROWS_AS(tape.reserve(0, std::size_t{1} << 32), CapacityError);
  CHECK_THROWS_WITH(tape.reserve(0, std::size_t{1} << 32), Contains("reserve: the tape is full (2^32 operands)"));
  const TensorArg args[] = {x.arg()};
  CHECK_THROWS_WITH(tape.record_tensor(probe_info, Shape{2}, args, {}, std::size_t{1} << 32),
                    Contains("probe: the tape is full (2^32 tensor operands or saved values)"));
  CHECK(tape.memory().total().reserved == reserved);
  const NodeId node = tape.record_tensor(probe_info, Shape{2}, args, {}, 3);  // still usable
  CHECK(tape.saved(tape.tensor_record(node)).size() == 3);
}

TEST_CASE("hostile: the last tape serial is the last tape: a stale Var never reads a newer tape", "[hostile]") {
  const std::uint32_t before = detail::set_last_tape_serial(0xFFFFFFFEu);
  Var stale;
  {
    Tape last;  // serial 2^32 - 1
    stale = last.input(1.0);
  }
  CHECK_THROWS_WITH(Tape(), Contains("Tape: this process already made 2^32 - 1 tapes"));
  CHECK_THROWS_WITH(stale.value(), Contains("the Var's tape was destroyed"));
  detail::set_last_tape_serial(before);  // serials after `before` are still unused
  Tape again;
  CHECK_THROWS_WITH(stale.value(), Contains("the Var's tape was destroyed"));
  CHECK(again.input(2.0).value() == 2.0);
}

#if !defined(__SANITIZE_ADDRESS__)  // ASan's allocator aborts instead of failing an allocation
TEST_CASE("hostile: out of memory without a limit is a CapacityError, and the tape stays usable", "[hostile]") {
  rlimit old{};
  REQUIRE(getrlimit(RLIMIT_AS, &old) == 0);
  rlimit capped = old;
  capped.rlim_cur = rlim_t{4} << 30;  // 4 GB of address space for this process
  REQUIRE(setrlimit(RLIMIT_AS, &capped) == 0);
  Tape tape;
  const Var x = tape.input(1.0);
  // 4e9 operands (48 GB) and 4e9 nodes (68 GB): the allocations fail.
  CHECK_THROWS_WITH(tape.reserve(0, 4'000'000'000), Contains("reserve: out of memory growing the tape"));
  CHECK_THROWS_AS(tape.reserve(4'000'000'000, 0), CapacityError);
  const Var y = x * 2.0;  // nothing was half grown
  tape.backward(y);
  CHECK(x.grad() == 2.0);
  REQUIRE(setrlimit(RLIMIT_AS, &old) == 0);
}
#endif

TEST_CASE("hostile: huge conv and pool options are refused before their index arithmetic", "[hostile]") {
  Tape tape;
  const double one[] = {1.0};
  const TensorVar x = tape.input(one, Shape{1, 1}, "x");
  const std::size_t huge = std::size_t{1} << 63;
  for (const ops::Conv2dOptions o : {ops::Conv2dOptions{.padding = huge}, ops::Conv2dOptions{.stride = huge}}) {
    CHECK_THROWS_WITH(ops::conv2d(x, x, o), Contains("conv2d: input [1, 1], filter [1, 1]: stride"));
    CHECK_THROWS_WITH(ops::conv2d_mac(x, x, o), Contains("conv2d_mac: input [1, 1], filter [1, 1]: stride"));
  }
  CHECK_THROWS_WITH(ops::conv2d(x, x, {.padding = 4294967295u}), Contains("more elements than a tape holds"));
  CHECK_THROWS_WITH(ops::max_pool2d(x, {.kernel = huge}),
                    Contains("max_pool2d: input [1, 1]: kernel 9223372036854775808"));
  CHECK_THROWS_WITH(ops::avg_pool2d(x, {.kernel = 2, .padding = huge}), Contains("more than half the kernel 2"));
  // A kernel of 2^31 over a 1 x 1 input: one window, which walks only its one real cell.
  const std::size_t kernel = std::size_t{1} << 31;
  const TensorVar m = ops::max_pool2d(x, {.kernel = kernel, .padding = kernel / 2});
  const TensorVar a = ops::avg_pool2d(x, {.kernel = kernel, .padding = kernel / 2});
  CHECK(m.shape() == Shape{1, 1});
  CHECK(m.values()[0] == 1.0);
  CHECK(a.values()[0] == 1.0 / (static_cast<double>(kernel) * static_cast<double>(kernel)));
}

TEST_CASE("hostile: an output past the memory limit names the op and the shapes", "[hostile]") {
  Tape tape;
  tape.set_memory_limit(std::size_t{1} << 20);
  const std::vector<double> column(1000, 1.0);
  const TensorVar p = tape.input(column, Shape{1000, 1}, "p");
  const TensorVar q = tape.input(column, Shape{1, 1000}, "q");
  CHECK_THROWS_WITH(ops::matmul(p, q), Contains("tape memory limit: recording matmul needs") &&
                                           Contains("matmul of [1000, 1], [1, 1000] gives [1000, 1000]"));
  CHECK_THROWS_WITH(ops::add(p, q), Contains("add of [1000, 1], [1, 1000] gives [1000, 1000]"));
  CHECK_THROWS_WITH(ops::conv2d(p, p, {.padding = 600}),
                    Contains("conv2d: input [1000, 1], filter [1000, 1]: the im2col buffers need"));
  CHECK_THROWS_AS(ops::conv2d_mac(q, q, {.padding = 600}), CapacityError);
}
