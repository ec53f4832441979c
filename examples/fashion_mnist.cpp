// SPDX-License-Identifier: MIT
// Trains the seed note's network on Fashion-MNIST: conv 3x3 (padding 1) -> relu -> max-pool 2
// -> flatten -> dense -> softmax cross-entropy, and reports accuracy on the 10k test images.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "autodiff/tensor.hpp"
#include "examples/idx.hpp"
#include "ops/conv.hpp"
#include "ops/nn.hpp"
#include "ops/optim.hpp"
#include "ops/pool.hpp"
#include "ops/threads.hpp"

using namespace gradpath;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

extern char** environ;

namespace {

constexpr int classes = 10;
constexpr std::size_t eval_batch = 250;  // test batches: larger than training, small enough for the tape

struct Options {
  fs::path data = "/usr/share/datasets/fashion-mnist";
  fs::path out = "fashion-mnist-out";
  std::size_t epochs = 5;  // float32 passes 90% test accuracy after 3, and keeps a margin after 5
  std::size_t limit = 0;   // 0: every training image
  std::size_t channels = 16;
  std::size_t batch = 64;
  double lr = 4e-3;
  double decay = 0.5;  // the learning rate of each epoch is the last one's times this
  std::uint64_t seed = 1;
  DType dtype = DType::f32;
  std::size_t threads = 0;  // 0: gradpath's default, one per hardware thread
  fs::path bench_json;      // empty: none
};

// The note's architecture; parameters are recorded first so they survive tape.reset().
struct Net {
  TensorVar conv_w, conv_b, dense_w, dense_b;

  Net(Tape& tape, std::size_t channels, std::size_t rows, std::size_t cols, std::uint64_t seed, DType dtype) {
    const Shape cw{channels, 1, 3, 3};
    const Shape dw{classes, channels * (rows / 2) * (cols / 2)};
    conv_w = tape.param(ops::he_normal(cw, seed), cw, "conv_w", dtype);
    conv_b = tape.param(std::vector<double>(channels, 0.0), Shape{channels}, "conv_b", dtype);
    dense_w = tape.param(ops::he_normal(dw, seed + 1), dw, "dense_w", dtype);
    dense_b = tape.param(std::vector<double>(classes, 0.0), Shape{classes}, "dense_b", dtype);
  }
  std::vector<TensorVar> params() const { return {conv_w, conv_b, dense_w, dense_b}; }

  TensorVar logits(const TensorVar& x) const {
    TensorVar h = ops::relu(ops::conv2d(x, conv_w, conv_b, {.stride = 1, .padding = 1}));
    return ops::dense(ops::flatten(ops::max_pool2d(h), 1), dense_w, dense_b);
  }
};

// Images scaled to zero mean and unit variance over the training set, via one table per byte.
struct Inputs {
  const idx::Dataset& set;
  DType dtype;
  std::array<double, 256> scale{};
  std::vector<double> values;  // one batch, reused
  std::vector<int> labels;

  Inputs(const idx::Dataset& s, double mean, double stddev, DType d) : set(s), dtype(d) {
    for (std::size_t p = 0; p < scale.size(); ++p) scale[p] = (static_cast<double>(p) / 255.0 - mean) / stddev;
  }
  // Records the images `ids` as one constant tensor (n, 1, rows, cols), so no grad is computed
  // for them, and copies their labels.
  TensorVar batch(Tape& tape, std::span<const std::size_t> ids) {
    const std::size_t pixels = set.rows * set.cols;
    values.resize(ids.size() * pixels);
    labels.resize(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::uint8_t* image = set.pixels.data() + ids[i] * pixels;
      for (std::size_t p = 0; p < pixels; ++p) values[i * pixels + p] = scale[image[p]];
      labels[i] = set.labels[ids[i]];
    }
    return tape.constant(values, Shape{ids.size(), 1, set.rows, set.cols}, {}, dtype);
  }
};

template <typename T>
std::size_t count_correct(std::span<const T> logits, std::span<const int> labels) {
  std::size_t correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto row = logits.subspan(i * classes, classes);
    correct += std::max_element(row.begin(), row.end()) - row.begin() == labels[i];
  }
  return correct;
}
std::size_t count_correct(const TensorVar& logits, std::span<const int> labels) {
  return logits.dtype() == DType::f32 ? count_correct(logits.values_f32(), labels)
                                      : count_correct(logits.values(), labels);
}

