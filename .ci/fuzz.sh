#!/usr/bin/env bash
# CI: builds the libFuzzer harnesses in fuzz/ with clang-14 (ASan + UBSan) and runs each
# from its seed corpus for FUZZ_RUNS inputs (default 500000, seed 1, so a run is
# repeatable), at most FUZZ_SECONDS (default 60: the four harnesses add at most 4
# minutes, keeping CI well under its limit; longer runs by hand); any crash, leak, timeout, uncaught exception or
# sanitizer report fails the job and leaves the input in build/fuzz/artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update && apt-get install -y --no-install-recommends build-essential cmake ninja-build git librange-v3-dev \
  libboost-graph-dev libopenblas-dev nlohmann-json3-dev libcli11-dev clang-14 libclang-rt-14-dev
seconds=${FUZZ_SECONDS:-60}
runs=${FUZZ_RUNS:-500000}
export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

cmake -S fuzz -B build/fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++-14
cmake --build build/fuzz -j2
mkdir -p build/fuzz/artifacts
for harness in formula check model dot; do
  # Node names are short; formulas and model files get room for a whole file.
  max_len=4096
  [[ $harness == dot ]] && max_len=256
  # The model format's keys, op names and edge integers, so mutations reach every option.
  dict=()
  [[ $harness == model ]] && dict=(-dict=fuzz/model.dict)
  # New inputs go to a scratch copy: the committed corpus only changes by hand.
  work=build/fuzz/corpus-$harness
  rm -rf "$work" && mkdir -p "$work"
  echo "== ${harness}_fuzz: ${runs} inputs"
  log=build/fuzz/$harness.log
  if ! build/fuzz/${harness}_fuzz "$work" fuzz/corpus/$harness -seed=1 -runs="$runs" -max_total_time="$seconds" -max_len=$max_len -timeout=10 "${dict[@]}" \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/$harness- > "$log" 2>&1; then
    tail -n 60 "$log"
    echo "${harness}_fuzz FAILED: the input is in build/fuzz/artifacts"
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^Done' "$log"
done
echo "fuzz: every harness ran ${runs} inputs without a finding"
