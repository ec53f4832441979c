#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmarks gradpath against its peers on a Debian 12 machine (run as root): installs the
# peers from Debian, builds the benchmarks in Release in build/bench, runs gradpath and
# the peers alternately ROUNDS times and prints one table (bench/table.py).
# ADOL-C runs inside gradpath_bench, interleaved with gradpath; PyTorch between rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
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
results=build/bench/results
rm -rf "$results" && mkdir -p "$results"
for round in $(seq "$rounds"); do
  echo "round $round of $rounds" >&2
  build/bench/bench/gradpath_bench --benchmark_repetitions=3 --benchmark_enable_random_interleaving=true \
    --benchmark_out="$results/gradpath_$round.json" --benchmark_out_format=json >/dev/null
  /usr/bin/python3 bench/torch_seed.py --out "$results/torch_$round.json"
done
/usr/bin/python3 bench/table.py "$results"
