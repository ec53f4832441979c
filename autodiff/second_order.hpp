// SPDX-License-Identifier: MIT
// Forward mode and second derivatives on a recorded tape (docs/second_order.md): tangents
// swept in tape order from the stored partials and each tensor op's tangent rule, and
// Hessian-vector products by a dual reverse sweep over the same tape.
#pragma once

#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "autodiff/tape.hpp"
#include "autodiff/tensor.hpp"

namespace gradpath {

// The tangent of one leaf: a scalar leaf, or a float64 leaf tensor with one value per element.
struct LeafTangent {
  LeafTangent(const Var& leaf, double tangent) : leaf(leaf, Shape{}), tangent{tangent} {}
  LeafTangent(const TensorVar& leaf, std::vector<double> tangent) : leaf(leaf), tangent(std::move(tangent)) {}
  TensorVar leaf;
  std::vector<double> tangent;
};

// Forward mode (a Jacobian-vector product): d output / dt when every leaf in `direction`
// moves along its tangent and every other leaf stays. One sweep over the recorded tape up to
// the output, no re-recording; the grads are not touched. An Error names a tensor op without
// a tangent rule, a float32 node, or a seed that is not a leaf of this tape.
double jvp(Tape& tape, const Var& output, std::span<const LeafTangent> direction);
inline double jvp(Tape& tape, const Var& output, std::initializer_list<LeafTangent> direction) {
  return jvp(tape, output, std::span(direction.begin(), direction.size()));
}
// The tangent of every element of a float64 tensor output, row-major.
std::vector<double> jvp(Tape& tape, const TensorVar& output, std::span<const LeafTangent> direction);
inline std::vector<double> jvp(Tape& tape, const TensorVar& output, std::initializer_list<LeafTangent> direction) {
  return jvp(tape, output, std::span(direction.begin(), direction.size()));
}

// Hessian-vector products by forward-over-reverse (docs/second_order.md): H v, H the
// Hessian of the scalar `loss` with respect to the leaves `params` (scalar leaves as
// rank-0 tensors), v and the result in params order, row-major within each. One reverse
// sweep, one tangent sweep and one dual reverse sweep over the recorded tape: no
// re-recording. Afterwards the grads are those of tape.backward(loss). An Error names a
// tensor op without a tangent or curvature rule, a float32 node, or a size mismatch.
std::vector<double> hvp(Tape& tape, const Var& loss, std::span<const TensorVar> params, std::span<const double> v);
std::vector<double> hvp(Tape& tape, const TensorVar& loss, std::span<const TensorVar> params,
                        std::span<const double> v);

// The Hessian, n x n row-major with n the params' elements in all: one reverse sweep and n
// tangent and dual sweeps. Above max_hessian_size parameters (n² doubles) an Error: use hvp.
inline constexpr std::size_t max_hessian_size = 2048;
std::vector<double> hessian(Tape& tape, const Var& loss, std::span<const TensorVar> params);
std::vector<double> hessian(Tape& tape, const TensorVar& loss, std::span<const TensorVar> params);

// The curvature rule of an op linear in its operands (add, sum, reshape, avg-pool) or
// piecewise linear (max, max-pool): its Jacobian does not change along any tangent.
inline void zero_curvature(const Tape&, const TensorRecord&, const SecondOrderArenas&) {}

namespace detail {
// The tangent of every slot through node `last` (zero past it): the leaves take their seeds,
// a scalar node Σ_i partial_i · ẋ_i, a tensor node its op's tangent rule; into `tangents`,
// resized to the tape's slots (a caller sweeping many directions keeps its capacity).
// `what` names the caller in errors.
void tangent_sweep(const Tape& tape, NodeId last, std::span<const LeafTangent> direction, std::string_view what,
                   std::vector<double>& tangents);
}  // namespace detail

}  // namespace gradpath
