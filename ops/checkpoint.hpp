// SPDX-License-Identifier: MIT
// Checkpoints: named parameter tensors (dtype, shape, values) saved to a file and loaded
// back into the same parameters, in JSON (small models, readable) or binary (large ones).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "autodiff/tensor.hpp"

namespace gradpath {

// A tensor and the name it has in a checkpoint file (independent of its name on the tape).
struct NamedTensor {
  std::string name;
  TensorVar tensor;
};

enum class CheckpointFormat : std::uint8_t {
  automatic,  // save: JSON when the file name ends in ".json", binary otherwise; load: by content
  json,
  binary,
};

// Note [Checkpoint format], version 1. Both formats hold the same thing: an ordered list
// of tensors, each a name, a dtype (float32 or float64), a shape and its values in
// row-major order, exactly (a float64 round-trips bit for bit, in JSON too).
//   JSON:   {"format": "gradpath-checkpoint", "version": 1, "tensors": [
//             {"name": "w", "dtype": "float32", "shape": [3, 3], "values": [0.5, ...]}, ...]}
//           (NaN and infinities as the strings "nan", "inf", "-inf").
//   binary: all integers little-endian, floats IEEE 754 little-endian:
//             magic "GPCKPT\r\n" (8 bytes), u32 version, u32 tensor count, then per tensor
//             u32 name length, the name (UTF-8), u8 dtype (0 float64, 1 float32), u8 rank,
//             u64 per dimension, and size x (8 or 4) bytes of values.
// A newer version than this gradpath reads is an Error, never a guess.
inline constexpr std::uint32_t checkpoint_version = 1;

// Writes `tensors` (any tensors: parameters, or values worth keeping) to `path`. The file
// is written beside its final place under a temporary name and renamed over it, so a
// failed or interrupted save leaves the previous checkpoint whole. An Error for an empty
// or repeated name, or when the file cannot be written (naming the file and the reason).
void save_checkpoint(const std::filesystem::path& path, const std::vector<NamedTensor>& tensors,
                     CheckpointFormat format = CheckpointFormat::automatic);

struct LoadOptions {
  bool allow_unused = false;  // true: tensors in the file that no parameter asks for are ignored
};
// Reads `path` and writes each named tensor's values into the given parameter in place (a
// leaf tensor of the same dtype and shape; rebuild the graph afterwards, as after an
// optimiser step). Everything is checked before anything is written: an Error naming the
// file, the tensor and the mismatch (a tensor missing from the file or left unused, a
// different shape or dtype, a parameter that is not a leaf), or what is wrong with the
// file (not a checkpoint, a newer version, truncated, malformed).
void load_checkpoint(const std::filesystem::path& path, const std::vector<NamedTensor>& params,
                     LoadOptions options = {});

// One tensor as stored in a checkpoint file; values converted to double (exactly).
struct StoredTensor {
  std::string name;
  DType dtype = DType::f64;
  std::vector<std::uint64_t> shape;
  std::vector<double> values;
};
// Every tensor in a checkpoint file, in file order (for inspection and tools); the same
// errors as load_checkpoint for a bad file.
std::vector<StoredTensor> read_checkpoint(const std::filesystem::path& path);

}  // namespace gradpath
