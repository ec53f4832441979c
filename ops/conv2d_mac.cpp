// SPDX-License-Identifier: MIT
// conv2d_mac: a convolution recorded as scalar products and one n-ary sum per output,
// exactly the graph the seed note draws; and the shape rules both convolutions share.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ops/conv.hpp"
#include "ops/scalar.hpp"

namespace gradpath::ops {

namespace detail {

Shape Conv2dGeometry::out_shape() const {
  return batched ? Shape{batch, out_channels, out_h, out_w} : Shape{out_h, out_w};
}

Conv2dGeometry conv2d_geometry(std::string_view op, const Shape& x, const Shape& w, const Shape* bias,
                               Conv2dOptions options) {
  // Built only when an error is thrown: a training step must not allocate.
  const auto what = [&] { return std::string(op) + ": input " + x.str() + ", filter " + w.str(); };
  const bool batched = x.rank() == 4;
  if (!((x.rank() == 2 && w.rank() == 2) || (batched && w.rank() == 4))) {
    throw Error(what() +
                ": expected input (H, W) with filter (kH, kW), or input (N, C, H, W) with filter (O, C, kH, kW)");
  }
  Conv2dGeometry g{};
  g.batched = batched;
  g.batch = batched ? x[0] : 1;
  g.channels = batched ? x[1] : 1;
  g.height = x[x.rank() - 2];
  g.width = x[x.rank() - 1];
  g.out_channels = batched ? w[0] : 1;
  g.kernel_h = w[w.rank() - 2];
  g.kernel_w = w[w.rank() - 1];
  g.stride = options.stride;
  g.padding = options.padding;
  if (batched && w[1] != g.channels) {
    throw Error(std::string(op) + ": input " + x.str() + " has " + std::to_string(g.channels) +
                " channels but filter " + w.str() + " expects " + std::to_string(w[1]));
  }
  if (g.stride == 0) throw Error(what() + ": stride must be at least 1");
  // Past a dimension's range no option gives a usable output; bounding them keeps every
  // index sum of the kernels (oy * stride + ky, padded sizes) far inside 64 bits.
  if (g.stride > Shape::max_dim || g.padding > Shape::max_dim) {
    throw Error(what() + ": stride " + std::to_string(g.stride) + " and padding " + std::to_string(g.padding) +
                " must be at most " + std::to_string(Shape::max_dim));
  }
  const std::size_t padded_h = g.height + 2 * g.padding, padded_w = g.width + 2 * g.padding;
  if (g.kernel_h > padded_h || g.kernel_w > padded_w) {
    throw Error(what() + ": the kernel is larger than the input padded by " + std::to_string(g.padding) + " (" +
                std::to_string(padded_h) + " x " + std::to_string(padded_w) + ")");
  }
  g.out_h = (padded_h - g.kernel_h) / g.stride + 1;
  g.out_w = (padded_w - g.kernel_w) / g.stride + 1;
  if (!tape_sized({g.batch, g.out_channels, g.out_h, g.out_w})) {
    throw Error(what() + ": padding " + std::to_string(g.padding) + " and stride " + std::to_string(g.stride) +
                " give an output of " + std::to_string(g.out_h) + " x " + std::to_string(g.out_w) +
                " per image and channel, more elements than a tape holds");
  }
  if (bias != nullptr && !(bias->rank() == 1 && (*bias)[0] == g.out_channels) &&
      !(bias->rank() == 0 && g.out_channels == 1)) {
    throw Error(what() + ": bias " + bias->str() + " does not match the " + std::to_string(g.out_channels) +
                " output channel(s); expected [" + std::to_string(g.out_channels) + "]" +
                (g.out_channels == 1 ? " or a scalar" : ""));
  }
  return g;
}

}  // namespace detail

namespace {

TensorVar conv2d_mac_impl(const TensorVar& x, const TensorVar& w, const TensorVar* b, Conv2dOptions options,
                          std::string_view name) {
  constexpr std::string_view op = "conv2d_mac";
  Tape& tape = Tape::of(x.first(), w.first(), op);
  if (b != nullptr) Tape::of(x.first(), b->first(), op);
  const detail::Conv2dGeometry g =
      detail::conv2d_geometry(op, x.shape(), w.shape(), b ? &b->shape() : nullptr, options);
  // Room for the sum node of every output first: an output too large for the memory
  // limit is refused here, before the loops below and their bookkeeping run.
  const std::size_t outputs = g.batch * g.out_channels * g.out_h * g.out_w;
  try {
    tape.reserve(tape.node_count() + outputs, 0);
  } catch (const CapacityError& e) {
    throw CapacityError(std::string(op) + ": input " + x.shape().str() + ", filter " + w.shape().str() + ": output " +
                        g.out_shape().str() + ": " + e.what());
  }
  ScopeGuard scope(tape, name.empty() ? op : name);

  // Pass 1: every product w_i * a_j, output by output; ends[k] closes output k's run.
  std::vector<Var> products;
  std::vector<std::size_t> ends;
  ends.reserve(outputs);
  // The taps [first, last) of a window starting at padded position `start` that land on
  // real cells 0 .. size - 1: padding taps get no node at all, and are not even visited,
  // so a large padding costs what its outputs do, not outputs x kernel.
  const auto taps = [&](std::size_t start, std::size_t size, std::size_t kernel) {
    const std::size_t first = g.padding > start ? g.padding - start : 0;
    const std::size_t end = g.padding + size > start ? g.padding + size - start : 0;
    return std::pair{first, std::max(first, std::min(kernel, end))};
  };
  for (std::size_t n = 0; n < g.batch; ++n)
    for (std::size_t o = 0; o < g.out_channels; ++o)
      for (std::size_t oy = 0; oy < g.out_h; ++oy) {
        const auto [ky_first, ky_last] = taps(oy * g.stride, g.height, g.kernel_h);
        for (std::size_t ox = 0; ox < g.out_w; ++ox) {
          const auto [kx_first, kx_last] = taps(ox * g.stride, g.width, g.kernel_w);
          for (std::size_t c = 0; c < g.channels; ++c)
            for (std::size_t ky = ky_first; ky < ky_last; ++ky)
              for (std::size_t kx = kx_first; kx < kx_last; ++kx) {
                const std::size_t iy = oy * g.stride + ky - g.padding, ix = ox * g.stride + kx - g.padding;
                const std::size_t wi = ((o * g.channels + c) * g.kernel_h + ky) * g.kernel_w + kx;
                const std::size_t xi = ((n * g.channels + c) * g.height + iy) * g.width + ix;
                products.push_back(tape.var_at(w.offset() + static_cast<Slot>(wi)) *
                                   tape.var_at(x.offset() + static_cast<Slot>(xi)));
              }
          ends.push_back(products.size());
        }
      }

  // Pass 2: one sum node per output, so the outputs are consecutive scalar nodes. A
  // window made only of padding (padding >= kernel) is still a sum node: of the bias
  // alone, or of no operand at all (value 0), so every output has a node and a name.
  const auto first_sum = static_cast<NodeId>(tape.node_count());
  const std::size_t per_image = g.out_channels * g.out_h * g.out_w;
  Var first;
  for (std::size_t k = 0, begin = 0; k < ends.size(); begin = ends[k++]) {
    double total = 0.0;
    for (std::size_t t = begin; t < ends[k]; ++t) {
      total += tape.value(products[t].slot());
      tape.push_arg(products[t].slot(), 1.0);
    }
    if (b != nullptr) {
      const Slot bias = b->offset() + static_cast<Slot>(k % per_image / (g.out_h * g.out_w));
      total += tape.value(bias);
      tape.push_arg(bias, 1.0);
    }
    const Var z = tape.close(Op::Sum, total);
    if (k == 0) first = z;
  }
  if (!name.empty()) tape.set_range_name(first_sum, static_cast<NodeId>(ends.size()), name, g.out_shape());
  return TensorVar(first, g.out_shape());
}

}  // namespace

TensorVar conv2d_mac(const TensorVar& x, const TensorVar& w, Conv2dOptions options, std::string_view name) {
  return conv2d_mac_impl(x, w, nullptr, options, name);
}
TensorVar conv2d_mac(const TensorVar& x, const TensorVar& w, const TensorVar& b, Conv2dOptions options,
                     std::string_view name) {
  return conv2d_mac_impl(x, w, &b, options, name);
}

}  // namespace gradpath::ops
