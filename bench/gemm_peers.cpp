// SPDX-License-Identifier: MIT
// Single-thread float GEMM of Debian's three candidate libraries on the shapes conv2d
// runs in F2 and T2 (per image: forward W x cols, dW = dY x colsᵀ, dcols = Wᵀ x dY):
// OpenBLAS (what gradpath links), BLIS and oneDNN's dnnl_sgemm, each loaded with dlopen
// so one program times all three, round by round in alternating order, in CPU time.
// Not part of the build (it needs libblis-dev and libdnnl-dev); bench/README.md,
// "Another GEMM?", has the command. A missing library is reported and skipped.
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

namespace {

// cblas_sgemm(order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
using Cblas = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
// dnnl_sgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), row-major
using Dnnl = int (*)(char, char, long, long, long, float, const float*, long, const float*, long, float, float*, long);
constexpr int row_major = 101, no_trans = 111, trans = 112;

struct Shape {
  const char* name;
  bool ta, tb;
  int m, n, k;
};
constexpr Shape shapes[] = {
    {"F2 forward W x cols", false, false, 32, 784, 144}, {"F2 dW = dY x cols^T", false, true, 32, 144, 784},
    {"F2 dcols = W^T x dY", true, false, 144, 784, 32},  {"T2 conv2 forward", false, false, 32, 196, 144},
    {"T2 conv2 dW", false, true, 32, 144, 196},          {"T2 conv2 dcols", true, false, 144, 196, 32},
};

struct Library {
  std::string name;
  Cblas cblas = nullptr;
  Dnnl dnnl = nullptr;
  void gemm(const Shape& s, const float* a, const float* b, float* c) const {
    const int lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    if (cblas != nullptr) {
      cblas(row_major, s.ta ? trans : no_trans, s.tb ? trans : no_trans, s.m, s.n, s.k, 1.0f, a, lda, b, ldb, 0.0f, c,
            s.n);
    } else {
      dnnl(s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', s.m, s.n, s.k, 1.0f, a, lda, b, ldb, 0.0f, c, s.n);
    }
  }
};

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

}  // namespace

int main() {
  std::vector<Library> libraries;
  const auto open = [&](const char* name, const char* file, const char* symbol, const char* set_threads) {
    void* handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      std::printf("%s: not found (%s), skipped\n", name, file);
      return;
    }
    if (set_threads != nullptr) {
      if (auto* one_thread = reinterpret_cast<void (*)(int)>(dlsym(handle, set_threads))) one_thread(1);
    }
    Library l{name};
    if (std::string(symbol) == "dnnl_sgemm") {
      l.dnnl = reinterpret_cast<Dnnl>(dlsym(handle, symbol));
    } else {
      l.cblas = reinterpret_cast<Cblas>(dlsym(handle, symbol));
    }
    if (l.cblas == nullptr && l.dnnl == nullptr) {
      std::printf("%s: no %s in %s, skipped\n", name, symbol, file);
      return;
    }
    libraries.push_back(l);
  };
  // OMP_NUM_THREADS=1 keeps oneDNN (OpenMP) on one thread; BLIS reads BLIS_NUM_THREADS.
  open("OpenBLAS", "libopenblas.so.0", "cblas_sgemm", "openblas_set_num_threads");
  open("BLIS", "libblis.so.4", "cblas_sgemm", "bli_thread_set_num_threads");
  open("oneDNN", "libdnnl.so.2", "dnnl_sgemm", nullptr);

  constexpr int rounds = 5, calls = 400;
  for (const Shape& s : shapes) {
    std::vector<float> a(static_cast<std::size_t>(s.m) * s.k, 0.5f), b(static_cast<std::size_t>(s.k) * s.n, 0.25f),
        c(static_cast<std::size_t>(s.m) * s.n);
    std::vector<std::vector<double>> seconds(libraries.size());
    for (int round = 0; round < rounds; ++round) {
      for (std::size_t i = 0; i < libraries.size(); ++i) {
        // Alternate the order round by round, so no library always runs first.
        const Library& l = libraries[round % 2 == 0 ? i : libraries.size() - 1 - i];
        auto& times = seconds[round % 2 == 0 ? i : libraries.size() - 1 - i];
        for (int w = 0; w < 20; ++w) l.gemm(s, a.data(), b.data(), c.data());
        const double start = cpu_seconds();
        for (int call = 0; call < calls; ++call) l.gemm(s, a.data(), b.data(), c.data());
        times.push_back((cpu_seconds() - start) / calls);
      }
    }
    std::printf("%-22s m %3d n %3d k %3d:", s.name, s.m, s.n, s.k);
    for (std::size_t i = 0; i < libraries.size(); ++i) {
      std::vector<double>& t = seconds[i];
      std::sort(t.begin(), t.end());
      const double median = t[t.size() / 2];
      std::printf("  %s %.1f us (%.0f GFLOP/s)", libraries[i].name.c_str(), median * 1e6,
                  2.0 * s.m * s.n * s.k / median * 1e-9);
    }
    std::printf("\n");
  }
}