struct Metrics {
  double loss = 0.0, accuracy = 0.0;
};

Metrics evaluate(Tape& tape, const Net& net, Inputs& test) {
  std::vector<std::size_t> order(test.set.count);
  std::iota(order.begin(), order.end(), std::size_t{0});
  double loss = 0.0;
  std::size_t correct = 0;
  for (std::size_t first = 0; first < order.size(); first += eval_batch) {
    tape.reset();
    const auto ids = std::span(order).subspan(first, std::min(eval_batch, order.size() - first));
    TensorVar logits = net.logits(test.batch(tape, ids));
    loss += ops::softmax_cross_entropy(logits, test.labels).item() * static_cast<double>(ids.size());
    correct += count_correct(logits, test.labels);
  }
  tape.reset();
  const auto n = static_cast<double>(order.size());
  return {loss / n, 100.0 * static_cast<double>(correct) / n};
}

// CPU time of the whole process, every thread (the pool's too), in seconds.
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// The training loop's times of one epoch, for bench/table.py.
struct EpochTimes {
  double wall = 0.0, cpu = 0.0, loss = 0.0;
};

// bench/run_peers.sh's case E1: one run per epoch in Google Benchmark's JSON format, named
// as bench/table.py looks it up, the times per epoch (one iteration) in seconds.
void write_bench_json(const fs::path& file, DType dtype, std::size_t steps, std::span<const EpochTimes> epochs) {
  std::ofstream out(file);
  out << "{\"context\": {\"program\": \"fashion_mnist\", \"threads\": " << num_threads() << "},\n"
      << " \"benchmarks\": [";
  out.precision(9);
  for (std::size_t i = 0; i < epochs.size(); ++i) {
    out << (i == 0 ? "\n" : ",\n") << "  {\"name\": \"E1/gradpath/" << dtype_name(dtype) << "/threads:" << num_threads()
        << "\", \"run_type\": \"iteration\", \"iterations\": 1, "
        << "\"time_unit\": \"s\", \"real_time\": " << epochs[i].wall << ", \"cpu_time\": " << epochs[i].cpu
        << ", \"steps\": " << steps << ", \"train_loss\": " << epochs[i].loss << "}";
  }
  out << "\n]}\n";
  if (!out) throw Error("cannot write " + file.string());
}

std::string clock_text(double seconds) {
  const auto s = static_cast<long>(std::lround(seconds));
  return std::to_string(s / 60) + ":" + (s % 60 < 10 ? "0" : "") + std::to_string(s % 60);
}

// One line, redrawn in place: bar, running loss and accuracy, throughput, time left.
void draw_progress(std::size_t epoch, std::size_t epochs, std::size_t done, std::size_t total, Metrics running,
                   double seconds) {
  constexpr std::size_t width = 20;
  const std::size_t filled = width * done / total;
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  const double left = rate > 0 ? static_cast<double>(total - done) / rate : 0.0;
  std::printf("\repoch %zu/%zu [%s%s] %3zu%%  loss %.4f  acc %5.2f%%  %6.0f img/s  ETA %s ", epoch, epochs,
              std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), 100 * done / total,
              running.loss, running.accuracy, rate, clock_text(left).c_str());
  std::fflush(stdout);
}

