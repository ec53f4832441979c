// SPDX-License-Identifier: MIT
// The T2 network, T1's two-convolution sibling: a batch of 64 images 1x28x28, conv 1->16
// 3x3 padding 1, relu, 2x2 max-pool, conv 16->32 3x3 padding 1, relu, 2x2 max-pool, dense
// 1568->10, softmax cross-entropy; Adam steps it (bench/tensor_bench.cpp). Seeded images
// and labels, He-initialised weights, zero biases.
#pragma once

#include <cstddef>
#include <random>
#include <vector>

#include "autodiff/tensor.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/optim.hpp"
#include "ops/pool.hpp"
#include "ops/tensor.hpp"

namespace gradpath::bench {

template <typename T>
class T2Network {
 public:
  static constexpr std::size_t batch = 64, side = 28, channels1 = 16, channels2 = 32, classes = 10;
  static constexpr std::size_t features = channels2 * (side / 4) * (side / 4);  // 1568

  explicit T2Network(Tape& tape) : tape_(tape), images_(batch * side * side), labels_(batch) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    for (T& x : images_) x = static_cast<T>(uniform(rng));
    for (std::size_t i = 0; i < batch; ++i) labels_[i] = static_cast<int>(rng() % classes);
    const Shape c1{channels1, 1, 3, 3}, c2{channels2, channels1, 3, 3}, dw{classes, features};
    conv1_w_ = tape.param(ops::he_normal<T>(c1, 1), c1, "conv1_w");
    conv1_b_ = tape.param(std::vector<T>(channels1, T(0)), Shape{channels1}, "conv1_b");
    conv2_w_ = tape.param(ops::he_normal<T>(c2, 2), c2, "conv2_w");
    conv2_b_ = tape.param(std::vector<T>(channels2, T(0)), Shape{channels2}, "conv2_b");
    dense_w_ = tape.param(ops::he_normal<T>(dw, 3), dw, "dense_w");
    dense_b_ = tape.param(std::vector<T>(classes, T(0)), Shape{classes}, "dense_b");
  }

  std::vector<TensorVar> params() const { return {conv1_w_, conv1_b_, conv2_w_, conv2_b_, dense_w_, dense_b_}; }

  // Records the batch and the loss and sweeps back; the optimiser step and reset() are
  // the caller's. Returns the loss.
  double forward_backward() const {
    const ops::Conv2dOptions same{.stride = 1, .padding = 1};
    const TensorVar x = tape_.constant(images_, Shape{batch, 1, side, side});
    const TensorVar h1 = ops::max_pool2d(ops::relu(ops::conv2d(x, conv1_w_, conv1_b_, same)), {.kernel = 2});
    const TensorVar h2 = ops::max_pool2d(ops::relu(ops::conv2d(h1, conv2_w_, conv2_b_, same)), {.kernel = 2});
    const TensorVar logits = ops::dense(ops::flatten(h2, 1), dense_w_, dense_b_);
    const TensorVar loss = ops::softmax_cross_entropy(logits, labels_);
    tape_.backward(loss);
    return loss.item();
  }

 private:
  Tape& tape_;
  std::vector<T> images_;
  std::vector<int> labels_;
  TensorVar conv1_w_, conv1_b_, conv2_w_, conv2_b_, dense_w_, dense_b_;
};

}  // namespace gradpath::bench
