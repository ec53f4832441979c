// SPDX-License-Identifier: MIT
// Checkpoints: float32 and float64 round trips in both formats, the binary layout, the
// temporary-file write, and an Error naming the file, the tensor and the mismatch.
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "ops/checkpoint.hpp"
#include "ops/tensor.hpp"

using namespace gradpath;
namespace fs = std::filesystem;

namespace {

// A fresh directory for one test case, removed with everything in it afterwards.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("gradpath-checkpoint-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() { fs::remove_all(path); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  fs::path operator/(const std::string& name) const { return path / name; }
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

// Values a careless format would lose: a tenth, extremes, a subnormal, negative zero.
const std::vector<double> awkward = {0.1,  -1.0 / 3.0, 1e300, -1e-300,      std::numeric_limits<double>::denorm_min(),
                                     -0.0, 2.5,        1e-7,  123456789.125};

// Equal bit patterns: tells -0.0 from 0.0, and the subnormals from a flushed zero.
bool same_bits(double a, double b) { return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b); }
bool same_bits(float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b); }

// The error message of `f`, which must throw a gradpath::Error.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("no Error was raised");
  return {};
}

}  // namespace

TEST_CASE("checkpoint: float64 parameters round-trip bit for bit", "[checkpoint]") {
  const auto format = GENERATE(std::string("model.json"), std::string("model.ckpt"));
  ScratchDir dir;
  const fs::path file = dir / format;
  {
    Tape tape;
    TensorVar w = tape.param(awkward, Shape{3, 3}, "w");
    TensorVar b = tape.param(std::vector<double>{-0.25}, Shape{}, "b");
    save_checkpoint(file, {{"w", w}, {"bias", b}});
  }
  Tape tape;
  TensorVar w = tape.param(std::vector<double>(9, 7.0), Shape{3, 3}, "w");
  TensorVar b = tape.param(std::vector<double>{7.0}, Shape{}, "b");
  load_checkpoint(file, {{"bias", b}, {"w", w}});
  for (std::size_t i = 0; i < awkward.size(); ++i) CHECK(same_bits(w.values()[i], awkward[i]));
  CHECK(b.values()[0] == -0.25);
  // The loaded values are the values the graph is built from.
  TensorVar y = w * 2.0;
  CHECK(y.values()[0] == 0.2);
}

TEST_CASE("checkpoint: float32 parameters round-trip bit for bit", "[checkpoint][float32]") {
  const auto format = GENERATE(std::string("model.json"), std::string("model.bin"));
  ScratchDir dir;
  const fs::path file = dir / format;
  std::vector<float> values;
  for (double v : awkward) values.push_back(static_cast<float>(v));
  values[4] = std::numeric_limits<float>::denorm_min();
  {
    Tape tape;
    TensorVar w = tape.param(values, Shape{9}, "w");
    save_checkpoint(file, {{"w", w}});
  }
  Tape tape;
  TensorVar w = tape.param(std::vector<float>(9, 7.0f), Shape{9}, "w");
  load_checkpoint(file, {{"w", w}});
  for (std::size_t i = 0; i < values.size(); ++i) CHECK(same_bits(w.values_f32()[i], values[i]));
  const std::vector<StoredTensor> stored = read_checkpoint(file);
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].dtype == DType::f32);
  CHECK(stored[0].shape == std::vector<std::uint64_t>{9});
}

TEST_CASE("checkpoint: non-finite values survive JSON as strings", "[checkpoint]") {
  ScratchDir dir;
  const std::vector<double> odd = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                                   -std::numeric_limits<double>::infinity()};
  Tape tape;
  TensorVar w = tape.param(odd, Shape{3}, "w");
  save_checkpoint(dir / "w.json", {{"w", w}});
  CHECK_THAT(read_bytes(dir / "w.json"), Catch::Contains("\"nan\"") && Catch::Contains("\"-inf\""));
  const std::vector<StoredTensor> stored = read_checkpoint(dir / "w.json");
  REQUIRE(stored.size() == 1);
  CHECK(std::isnan(stored[0].values[0]));
  CHECK(stored[0].values[1] == std::numeric_limits<double>::infinity());
  CHECK(stored[0].values[2] == -std::numeric_limits<double>::infinity());
}

TEST_CASE("checkpoint: the file name chooses the format; load reads either", "[checkpoint]") {
  ScratchDir dir;
  Tape tape;
  TensorVar w = tape.param(std::vector<double>{1.5, -2.0}, Shape{2}, "w");
  save_checkpoint(dir / "a.json", {{"w", w}});
  save_checkpoint(dir / "a.ckpt", {{"w", w}});
  save_checkpoint(dir / "b.ckpt", {{"w", w}}, CheckpointFormat::json);
  CHECK(read_bytes(dir / "a.json").substr(0, 1) == "{");
  CHECK(read_bytes(dir / "a.ckpt").substr(0, 8) == std::string("GPCKPT\r\n"));
  CHECK(read_bytes(dir / "b.ckpt").substr(0, 1) == "{");
  for (const char* name : {"a.json", "a.ckpt", "b.ckpt"}) {
    const std::vector<StoredTensor> stored = read_checkpoint(dir / name);
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].name == "w");
    CHECK(stored[0].values == std::vector<double>{1.5, -2.0});
  }
}

