#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmarks gradpath against its peers on a Debian 12 machine and prints one table
# (bench/table.py); bench/README.md explains the cases, the load rule and why CPU time.
#
#   ROUNDS=n        rounds (default 5); every case runs once per round on each side
#   CASES="..."     the cases to run, of S1 S2 F1 F2 T1 T2 E1 (default: all of them)
#   BENCH_ARCH      native: -march=native; noavx512: -march=native -mno-avx512f (and the
#                   peers' run-time dispatch kept to AVX2); empty: the compiler's default.
#                   The flags go to the whole build (CMAKE_CXX_FLAGS), the gradpath
#                   libraries as well as gradpath_bench; Release adds -O3 -DNDEBUG.
#   MAX_LOAD        a round whose 1-minute load, before or after it, exceeds this is
#                   flagged and left out of the medians (default: cores - 0.5)
#   ADEPT_DIR, CODIPACK_DIR   the peers' source trees, outside this repository
#   RESULTS=dir     where the JSON goes (default build/bench/<arch>/results)
#   SKIP_INSTALL=1  no apt-get (run as root otherwise, to install the Debian packages,
#                   Fashion-MNIST's data set among them)
#   OPENBLAS_CORETYPE   see below
#
# Each round runs case after case (S1, S2, F1, F2, T1, T2, E1); within a case gradpath and
# the peer run back to back, the order swapped every other round, so that a change in the
# machine's load hits both sides of a ratio alike. ADOL-C, Adept-2 and CoDiPack run inside
# gradpath_bench, interleaved with gradpath by Google Benchmark; PyTorch runs as the next
# (or previous) process. E1 is one training epoch of examples/fashion_mnist.cpp against
# bench/torch_epoch.py, one process per side and thread count; without Debian's
# dataset-fashion-mnist it is skipped, and the table says so.
#
# The OpenBLAS setting (bench/README.md): when OPENBLAS_CORETYPE is unset and the CPU has
# AVX2 and FMA, both sides run with OPENBLAS_CORETYPE=Haswell, so a CPU that OpenBLAS
# 0.3.21 does not recognise still gets its AVX2 kernels; OPENBLAS_CORETYPE=detect leaves
# the choice to OpenBLAS. Both sides always run under the same setting.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="$(for v in ROUNDS CASES BENCH_ARCH MAX_LOAD ADEPT_DIR CODIPACK_DIR RESULTS SKIP_INSTALL OPENBLAS_CORETYPE; do
  if [ -n "${!v:-}" ]; then printf '%s=%q ' "$v" "${!v}"; fi
done)bash bench/run_peers.sh"
rounds=${ROUNDS:-5}
cases=${CASES:-S1 S2 F1 F2 T1 T2 E1}
for case in $cases; do
  case "$case" in
    S1 | S2 | F1 | F2 | T1 | T2 | E1) ;;
    *) echo "CASES: unknown case '$case' (S1 S2 F1 F2 T1 T2 E1)" >&2 && exit 2 ;;
  esac
done
cores=$(nproc)
max_load=${MAX_LOAD:-$(awk -v c="$cores" 'BEGIN { print c - 0.5 }')}
arch=${BENCH_ARCH:-}
case "$arch" in
  native) arch_flags="-march=native" ;;
  noavx512)
    arch_flags="-march=native -mno-avx512f"
    # PyTorch picks its kernels at run time; without these its oneDNN convolutions would
    # still use AVX-512 while gradpath may not.
    export ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
    ;;
  "") arch_flags="" ;;
  *) echo "BENCH_ARCH must be native, noavx512 or empty, not '$arch'" >&2 && exit 2 ;;
esac
if [ "${OPENBLAS_CORETYPE:-}" = detect ]; then
  unset OPENBLAS_CORETYPE
elif [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=Haswell
fi
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset: OpenBLAS detects the CPU)}" >&2
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" = 0 ] && [ -z "${SKIP_INSTALL:-}" ]; then
  apt-get update
  apt-get install -y --no-install-recommends build-essential cmake ninja-build git librange-v3-dev \
    libboost-graph-dev libopenblas-dev nlohmann-json3-dev libcli11-dev \
    libbenchmark-dev libadolc-dev python3-torch zlib1g-dev dataset-fashion-mnist
fi

