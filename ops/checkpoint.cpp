// SPDX-License-Identifier: MIT
// Checkpoints (Note [Checkpoint format] in checkpoint.hpp): writing through a temporary
// file and a rename, the JSON and binary encodings, and loading with every check first.
#include "ops/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <utility>

namespace gradpath {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr std::array<char, 8> magic = {'G', 'P', 'C', 'K', 'P', 'T', '\r', '\n'};
constexpr std::string_view json_format = "gradpath-checkpoint";
constexpr std::size_t max_name_bytes = 1u << 16;

// "<op>: <file>: <what>", the shape of every checkpoint Error.
[[noreturn]] void fail(std::string_view op, const fs::path& path, const std::string& what) {
  throw Error(std::string(op) + ": " + path.string() + ": " + what);
}

std::string shape_str(std::span<const std::uint64_t> dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}
std::vector<std::uint64_t> dims_of(const Shape& shape) {
  std::vector<std::uint64_t> dims(shape.rank());
  for (std::size_t i = 0; i < shape.rank(); ++i) dims[i] = shape[i];
  return dims;
}
// The element count of `dims`, or nullopt past 2^62 (a corrupt file, not a tensor).
std::optional<std::uint64_t> element_count(std::span<const std::uint64_t> dims) {
  std::uint64_t n = 1;
  for (std::uint64_t d : dims) {
    if (d != 0 && n > (std::uint64_t{1} << 62) / d) return std::nullopt;
    n *= d;
  }
  return n;
}

// The values of a tensor as doubles (exact for float32).
std::vector<double> values_of(const TensorVar& t) {
  if (t.dtype() == DType::f32) {
    const std::span<const float> v = t.values_f32();
    return {v.begin(), v.end()};
  }
  const std::span<const double> v = t.values();
  return {v.begin(), v.end()};
}

// ---- writing -----------------------------------------------------------------------

// A new file beside `path` under a temporary name, renamed over `path` by commit(); the
// destructor removes it when commit() was not reached. Writes are buffered.
class AtomicFile {
 public:
  explicit AtomicFile(const fs::path& path) : path_(path) {
    static std::atomic<unsigned> counter{0};
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    for (int attempt = 0; fd_ < 0; ++attempt) {
      temp_ =
          dir / ("." + path.filename().string() + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter++));
      fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && (errno != EEXIST || attempt == 100)) {
        fail("save_checkpoint", path_, std::string("cannot create ") + temp_.string() + ": " + std::strerror(errno));
      }
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_.c_str());
  }

  void write(std::span<const char> bytes) {
    if (buffer_.size() + bytes.size() > buffer_capacity) flush();
    if (bytes.size() > buffer_capacity) {
      write_all(bytes);
    } else {
      buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    }
  }
  void write_text(std::string_view text) { write(std::span<const char>(text.data(), text.size())); }

  // Everything on disk under the temporary name, then the rename: readers see the old
  // file or the new one, never a part.
  void commit() {
    flush();
    if (::fsync(fd_) != 0) error("cannot sync " + temp_.string());
    if (::close(fd_) != 0) {
      fd_ = -1;
      error("cannot close " + temp_.string());
    }
    fd_ = -1;
    if (std::rename(temp_.c_str(), path_.c_str()) != 0) error("cannot rename " + temp_.string() + " to it");
    committed_ = true;
  }

 private:
  static constexpr std::size_t buffer_capacity = 1u << 16;

  [[noreturn]] void error(const std::string& what) const {
    fail("save_checkpoint", path_, what + ": " + std::strerror(errno));
  }
  void flush() {
    write_all(buffer_);
    buffer_.clear();
  }
  void write_all(std::span<const char> bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) error("cannot write " + temp_.string());
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
  }

  fs::path path_, temp_;
  int fd_ = -1;
  bool committed_ = false;
  std::vector<char> buffer_;
};

// Little-endian bytes of an unsigned integer, whatever the host's order.
template <typename U>
void put(AtomicFile& out, U value) {
  std::array<char, sizeof(U)> bytes{};
  for (std::size_t i = 0; i < sizeof(U); ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xFFu);
  out.write(bytes);
}

