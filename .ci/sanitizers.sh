#!/usr/bin/env bash
# CI: the whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer (the
# debug-asan preset), then the threaded tests under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update && apt-get install -y --no-install-recommends build-essential cmake ninja-build git catch2 \
  librange-v3-dev libboost-graph-dev libopenblas-dev nlohmann-json3-dev libcli11-dev zlib1g-dev graphviz
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The build dirs can be moved (ASAN_BUILD_DIR, TSAN_BUILD_DIR) to keep a local run apart.
asan_dir=${ASAN_BUILD_DIR:-build/debug-asan}
tsan_dir=${TSAN_BUILD_DIR:-build/tsan}

echo "== ASan + UBSan: every test"
cmake --preset debug-asan -B "$asan_dir" -DGRADPATH_BUILD_BENCH=OFF
cmake --build "$asan_dir" -j2
# checker_corpus_test runs the command over 3,600 formulas (5 minutes unoptimised under
# ASan); the same checker code runs sanitized through checker_branches_test,
# checker_generated_test and notation_test, and the corpus runs in the release suite.
ctest --test-dir "$asan_dir" --output-on-failure -j2 -E '^checker_corpus_test$'


echo "== TSan: the tests that run threads"
# OpenBLAS is not instrumented: with its own thread pool TSan would report races inside
# it that it cannot see the synchronisation of, so GEMM runs on the calling thread.
export OPENBLAS_NUM_THREADS=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
cmake -S . -B "$tsan_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRADPATH_WERROR=ON \
  -DGRADPATH_BUILD_EXAMPLES=OFF -DGRADPATH_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread"
cmake --build "$tsan_dir" -j2 --target threads_test tape_test num_threads_test
"$tsan_dir"/tests/threads_test
"$tsan_dir"/tests/num_threads_test
"$tsan_dir"/tests/tape_test "[threads]"
echo "sanitizers: ASan + UBSan and TSan runs clean"
