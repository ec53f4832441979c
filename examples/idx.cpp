// SPDX-License-Identifier: MIT
#include "idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "autodiff/tape.hpp"

namespace gradpath::idx {

namespace {
constexpr std::uint8_t unsigned_byte_type = 0x08;
// Larger arrays than this are a corrupt header, not a data set to allocate for.
constexpr std::size_t max_bytes = std::size_t{1} << 32;

struct GzClose {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzClose>;

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& problem) {
  throw Error("idx: " + file.string() + ": " + problem);
}

std::string hex(std::uint32_t v) {
  std::array<char, 11> text{};
  std::snprintf(text.data(), text.size(), "0x%08x", v);
  return text.data();
}

// Reads up to `size` bytes; returns how many were read, raising on a gzip error.
std::size_t read_some(gzFile f, const std::filesystem::path& file, std::uint8_t* out, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const auto chunk = static_cast<unsigned>(std::min<std::size_t>(size - done, 1u << 30));
    const int n = gzread(f, out + done, chunk);
    if (n < 0) {
      int code = 0;
      fail(file, std::string("corrupt gzip data (") + gzerror(f, &code) + ")");
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

void read_exact(gzFile f, const std::filesystem::path& file, std::uint8_t* out, std::size_t size,
                const std::string& what) {
  const std::size_t got = read_some(f, file, out, size);
  if (got != size) {
    fail(file, "truncated: " + what + " needs " + std::to_string(size) + " bytes but only " + std::to_string(got) +
                   " remain");
  }
}

std::uint32_t big_endian(const std::uint8_t* b) {
  return std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | std::uint32_t{b[3]};
}
}  // namespace

Array read(const std::filesystem::path& file, std::size_t rank) {
  if (rank == 0 || rank > 255) fail(file, "rank " + std::to_string(rank) + " is not between 1 and 255");
  errno = 0;
  GzFile f(gzopen(file.c_str(), "rb"));
  if (!f) fail(file, std::string("cannot open (") + (errno ? std::strerror(errno) : "out of memory") + ")");

  std::array<std::uint8_t, 4> magic{};
  read_exact(f.get(), file, magic.data(), magic.size(), "the magic number");
  const std::uint32_t expected = std::uint32_t{unsigned_byte_type} << 8 | static_cast<std::uint32_t>(rank);
  if (big_endian(magic.data()) != expected) {
    fail(file, "wrong magic number " + hex(big_endian(magic.data())) + ", expected " + hex(expected) +
                   " (unsigned bytes, " + std::to_string(rank) + " dimensions)");
  }

  Array a;
  std::vector<std::uint8_t> header(4 * rank);
  read_exact(f.get(), file, header.data(), header.size(), "the header of " + std::to_string(rank) + " dimensions");
  std::size_t total = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t d = big_endian(header.data() + 4 * i);
    a.dims.push_back(d);
    if (d != 0 && total > max_bytes / d) fail(file, "dimensions too large (more than 2^32 bytes)");
    total *= d;
  }
  a.data.resize(total);
  read_exact(f.get(), file, a.data.data(), total, "the data");
  std::uint8_t extra = 0;
  if (read_some(f.get(), file, &extra, 1) != 0) {
    fail(file, "bytes left over after the " + std::to_string(total) + " bytes of data the dimensions describe");
  }
  return a;
}

Dataset read_dataset(const std::filesystem::path& images, const std::filesystem::path& labels, int classes) {
  Array x = read(images, 3);
  Array y = read(labels, 1);
  if (x.dims[0] != y.dims[0]) {
    throw Error("idx: " + images.string() + " holds " + std::to_string(x.dims[0]) + " images but " + labels.string() +
                " holds " + std::to_string(y.dims[0]) + " labels");
  }
  Dataset d{x.dims[0], x.dims[1], x.dims[2], std::move(x.data), {}};
  d.labels.reserve(d.count);
  for (std::size_t i = 0; i < d.count; ++i) {
    if (y.data[i] >= classes) {
      fail(labels, "label " + std::to_string(y.data[i]) + " at index " + std::to_string(i) + " is not below " +
                       std::to_string(classes));
    }
    d.labels.push_back(y.data[i]);
  }
  return d;
}

}  // namespace gradpath::idx