template <typename T>
void put_values(AtomicFile& out, std::span<const T> values) {
  using U = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
  std::array<char, 4096 * sizeof(T)> chunk{};
  while (!values.empty()) {
    const std::size_t n = std::min<std::size_t>(values.size(), 4096);
    for (std::size_t i = 0; i < n; ++i) {
      const auto bits = std::bit_cast<U>(values[i]);
      for (std::size_t b = 0; b < sizeof(T); ++b)
        chunk[i * sizeof(T) + b] = static_cast<char>((bits >> (8 * b)) & 0xFFu);
    }
    out.write(std::span<const char>(chunk.data(), n * sizeof(T)));
    values = values.subspan(n);
  }
}

void write_binary(AtomicFile& out, const std::vector<NamedTensor>& tensors) {
  out.write(magic);
  put(out, checkpoint_version);
  put(out, static_cast<std::uint32_t>(tensors.size()));
  for (const NamedTensor& t : tensors) {
    put(out, static_cast<std::uint32_t>(t.name.size()));
    out.write_text(t.name);
    put(out, static_cast<std::uint8_t>(t.tensor.dtype() == DType::f32 ? 1 : 0));
    put(out, static_cast<std::uint8_t>(t.tensor.rank()));
    for (std::uint64_t d : dims_of(t.tensor.shape())) put(out, d);
    if (t.tensor.dtype() == DType::f32) {
      put_values(out, t.tensor.values_f32());
    } else {
      put_values(out, t.tensor.values());
    }
  }
}

Json number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

void write_json(AtomicFile& out, const std::vector<NamedTensor>& tensors) {
  Json list = Json::array();
  for (const NamedTensor& t : tensors) {
    Json values = Json::array();
    for (double v : values_of(t.tensor)) values.push_back(number(v));
    list.push_back({{"name", t.name},
                    {"dtype", std::string(dtype_name(t.tensor.dtype()))},
                    {"shape", dims_of(t.tensor.shape())},
                    {"values", std::move(values)}});
  }
  const Json doc = {
      {"format", std::string(json_format)}, {"version", checkpoint_version}, {"tensors", std::move(list)}};
  out.write_text(doc.dump(1) + "\n");
}

// ---- reading -----------------------------------------------------------------------

// Reads a binary checkpoint, checking every count against the bytes left before it
// allocates, so a corrupt header cannot ask for more memory than the file holds.
class BinaryReader {
 public:
  BinaryReader(std::string_view op, const fs::path& path, std::ifstream& in, std::uint64_t size)
      : op_(op), path_(path), in_(in), left_(size) {}

  template <typename U>
  U get(const std::string& what) {
    std::array<unsigned char, sizeof(U)> bytes{};
    read(reinterpret_cast<char*>(bytes.data()), bytes.size(), what);
    U value = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) value |= static_cast<U>(static_cast<U>(bytes[i]) << (8 * i));
    return value;
  }
  void read(char* into, std::uint64_t n, const std::string& what) {
    if (n > left_) {
      fail(op_, path_,
           "truncated: " + what + " needs " + std::to_string(n) + " bytes, " + std::to_string(left_) + " remain");
    }
    in_.read(into, static_cast<std::streamsize>(n));
    if (!in_) fail(op_, path_, "cannot read " + what);
    left_ -= n;
  }
  template <typename T>
  void values(std::vector<double>& out, std::uint64_t count, const std::string& what) {
    using U = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
    if (count > left_ / sizeof(T)) {
      fail(op_, path_,
           "truncated: " + what + " needs " + std::to_string(count * sizeof(T)) + " bytes of values, " +
               std::to_string(left_) + " remain");
    }
    out.resize(count);
    std::vector<unsigned char> chunk(std::min<std::uint64_t>(count, 4096) * sizeof(T));
    for (std::uint64_t first = 0; first < count; first += 4096) {
      const std::uint64_t n = std::min<std::uint64_t>(count - first, 4096);
      read(reinterpret_cast<char*>(chunk.data()), n * sizeof(T), what);
      for (std::uint64_t i = 0; i < n; ++i) {
        U bits = 0;
        for (std::size_t b = 0; b < sizeof(T); ++b)
          bits |= static_cast<U>(static_cast<U>(chunk[i * sizeof(T) + b]) << (8 * b));
        out[first + i] = static_cast<double>(std::bit_cast<T>(bits));
      }
    }
  }
  std::uint64_t left() const { return left_; }

 private:
  std::string_view op_;
  const fs::path& path_;
  std::ifstream& in_;
  std::uint64_t left_;
};