// A gnuplot string literal: single quotes, with an embedded quote doubled.
std::string gnuplot_quote(const fs::path& p) {
  std::string q = "'";
  for (char c : p.string()) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

// Writes metrics.gp next to the CSV and runs gnuplot on it (no shell involved).
void plot(const fs::path& out, std::size_t epochs) {
  const fs::path dir = fs::absolute(out);  // so the script runs from anywhere
  const fs::path csv = dir / "metrics.csv", script = dir / "metrics.gp", png = dir / "metrics.png";
  std::ofstream(script) << "set datafile separator ','\n"
                        << "set terminal png size 1000,420\n"
                        << "set output " << gnuplot_quote(png) << "\n"
                        << "set multiplot layout 1,2\n"
                        << "set xlabel 'epoch'\nset xrange [0.5:" << epochs << ".5]\nset xtics 1\nset grid\n"
                        << "set key top right\n"
                        << "set title 'cross-entropy loss'\n"
                        << "plot " << gnuplot_quote(csv) << " using 1:2 with linespoints title 'train', '' using 1:4"
                        << " with linespoints title 'test'\n"
                        << "set title 'accuracy (%)'\nset key bottom right\n"
                        << "plot " << gnuplot_quote(csv) << " using 1:3 with linespoints title 'train', '' using 1:5"
                        << " with linespoints title 'test'\n"
                        << "unset multiplot\n";
  std::string program = "gnuplot", arg = script.string();
  std::array<char*, 3> argv{program.data(), arg.data(), nullptr};
  pid_t pid = 0;
  if (posix_spawnp(&pid, "gnuplot", nullptr, nullptr, argv.data(), environ) != 0) {
    std::printf("gnuplot is not installed: no plot (the script is %s)\n", script.c_str());
    return;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    std::printf("plot: %s\n", png.c_str());
  } else {
    std::printf("gnuplot failed on %s: no plot\n", script.c_str());
  }
}

int run(const Options& opt) {
  const std::array<const char*, 4> files = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
  for (const char* f : files) {
    if (!fs::exists(opt.data / f)) {
      std::fprintf(stderr,
                   "fashion_mnist: no Fashion-MNIST data in %s (%s is missing).\n"
                   "Install it with `apt-get install dataset-fashion-mnist`, or pass --data DIR.\n",
                   opt.data.c_str(), f);
      return 2;
    }
  }
  const idx::Dataset train = idx::read_dataset(opt.data / files[0], opt.data / files[1], classes);
  const idx::Dataset test = idx::read_dataset(opt.data / files[2], opt.data / files[3], classes);
  if (train.rows != test.rows || train.cols != test.cols || train.rows < 2 || train.cols < 2 || train.count == 0 ||
      test.count == 0) {
    throw Error("expected training and test images of one size, at least 2x2, and at least one of each; got " +
                std::to_string(train.count) + " training images of " + std::to_string(train.rows) + "x" +
                std::to_string(train.cols) + " and " + std::to_string(test.count) + " test images of " +
                std::to_string(test.rows) + "x" + std::to_string(test.cols));
  }
  const std::size_t count = opt.limit == 0 ? train.count : std::min(opt.limit, train.count);

  // Pixel statistics of the images trained on, for input scaling.
  double sum = 0.0, sum_sq = 0.0;
  const std::size_t pixels = count * train.rows * train.cols;
  for (std::size_t i = 0; i < pixels; ++i) {
    const double p = train.pixels[i] / 255.0;
    sum += p;
    sum_sq += p * p;
  }
  const double mean = sum / static_cast<double>(pixels);
  const double stddev = std::sqrt(std::max(sum_sq / static_cast<double>(pixels) - mean * mean, 1e-12));
  Inputs train_in(train, mean, stddev, opt.dtype), test_in(test, mean, stddev, opt.dtype);

  Tape tape;
  const Net net(tape, opt.channels, train.rows, train.cols, opt.seed, opt.dtype);
  std::mt19937_64 shuffle(opt.seed);
  std::vector<std::size_t> order(count);
  std::iota(order.begin(), order.end(), std::size_t{0});

  fs::create_directories(opt.out);
  const fs::path csv = opt.out / "metrics.csv";
  std::ofstream metrics(csv);
  metrics << "epoch,train_loss,train_acc,test_loss,test_acc,seconds\n";
  const bool terminal = isatty(STDOUT_FILENO) != 0;
  std::printf(
      "Fashion-MNIST: %zu training images, %zu test images; conv 3x3x%zu, batch %zu, "
      "Adam lr %g x %g per epoch, %s\n",
      count, test.count, opt.channels, opt.batch, opt.lr, opt.decay, std::string(dtype_name(opt.dtype)).c_str());
  std::fflush(stdout);

  const ops::StepLr schedule(opt.lr, 1, opt.decay);  // lr * decay^(epoch - 1)
  double best = 0.0;
  std::vector<EpochTimes> times;
  const auto started = Clock::now();
  for (std::size_t epoch = 1; epoch <= opt.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    const double cpu_start = process_cpu_seconds();
    // Each epoch starts a fresh Adam at the schedule's rate, restarting the moments at the
    // boundary, as in the runs the README reports (adam.set_lr(schedule(epoch - 1)) on one
    // Adam would keep them).
    ops::Adam adam(net.params(), {.lr = schedule(epoch - 1)});
    std::shuffle(order.begin(), order.end(), shuffle);
    double loss_sum = 0.0;
    std::size_t correct = 0, done = 0;
    auto last_draw = epoch_start;
    for (std::size_t first = 0; first < count; first += opt.batch) {
      const auto ids = std::span(order).subspan(first, std::min(opt.batch, count - first));
      tape.reset();
      TensorVar logits = net.logits(train_in.batch(tape, ids));
      TensorVar loss = ops::softmax_cross_entropy(logits, train_in.labels);
      tape.backward(loss);
      adam.step();
      loss_sum += loss.item() * static_cast<double>(ids.size());
      correct += count_correct(logits, train_in.labels);
      done += ids.size();
      const auto now = Clock::now();
      if (terminal && (now - last_draw > std::chrono::milliseconds(100) || done == count)) {
        last_draw = now;
        const double d = static_cast<double>(done);
        draw_progress(epoch, opt.epochs, done, count, {loss_sum / d, 100.0 * static_cast<double>(correct) / d},
                      std::chrono::duration<double>(now - epoch_start).count());
      }
    }
    const double train_seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    const double train_cpu = process_cpu_seconds() - cpu_start;
    const Metrics tested = evaluate(tape, net, test_in);
    const double seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    const Metrics trained{loss_sum / static_cast<double>(count), 100.0 * static_cast<double>(correct) / count};
    best = std::max(best, tested.accuracy);
    if (terminal) std::printf("\r\033[K");
    std::printf(
        "epoch %zu/%zu  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  %.1f s (%.0f img/s; "
        "training %.2f s wall, %.2f s CPU)\n",
        epoch, opt.epochs, trained.loss, trained.accuracy, tested.loss, tested.accuracy, seconds,
        static_cast<double>(count) / train_seconds, train_seconds, train_cpu);
    std::fflush(stdout);
    metrics << epoch << ',' << trained.loss << ',' << trained.accuracy << ',' << tested.loss << ',' << tested.accuracy
            << ',' << seconds << '\n';
    times.push_back({train_seconds, train_cpu, trained.loss});
  }
  metrics.close();
  if (!opt.bench_json.empty()) write_bench_json(opt.bench_json, opt.dtype, (count + opt.batch - 1) / opt.batch, times);
  std::printf("done in %.1f s, best test accuracy %.2f%%; metrics: %s\n",
              std::chrono::duration<double>(Clock::now() - started).count(), best, csv.c_str());
  plot(opt.out, opt.epochs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"Trains conv -> relu -> max-pool -> dense on Fashion-MNIST with gradpath."};
  app.add_option("--data", opt.data, "directory of the gzip IDX files")->capture_default_str();
  app.add_option("--epochs", opt.epochs, "passes over the training images")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--out", opt.out, "directory for metrics.csv, metrics.gp and metrics.png")->capture_default_str();
  app.add_option("--limit", opt.limit, "train on the first N images only (0: all)")->capture_default_str();
  app.add_option("--channels", opt.channels, "convolution output channels")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--batch", opt.batch, "images per training step")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--lr", opt.lr, "Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--decay", opt.decay, "learning-rate factor from one epoch to the next")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", opt.seed, "seed for initialisation and shuffling")->capture_default_str();
  app.add_option("--threads", opt.threads, "gradpath's threads (0: one per hardware thread)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--bench-json", opt.bench_json,
                 "also write each epoch's training-loop CPU and wall time to this file (bench/run_peers.sh's E1)");
  std::string dtype = "float32";
  app.add_option("--dtype", dtype, "element type of values and grads: float32, or double (float64)")
      ->capture_default_str()
      ->check(CLI::IsMember({"float32", "double", "float64"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a success; every bad option exits 2 (CLI11's own codes run past 100).
    return app.exit(e) == 0 ? 0 : 2;
  }
  opt.dtype = dtype == "float32" ? DType::f32 : DType::f64;
  if (opt.threads > 0) set_num_threads(opt.threads);
  try {
    return run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fashion_mnist: %s\n", e.what());
    return 1;
  }
}
