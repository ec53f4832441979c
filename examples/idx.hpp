// SPDX-License-Identifier: MIT
// Reader for IDX files of unsigned bytes (the MNIST format), gzip-compressed or plain.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace gradpath::idx {

// One IDX array: its dimensions and its bytes in row-major order.
struct Array {
  std::vector<std::size_t> dims;
  std::vector<std::uint8_t> data;
};

// Reads `file` (zlib reads gzip and plain files alike), which must hold unsigned bytes
// (type code 0x08) in exactly `rank` dimensions. Every problem is a gradpath::Error naming
// the file: missing or unreadable, wrong magic number, corrupt gzip, data shorter than the
// dimensions say, bytes left over after the data.
Array read(const std::filesystem::path& file, std::size_t rank);

// Images (N, rows, cols) with their N labels.
struct Dataset {
  std::size_t count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // count * rows * cols, row-major
  std::vector<int> labels;           // count
};

// Reads a rank-3 image file and a rank-1 label file; an Error naming both files when the
// counts differ, or naming the label file when a label is not below `classes`.
Dataset read_dataset(const std::filesystem::path& images, const std::filesystem::path& labels, int classes);

}  // namespace gradpath::idx