void check_version(std::string_view op, const fs::path& path, std::uint64_t version) {
  if (version == 0 || version > checkpoint_version) {
    fail(op, path,
         "checkpoint version " + std::to_string(version) + "; this gradpath reads version " +
             std::to_string(checkpoint_version) +
             (version > checkpoint_version ? " (written by a newer gradpath?)" : ""));
  }
}

std::vector<StoredTensor> read_binary(std::string_view op, const fs::path& path, std::ifstream& in,
                                      std::uint64_t size) {
  BinaryReader r(op, path, in, size);
  std::array<char, magic.size()> head{};
  r.read(head.data(), head.size(), "the magic number");
  check_version(op, path, r.get<std::uint32_t>("the version"));
  const auto count = r.get<std::uint32_t>("the tensor count");
  std::vector<StoredTensor> tensors;
  for (std::uint32_t k = 0; k < count; ++k) {
    const std::string which = "tensor " + std::to_string(k + 1) + " of " + std::to_string(count);
    StoredTensor t;
    const auto name_size = r.get<std::uint32_t>("the name of " + which);
    if (name_size > max_name_bytes)
      fail(op, path, "the name of " + which + " is " + std::to_string(name_size) + " bytes");
    t.name.resize(name_size);
    r.read(t.name.data(), name_size, "the name of " + which);
    const std::string what = which + " ('" + t.name + "')";
    const auto dtype = r.get<std::uint8_t>("the dtype of " + what);
    if (dtype > 1) fail(op, path, what + " has an unknown dtype code " + std::to_string(dtype));
    t.dtype = dtype == 1 ? DType::f32 : DType::f64;
    t.shape.resize(r.get<std::uint8_t>("the rank of " + what));
    for (std::uint64_t& d : t.shape) d = r.get<std::uint64_t>("the shape of " + what);
    const std::optional<std::uint64_t> n = element_count(t.shape);
    if (!n) fail(op, path, what + " has an impossible shape " + shape_str(t.shape));
    if (t.dtype == DType::f32) {
      r.values<float>(t.values, *n, what);
    } else {
      r.values<double>(t.values, *n, what);
    }
    tensors.push_back(std::move(t));
  }
  if (r.left() != 0) fail(op, path, std::to_string(r.left()) + " bytes after the last tensor");
  return tensors;
}

double json_number(std::string_view op, const fs::path& path, const Json& v, const std::string& what) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
  }
  fail(op, path, what + " is " + v.dump() + ", not a number (nor \"nan\", \"inf\", \"-inf\")");
}