TEST_CASE("checkpoint: the binary layout is little-endian and versioned", "[checkpoint]") {
  ScratchDir dir;
  Tape tape;
  TensorVar v = tape.param(std::vector<float>{1.0f, -2.0f}, Shape{2, 1}, "v");
  save_checkpoint(dir / "v.bin", {{"v", v}});
  const std::string expected = std::string("GPCKPT\r\n") + std::string("\x01\0\0\0", 4) +  // version 1
                               std::string("\x01\0\0\0", 4) +                              // one tensor
                               std::string("\x01\0\0\0", 4) + "v" +                        // its name
                               std::string("\x01\x02", 2) +                                // float32, rank 2
                               std::string("\x02\0\0\0\0\0\0\0", 8) + std::string("\x01\0\0\0\0\0\0\0", 8) +
                               std::string("\0\0\x80\x3f", 4) + std::string("\0\0\0\xc0", 4);  // 1.0f, -2.0f
  CHECK(read_bytes(dir / "v.bin") == expected);
}

TEST_CASE("checkpoint: a save writes a temporary file and renames it", "[checkpoint]") {
  ScratchDir dir;
  Tape tape;
  TensorVar w = tape.param(std::vector<double>{1.0, 2.0}, Shape{2}, "w");
  save_checkpoint(dir / "w.ckpt", {{"w", w}});
  save_checkpoint(dir / "w.ckpt", {{"w", w}});  // over the old one
  CHECK(dir.files() == std::vector<std::string>{"w.ckpt"});
  const std::string before = read_bytes(dir / "w.ckpt");

  SECTION("a save that fails at the rename leaves no temporary file behind") {
    fs::create_directories(dir / "taken" / "inside");  // rename cannot replace a non-empty directory
    CHECK_THAT(error_of([&] {
                 save_checkpoint(dir / "taken", {{"w", w}});
               }),
               Catch::StartsWith("save_checkpoint: " + (dir / "taken").string() + ": cannot rename"));
    CHECK(dir.files() == std::vector<std::string>{"taken", "w.ckpt"});
  }
  SECTION("a bad tensor list is refused before the old checkpoint is touched") {
    CHECK_THAT(error_of([&] {
                 save_checkpoint(dir / "w.ckpt", {{"w", w}, {"w", w}});
               }),
               Catch::Contains("the name 'w' is given twice"));
    CHECK_THAT(error_of([&] { save_checkpoint(dir / "w.ckpt", {{"", w}}); }), Catch::Contains("an empty name"));
    CHECK(read_bytes(dir / "w.ckpt") == before);
    CHECK(dir.files() == std::vector<std::string>{"w.ckpt"});
  }
  SECTION("a directory that does not exist is named") {
    CHECK_THAT(error_of([&] {
                 save_checkpoint(dir / "no" / "w.ckpt", {{"w", w}});
               }),
               Catch::Contains("cannot create") && Catch::Contains("No such file or directory"));
  }
}

TEST_CASE("checkpoint: a mismatched model is an Error naming the file, the tensor and the mismatch", "[checkpoint]") {
  const auto format = GENERATE(std::string("m.json"), std::string("m.ckpt"));
  ScratchDir dir;
  const fs::path file = dir / format;
  const std::string where = "load_checkpoint: " + file.string() + ": ";
  {
    Tape tape;
    TensorVar w = tape.param(std::vector<double>(6, 0.5), Shape{2, 3}, "w");
    TensorVar b = tape.param(std::vector<double>{1.0, 2.0}, Shape{2}, "b");
    save_checkpoint(file, {{"w", w}, {"b", b}});
  }
  Tape tape;
  TensorVar w = tape.param(std::vector<double>(6, 9.0), Shape{2, 3}, "w");
  TensorVar b = tape.param(std::vector<double>{9.0, 9.0}, Shape{2}, "b");
  TensorVar w_t = tape.param(std::vector<double>(6, 9.0), Shape{3, 2}, "wt");
  TensorVar w32 = tape.param(std::vector<double>(6, 9.0), Shape{2, 3}, "w32", DType::f32);
  TensorVar c = tape.param(std::vector<double>{9.0}, Shape{}, "c");

  CHECK(error_of([&] {
          load_checkpoint(file, {{"w", w}, {"b", b}, {"c", c}});
        }) == where + "no tensor 'c' in the file (it holds 'w', 'b')");
  CHECK(error_of([&] {
          load_checkpoint(file, {{"w", w_t}, {"b", b}});
        }) == where + "tensor 'w' has shape [2, 3] in the file but the parameter has shape [3, 2]");
  CHECK(error_of([&] {
          load_checkpoint(file, {{"w", w32}, {"b", b}});
        }) == where + "tensor 'w' is float64 in the file but the parameter is float32");
  CHECK_THAT(error_of([&] {
               load_checkpoint(file, {{"w", w}});
             }),
             Catch::StartsWith(where + "the file's tensor 'b' is not loaded into any parameter"));
  CHECK_THAT(error_of([&] {
               load_checkpoint(file, {{"w", w}, {"w", w}});
             }),
             Catch::Contains("the name 'w' is given twice"));
  TensorVar sum = ops::add(w, 1.0);
  CHECK_THAT(error_of([&] {
               load_checkpoint(file, {{"w", sum}, {"b", b}});
             }),
             Catch::StartsWith(where + "the parameter for tensor 'w' is not a leaf"));
  // Nothing was written by the refused loads.
  CHECK(w.values()[0] == 9.0);
  CHECK(b.values()[1] == 9.0);

  load_checkpoint(file, {{"w", w}}, {.allow_unused = true});
  CHECK(w.values()[5] == 0.5);
  CHECK(b.values()[0] == 9.0);
}

