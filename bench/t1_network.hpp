// SPDX-License-Identifier: MIT
// The T1 network, shared by its benchmark and the tests that train it (threads, allocation):
// a batch of 64 images 1x28x28, conv 1->8 3x3 with padding 1, relu, 2x2 max-pool, dense
// 1568->10, softmax cross-entropy. Seeded images and labels, He-initialised weights.
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
class T1Network {
 public:
  static constexpr std::size_t batch = 64, side = 28, channels = 8, classes = 10;
  static constexpr std::size_t features = channels * (side / 2) * (side / 2);  // 1568

  explicit T1Network(Tape& tape) : tape_(tape), images_(batch * side * side), labels_(batch) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    for (T& x : images_) x = static_cast<T>(uniform(rng));
    for (std::size_t i = 0; i < batch; ++i) labels_[i] = static_cast<int>(rng() % classes);
    const Shape cw{channels, 1, 3, 3}, dw{classes, features};
    conv_w_ = tape.param(ops::he_normal<T>(cw, 1), cw, "conv_w");
    conv_b_ = tape.param(std::vector<T>(channels, T(0)), Shape{channels}, "conv_b");
    dense_w_ = tape.param(ops::he_normal<T>(dw, 2), dw, "dense_w");
    dense_b_ = tape.param(std::vector<T>(classes, T(0)), Shape{classes}, "dense_b");
  }

  std::vector<TensorVar> params() const { return {conv_w_, conv_b_, dense_w_, dense_b_}; }

  // Records the batch and the loss.
  TensorVar loss() const {
    const TensorVar x = tape_.constant(images_, Shape{batch, 1, side, side});
    const TensorVar h = ops::relu(ops::conv2d(x, conv_w_, conv_b_, {.stride = 1, .padding = 1}));
    const TensorVar logits = ops::dense(ops::flatten(ops::max_pool2d(h, {.kernel = 2}), 1), dense_w_, dense_b_);
    return ops::softmax_cross_entropy(logits, labels_);
  }
  // Records the batch and the loss and sweeps back; the optimiser step and reset() are
  // the caller's. Returns the loss.
  double forward_backward() const {
    const TensorVar l = loss();
    tape_.backward(l);
    return l.item();
  }

 private:
  Tape& tape_;
  std::vector<T> images_;
  std::vector<int> labels_;
  TensorVar conv_w_, conv_b_, dense_w_, dense_b_;
};

}  // namespace gradpath::bench