StoredTensor json_tensor(std::string_view op, const fs::path& path, const Json& j, const std::string& which) {
  auto field = [&](const char* key, bool ok, const char* expected) -> const Json& {
    if (!j.contains(key)) fail(op, path, which + " has no \"" + key + "\"");
    if (!ok) fail(op, path, which + ": \"" + key + "\" must be " + expected);
    return j.at(key);
  };
  StoredTensor t;
  t.name = field("name", j.contains("name") && j["name"].is_string(), "a string").get<std::string>();
  const std::string what = which + " ('" + t.name + "')";
  const Json& dtype = field("dtype", j.contains("dtype") && j["dtype"].is_string(), "\"float32\" or \"float64\"");
  if (dtype != "float32" && dtype != "float64")
    fail(op, path, what + ": dtype " + dtype.dump() + " is not float32 or float64");
  t.dtype = dtype == "float32" ? DType::f32 : DType::f64;
  const Json& shape = field("shape", j.contains("shape") && j["shape"].is_array(), "an array of sizes");
  for (const Json& d : shape) {
    if (!d.is_number_unsigned())
      fail(op, path, what + ": shape " + shape.dump() + " holds " + d.dump() + ", not a size");
    t.shape.push_back(d.get<std::uint64_t>());
  }
  const Json& values = field("values", j.contains("values") && j["values"].is_array(), "an array of numbers");
  const std::optional<std::uint64_t> n = element_count(t.shape);
  if (!n || *n != values.size()) {
    fail(op, path,
         what + " has " + std::to_string(values.size()) + " values for shape " + shape_str(t.shape) +
             (n ? " (" + std::to_string(*n) + " elements)" : ""));
  }
  t.values.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    t.values.push_back(json_number(op, path, values[i], what + " value " + std::to_string(i)));
  return t;
}

std::vector<StoredTensor> read_json(std::string_view op, const fs::path& path, std::ifstream& in) {
  Json doc;
  try {
    doc = Json::parse(in);
  } catch (const Json::parse_error& e) {
    fail(op, path, std::string("not valid JSON: ") + e.what());
  }
  if (!doc.is_object() || doc.value("format", Json()) != std::string(json_format)) {
    fail(op, path, "not a gradpath checkpoint (a JSON checkpoint has \"format\": \"gradpath-checkpoint\")");
  }
  const Json version = doc.value("version", Json());
  if (!version.is_number_unsigned()) fail(op, path, "\"version\" must be a positive integer, got " + version.dump());
  check_version(op, path, version.get<std::uint64_t>());
  if (!doc.contains("tensors") || !doc["tensors"].is_array()) fail(op, path, "\"tensors\" must be an array");
  std::vector<StoredTensor> tensors;
  const Json& list = doc["tensors"];
  for (std::size_t k = 0; k < list.size(); ++k) {
    const std::string which = "tensor " + std::to_string(k + 1) + " of " + std::to_string(list.size());
    if (!list[k].is_object()) fail(op, path, which + " is not an object");
    tensors.push_back(json_tensor(op, path, list[k], which));
  }
  return tensors;
}

std::vector<StoredTensor> read_file(std::string_view op, const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  if (!in || ec) fail(op, path, std::string("cannot open: ") + (ec ? ec.message() : std::strerror(errno)));
  std::array<char, magic.size()> head{};
  in.read(head.data(), head.size());
  const auto got = static_cast<std::size_t>(in.gcount());
  in.clear();
  in.seekg(0);
  std::vector<StoredTensor> tensors;
  if (got == magic.size() && head == magic) {
    tensors = read_binary(op, path, in, size);
  } else {
    const auto first = std::find_if(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(got),
                                    [](char c) { return c != ' ' && c != '\n' && c != '\r' && c != '\t'; });
    if (first == head.begin() + static_cast<std::ptrdiff_t>(got) || *first != '{') {
      fail(op, path,
           size == 0 ? std::string("empty file, not a checkpoint")
                     : "not a gradpath checkpoint (neither the binary magic GPCKPT nor a JSON object)");
    }
    tensors = read_json(op, path, in);
  }
  std::set<std::string_view> names;
  for (const StoredTensor& t : tensors) {
    if (!names.insert(t.name).second) fail(op, path, "the tensor '" + t.name + "' appears twice");
  }
  return tensors;
}

// The leaf check load_checkpoint makes before it writes into `t`.
void check_leaf(const fs::path& path, const NamedTensor& p) {
  const Tape& tape = Tape::of(p.tensor.first(), "load_checkpoint");
  const NodeId first = tape.node_of(p.tensor.first().slot());
  const std::size_t nodes = p.tensor.dtype() == DType::f32 ? 1 : p.tensor.size();
  for (std::size_t i = 0; i < nodes; ++i) {
    const NodeId n = p.tensor.dtype() == DType::f32 ? first : tape.node_of(p.tensor.offset() + static_cast<Slot>(i));
    if (!is_leaf(tape.op(n))) {
      fail("load_checkpoint", path,
           "the parameter for tensor '" + p.name + "' is not a leaf (element " + std::to_string(i) + " is a " +
               std::string(op_name(tape.op(n))) + " node): load into parameters, then rebuild the graph");
    }
  }
}

}  // namespace

