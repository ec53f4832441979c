#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmarks gradpath against its peers on a Debian 12 machine (run as root): installs the
# peers from Debian, builds the benchmarks in Release in build/bench, runs gradpath and
# the peers alternately ROUNDS times and prints one table (bench/table.py).
# ADOL-C runs inside gradpath_bench, interleaved with gradpath; PyTorch between rounds.
# The OpenBLAS setting (bench/README.md): when OPENBLAS_CORETYPE is unset and the CPU has
# AVX2 and FMA, both sides run with OPENBLAS_CORETYPE=Haswell, so a CPU that OpenBLAS
# 0.3.21 does not recognise still gets its AVX2 kernels; OPENBLAS_CORETYPE=detect leaves
# the choice to OpenBLAS. Both sides always run under the same setting.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
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
    libbenchmark-dev libadolc-dev python3-torch
fi
cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADPATH_BUILD_TESTS=OFF \
  -DGRADPATH_BUILD_EXAMPLES=OFF -DGRADPATH_BUILD_BENCH=ON
cmake --build build/bench -j2 --target gradpath_bench
results=${RESULTS:-build/bench/results}
rm -rf "$results" && mkdir -p "$results"
for round in $(seq "$rounds"); do
  echo "round $round of $rounds" >&2
  build/bench/bench/gradpath_bench --benchmark_repetitions=3 --benchmark_enable_random_interleaving=true \
    --benchmark_out="$results/gradpath_$round.json" --benchmark_out_format=json >/dev/null
  /usr/bin/python3 bench/torch_seed.py --out "$results/torch_seed_$round.json"
  /usr/bin/python3 bench/torch_tensor.py --out "$results/torch_tensor_$round.json"
done
/usr/bin/python3 bench/table.py "$results"
