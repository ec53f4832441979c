// SPDX-License-Identifier: MIT
// The IDX reader (examples/idx.hpp) on small synthetic gzip files: values and every corruption.
#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "autodiff/tape.hpp"
#include "examples/idx.hpp"

using namespace gradpath;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed at the end of the test case.
class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("gradpath_idx_test_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

void write_gz(const fs::path& file, const std::vector<std::uint8_t>& bytes) {
  gzFile f = gzopen(file.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

// An IDX file of unsigned bytes: magic 0x000008<rank>, big-endian dims, then the data.
std::vector<std::uint8_t> idx_bytes(const std::vector<std::uint32_t>& dims, const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> out = {0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims) put_u32(out, d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// Two 2x3 images with pixels 0..11 (computed here, not read back from the reader).
std::vector<std::uint8_t> counting(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 7 % 256);
  return v;
}

}  // namespace

TEST_CASE("idx: reads dimensions and row-major bytes", "[idx]") {
  TempDir dir;
  write_gz(dir / "images.gz", idx_bytes({2, 2, 3}, counting(12)));
  const idx::Array a = idx::read(dir / "images.gz", 3);
  CHECK(a.dims == std::vector<std::size_t>{2, 2, 3});
  REQUIRE(a.data.size() == 12);
  CHECK(a.data[0] == 0);
  CHECK(a.data[5] == 35);   // image 0, row 1, column 2
  CHECK(a.data[11] == 77);  // image 1, row 1, column 2
  CHECK(a.data == counting(12));
}

TEST_CASE("idx: dimensions above 2^24 are read big-endian", "[idx]") {
  TempDir dir;
  // 0x01000002 elements would be 16 MiB; a truncated file shows the size was decoded in full.
  write_gz(dir / "big.gz", idx_bytes({0x01000002u}, counting(4)));
  CHECK_THROWS_WITH(idx::read(dir / "big.gz", 1),
                    Catch::Contains("needs 16777218 bytes") && Catch::Contains("only 4 remain"));
}

TEST_CASE("idx: a dataset pairs images with labels", "[idx]") {
  TempDir dir;
  write_gz(dir / "images.gz", idx_bytes({2, 2, 3}, counting(12)));
  write_gz(dir / "labels.gz", idx_bytes({2}, {7, 3}));
  const idx::Dataset d = idx::read_dataset(dir / "images.gz", dir / "labels.gz", 10);
  CHECK(d.count == 2);
  CHECK(d.rows == 2);
  CHECK(d.cols == 3);
  CHECK(d.pixels == counting(12));
  CHECK(d.labels == std::vector<int>{7, 3});
}

TEST_CASE("idx: a plain (uncompressed) file reads the same", "[idx]") {
  TempDir dir;
  const std::vector<std::uint8_t> bytes = idx_bytes({4}, {1, 2, 3, 4});
  {
    std::FILE* f = std::fopen((dir / "plain").c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
    std::fclose(f);
  }
  CHECK(idx::read(dir / "plain", 1).data == std::vector<std::uint8_t>{1, 2, 3, 4});
}

TEST_CASE("idx: a missing file names the file", "[idx][error]") {
  TempDir dir;
  const std::string file = (dir / "absent.gz").string();
  CHECK_THROWS_AS(idx::read(file, 1), Error);
  CHECK_THROWS_WITH(idx::read(file, 1),
                    Catch::Contains(file) && Catch::Contains("cannot open") && Catch::Contains("No such file"));
}

TEST_CASE("idx: a wrong magic number names the file and both numbers", "[idx][error]") {
  TempDir dir;
  SECTION("labels read as images") {
    write_gz(dir / "labels.gz", idx_bytes({2}, {1, 2}));
    CHECK_THROWS_WITH(idx::read(dir / "labels.gz", 3),
                      Catch::Contains((dir / "labels.gz").string()) &&
                          Catch::Contains("wrong magic number 0x00000801, expected 0x00000803"));
  }
  SECTION("a type other than unsigned bytes") {
    std::vector<std::uint8_t> bytes = idx_bytes({2}, {1, 2});
    bytes[2] = 0x0D;  // float
    write_gz(dir / "floats.gz", bytes);
    CHECK_THROWS_WITH(idx::read(dir / "floats.gz", 1),
                      Catch::Contains("floats.gz") && Catch::Contains("wrong magic number 0x00000d01"));
  }
  SECTION("nonzero leading bytes") {
    write_gz(dir / "text.gz", {'h', 'e', 'l', 'l', 'o', '!', '!', '!'});
    CHECK_THROWS_WITH(idx::read(dir / "text.gz", 1),
                      Catch::Contains("text.gz") && Catch::Contains("wrong magic number 0x68656c6c"));
  }
}

TEST_CASE("idx: truncated files name the file and what is missing", "[idx][error]") {
  TempDir dir;
  SECTION("empty") {
    write_gz(dir / "empty.gz", {});
    CHECK_THROWS_WITH(idx::read(dir / "empty.gz", 1),
                      Catch::Contains("empty.gz") && Catch::Contains("truncated: the magic number needs 4 bytes") &&
                          Catch::Contains("only 0 remain"));
  }
  SECTION("inside the header") {
    std::vector<std::uint8_t> bytes = idx_bytes({2, 2, 3}, {});
    bytes.resize(9);
    write_gz(dir / "header.gz", bytes);
    CHECK_THROWS_WITH(idx::read(dir / "header.gz", 3),
                      Catch::Contains("header.gz") && Catch::Contains("the header of 3 dimensions needs 12 bytes") &&
                          Catch::Contains("only 5 remain"));
  }
  SECTION("inside the data") {
    write_gz(dir / "short.gz", idx_bytes({2, 2, 3}, counting(11)));
    CHECK_THROWS_WITH(idx::read(dir / "short.gz", 3), Catch::Contains("short.gz") &&
                                                          Catch::Contains("the data needs 12 bytes") &&
                                                          Catch::Contains("only 11 remain"));
  }
  SECTION("a cut gzip stream") {
    write_gz(dir / "whole.gz", idx_bytes({64}, counting(64)));
    const auto size = fs::file_size(dir / "whole.gz");
    fs::copy_file(dir / "whole.gz", dir / "cut.gz");
    fs::resize_file(dir / "cut.gz", size - 12);  // drops the gzip trailer and some data
    CHECK_THROWS_WITH(idx::read(dir / "cut.gz", 1), Catch::Contains("cut.gz"));
  }
}

TEST_CASE("idx: bytes after the data are an error", "[idx][error]") {
  TempDir dir;
  write_gz(dir / "long.gz", idx_bytes({3}, {1, 2, 3, 4}));
  CHECK_THROWS_WITH(idx::read(dir / "long.gz", 1),
                    Catch::Contains("long.gz") && Catch::Contains("bytes left over after the 3 bytes"));
}

TEST_CASE("idx: a dataset checks counts and labels", "[idx][error]") {
  TempDir dir;
  write_gz(dir / "images.gz", idx_bytes({2, 2, 3}, counting(12)));
  SECTION("more labels than images") {
    write_gz(dir / "labels.gz", idx_bytes({3}, {1, 2, 3}));
    CHECK_THROWS_WITH(idx::read_dataset(dir / "images.gz", dir / "labels.gz", 10),
                      Catch::Contains((dir / "images.gz").string() + " holds 2 images") &&
                          Catch::Contains((dir / "labels.gz").string() + " holds 3 labels"));
  }
  SECTION("a label out of range") {
    write_gz(dir / "labels.gz", idx_bytes({2}, {1, 10}));
    CHECK_THROWS_WITH(idx::read_dataset(dir / "images.gz", dir / "labels.gz", 10),
                      Catch::Contains("labels.gz") && Catch::Contains("label 10 at index 1 is not below 10"));
  }
  SECTION("images and labels swapped") {
    write_gz(dir / "labels.gz", idx_bytes({2}, {1, 2}));
    CHECK_THROWS_WITH(idx::read_dataset(dir / "labels.gz", dir / "images.gz", 10),
                      Catch::Contains("labels.gz") && Catch::Contains("wrong magic number"));
  }
}