build=build/bench/${arch:-default}
results=$(realpath -m "${RESULTS:-$build/results}")
rm -rf "$results" && mkdir -p "$results"
fashion_mnist_data=/usr/share/datasets/fashion-mnist
if [[ " $cases " == *" E1 "* ]] && ! [ -f "$fashion_mnist_data/train-images-idx3-ubyte.gz" ]; then
  echo "E1 skipped: no Fashion-MNIST data in $fashion_mnist_data (apt-get install dataset-fashion-mnist)" |
    tee "$results/skipped_E1.txt" >&2
  cases=${cases//E1/}
fi
# E1's gradpath side is the example, built with the same flags as gradpath_bench.
targets=() examples=OFF
if [[ " $cases " == *" E1 "* ]]; then targets+=(fashion_mnist) examples=ON; fi
if [[ ${cases//E1/} =~ [^[:space:]] ]]; then targets+=(gradpath_bench); fi
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADPATH_BUILD_TESTS=OFF \
  -DGRADPATH_BUILD_EXAMPLES=$examples -DGRADPATH_BUILD_BENCH=ON -DCMAKE_CXX_FLAGS="$arch_flags" \
  -DADEPT_DIR="${ADEPT_DIR:-}" -DCODIPACK_DIR="${CODIPACK_DIR:-}" "${launcher[@]}"
[ ${#targets[@]} = 0 ] || cmake --build "$build" -j2 --target "${targets[@]}"
bench_bin=$(realpath -m "$build/bench/gradpath_bench")
example_bin=$(realpath -m "$build/examples/fashion_mnist")

torch=yes
/usr/bin/python3 -c 'import torch' 2>/dev/null || torch=
# PyTorch's OpenMP threads spin after each parallel region by default; on a shared
# machine they would spin against gradpath's threads (and the other users'), so PyTorch
# runs with passive waiting.
export OMP_WAIT_POLICY=PASSIVE
[ -n "$torch" ] && /usr/bin/python3 bench/torch_common.py --kernels "$results/kernels_torch.json"
META_COMMAND="$command_line" META_BENCH_ARCH="${arch:-(default)}" META_ARCH_FLAGS="$arch_flags" \
  META_CORES="$cores" META_MAX_LOAD="$max_load" META_CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" \
  META_GIT="$(git describe --always --dirty)" META_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" \
  /usr/bin/python3 -c 'import json, os, sys
json.dump({k[5:].lower(): v for k, v in os.environ.items() if k.startswith("META_")}, open(sys.argv[1], "w"), indent=1)' \
  "$results/meta.json"

gradpath() {  # case round; in the results folder, where ADOL-C spills its tapes (ADOLC-*.tap)
  if [ "$1" = E1 ]; then
    for threads in 1 2; do
      "$example_bin" --epochs 1 --threads "$threads" --data "$fashion_mnist_data" --out "$results/fashion_mnist" \
        --bench-json "$results/r$2_gradpath_E1.threads$threads.json" | grep '^epoch' >&2
    done
    return
  fi
  (cd "$results" && "$bench_bin" --benchmark_filter="^$1/" --benchmark_repetitions=3 --benchmark_min_time=0.3 \
    --benchmark_enable_random_interleaving=true --benchmark_out="r$2_gradpath_$1.json" \
    --benchmark_out_format=json >/dev/null)
}
peer() {  # case round; S1's peers ran inside gradpath_bench
  [ -n "$torch" ] || return 0
  case "$1" in
    S1) ;;
    S2) /usr/bin/python3 bench/torch_seed.py --seconds 0.3 --out "$results/r$2_torch_$1.json" ;;
    E1)
      for threads in 1 2; do
        /usr/bin/python3 bench/torch_epoch.py --threads "$threads" --data "$fashion_mnist_data" \
          --out "$results/r$2_torch_E1.threads$threads.json" >&2
      done
      ;;
    *) /usr/bin/python3 bench/torch_tensor.py --case "$1" --seconds 0.3 --out "$results/r$2_torch_$1.json" ;;
  esac
}
for round in $(seq "$rounds"); do
  before=$(cut -d' ' -f1-3 /proc/loadavg)
  for case in $cases; do
    echo "round $round of $rounds: $case (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    if [ $((round % 2)) = 1 ]; then
      gradpath "$case" "$round" && peer "$case" "$round"
    else
      peer "$case" "$round" && gradpath "$case" "$round"
    fi
  done
  after=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "{\"round\": $round, \"before\": [${before// /, }], \"after\": [${after// /, }]}" >"$results/load_$round.json"
  if awk -v b="${before%% *}" -v a="${after%% *}" -v m="$max_load" 'BEGIN { exit !(b > m || a > m) }'; then
    echo "round $round was under load (1-minute load $before before, $after after; MAX_LOAD $max_load):" \
      "flagged, left out of the medians" >&2
  fi
done
/usr/bin/python3 bench/table.py "$results"