void save_checkpoint(const fs::path& path, const std::vector<NamedTensor>& tensors, CheckpointFormat format) {
  std::set<std::string_view> names;
  for (const NamedTensor& t : tensors) {
    if (t.name.empty()) fail("save_checkpoint", path, "a tensor has an empty name");
    if (t.name.size() > max_name_bytes)
      fail("save_checkpoint", path, "the name '" + t.name.substr(0, 40) + "...' is too long");
    if (!names.insert(t.name).second) fail("save_checkpoint", path, "the name '" + t.name + "' is given twice");
    Tape::of(t.tensor.first(), "save_checkpoint");  // a stale handle raises here, before the file is made
  }
  if (format == CheckpointFormat::automatic)
    format = path.extension() == ".json" ? CheckpointFormat::json : CheckpointFormat::binary;
  AtomicFile out(path);
  if (format == CheckpointFormat::json) {
    write_json(out, tensors);
  } else {
    write_binary(out, tensors);
  }
  out.commit();
}

std::vector<StoredTensor> read_checkpoint(const fs::path& path) { return read_file("read_checkpoint", path); }

void load_checkpoint(const fs::path& path, const std::vector<NamedTensor>& params, LoadOptions options) {
  const std::vector<StoredTensor> stored = read_file("load_checkpoint", path);
  std::map<std::string_view, const StoredTensor*> by_name;
  for (const StoredTensor& t : stored) by_name.emplace(t.name, &t);
  std::set<std::string_view> asked;
  std::vector<const StoredTensor*> sources;
  for (const NamedTensor& p : params) {
    if (!asked.insert(p.name).second) fail("load_checkpoint", path, "the name '" + p.name + "' is given twice");
    const auto it = by_name.find(p.name);
    if (it == by_name.end()) {
      std::string held;
      for (const StoredTensor& t : stored) held += (held.empty() ? "'" : ", '") + t.name + "'";
      fail("load_checkpoint", path,
           "no tensor '" + p.name + "' in the file (it holds " + (held.empty() ? "no tensors" : held) + ")");
    }
    const StoredTensor& s = *it->second;
    if (s.dtype != p.tensor.dtype()) {
      fail("load_checkpoint", path,
           "tensor '" + p.name + "' is " + std::string(dtype_name(s.dtype)) + " in the file but the parameter is " +
               std::string(dtype_name(p.tensor.dtype())));
    }
    if (s.shape != dims_of(p.tensor.shape())) {
      fail("load_checkpoint", path,
           "tensor '" + p.name + "' has shape " + shape_str(s.shape) + " in the file but the parameter has shape " +
               p.tensor.shape().str());
    }
    check_leaf(path, p);
    sources.push_back(&s);
  }
  if (!options.allow_unused) {
    for (const StoredTensor& t : stored) {
      if (!asked.contains(t.name)) {
        fail("load_checkpoint", path,
             "the file's tensor '" + t.name +
                 "' is not loaded into any parameter (a different model? "
                 "LoadOptions{.allow_unused = true} ignores it)");
      }
    }
  }
  for (std::size_t k = 0; k < params.size(); ++k) {
    const TensorVar& t = params[k].tensor;
    const std::vector<double>& v = sources[k]->values;
    if (t.dtype() == DType::f32) {
      const std::span<float> out = t.tape().values_f32().subspan(t.offset(), t.size());
      std::transform(v.begin(), v.end(), out.begin(), [](double x) { return static_cast<float>(x); });
    } else {
      std::copy(v.begin(), v.end(), t.tape().values().begin() + t.offset());
    }
  }
}

}  // namespace gradpath
