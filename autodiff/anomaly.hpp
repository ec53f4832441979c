// SPDX-License-Identifier: MIT
// Anomaly mode for a stretch of code, like torch.autograd.detect_anomaly.
#pragma once

#include "autodiff/tape.hpp"

namespace gradpath {

// Turns anomaly mode on (or off) for its lifetime and restores the previous setting:
//   { AnomalyGuard guard(tape); ...record...; tape.backward(loss); }
// While on, the first NaN or infinity raises a gradpath::Error such as
//   "anomaly: log (node 12, 'h') produced -inf from operand 0 'x' = 0"
//   "anomaly: backward of sqrt (node 1) made the grad of operand 0 'x' (node 0) inf: ..."
// A node's values are checked when the next op is recorded (so the name given to it
// right after recording is known) and, for the last nodes, when backward starts.
class AnomalyGuard {
 public:
  explicit AnomalyGuard(Tape& tape, bool on = true) : tape_(tape), was_on_(tape.anomaly_detection()) {
    tape_.set_anomaly_detection(on);
  }
  ~AnomalyGuard() { tape_.set_anomaly_detection(was_on_); }
  AnomalyGuard(const AnomalyGuard&) = delete;
  AnomalyGuard& operator=(const AnomalyGuard&) = delete;

 private:
  Tape& tape_;
  bool was_on_;
};

}  // namespace gradpath