TEST_CASE("checkpoint: a damaged binary file is named and described", "[checkpoint]") {
  ScratchDir dir;
  const fs::path file = dir / "m.ckpt";
  Tape tape;
  TensorVar w = tape.param(std::vector<double>(6, 0.5), Shape{2, 3}, "w");
  save_checkpoint(file, {{"w", w}});
  const std::string good = read_bytes(file);
  const std::string where = "load_checkpoint: " + file.string() + ": ";

  SECTION("truncated in the values") {
    write_bytes(file, good.substr(0, good.size() - 5));
    CHECK(error_of([&] {
            load_checkpoint(file, {{"w", w}});
          }) == where + "truncated: tensor 1 of 1 ('w') needs 48 bytes of values, 43 remain");
  }
  SECTION("truncated in the header") {
    write_bytes(file, good.substr(0, 10));
    CHECK(error_of([&] {
            load_checkpoint(file, {{"w", w}});
          }) == where + "truncated: the version needs 4 bytes, 2 remain");
  }
  SECTION("wrong magic") {
    write_bytes(file, "GPCKPX" + good.substr(6));
    CHECK(error_of([&] {
            load_checkpoint(file, {{"w", w}});
          }) == where + "not a gradpath checkpoint (neither the binary magic GPCKPT nor a JSON object)");
  }
  SECTION("a newer version") {
    std::string newer = good;
    newer[8] = 2;
    write_bytes(file, newer);
    CHECK(error_of([&] {
            load_checkpoint(file, {{"w", w}});
          }) == where + "checkpoint version 2; this gradpath reads version 1 (written by a newer gradpath?)");
  }
  SECTION("bytes after the last tensor") {
    write_bytes(file, good + "xyz");
    CHECK(error_of([&] { load_checkpoint(file, {{"w", w}}); }) == where + "3 bytes after the last tensor");
  }
  SECTION("an empty or missing file") {
    write_bytes(file, "");
    CHECK(error_of([&] { load_checkpoint(file, {{"w", w}}); }) == where + "empty file, not a checkpoint");
    CHECK_THAT(error_of([&] {
                 load_checkpoint(dir / "none.ckpt", {{"w", w}});
               }),
               Catch::StartsWith("load_checkpoint: " + (dir / "none.ckpt").string() + ": cannot open"));
  }
  CHECK(w.values()[0] == 0.5);
}

TEST_CASE("checkpoint: a damaged JSON file is named and described", "[checkpoint]") {
  ScratchDir dir;
  const fs::path file = dir / "m.json";
  const std::string where = "read_checkpoint: " + file.string() + ": ";
  write_bytes(file, R"({"format": "gradpath-checkpoint", "version": 1, "tensors": [)");
  CHECK_THAT(error_of([&] { read_checkpoint(file); }), Catch::StartsWith(where + "not valid JSON: "));
  write_bytes(file, R"({"format": "other", "version": 1, "tensors": []})");
  CHECK_THAT(error_of([&] { read_checkpoint(file); }), Catch::StartsWith(where + "not a gradpath checkpoint"));
  write_bytes(file, R"({"format": "gradpath-checkpoint", "version": 3, "tensors": []})");
  CHECK_THAT(error_of([&] { read_checkpoint(file); }), Catch::StartsWith(where + "checkpoint version 3;"));
  write_bytes(file, R"({"format": "gradpath-checkpoint", "version": 1, "tensors": [
    {"name": "w", "dtype": "float64", "shape": [2, 2], "values": [1, 2, 3]}]})");
  CHECK(error_of([&] { read_checkpoint(file); }) ==
        where + "tensor 1 of 1 ('w') has 3 values for shape [2, 2] (4 elements)");
  write_bytes(file, R"({"format": "gradpath-checkpoint", "version": 1, "tensors": [
    {"name": "w", "dtype": "float16", "shape": [1], "values": [1]}]})");
  CHECK(error_of([&] { read_checkpoint(file); }) ==
        where + "tensor 1 of 1 ('w'): dtype \"float16\" is not float32 or float64");
  write_bytes(file, R"({"format": "gradpath-checkpoint", "version": 1, "tensors": [
    {"name": "w", "dtype": "float64", "shape": [1], "values": [1]}, {"name": "w", "dtype": "float64", "shape": [], "values": [2]}]})");
  CHECK(error_of([&] { read_checkpoint(file); }) == where + "the tensor 'w' appears twice");
}
