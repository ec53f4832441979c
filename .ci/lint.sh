#!/usr/bin/env bash
# CI: clang-format (the repo's .clang-format, nothing rewritten) and clang-tidy (the
# checks in .clang-tidy) over every gradpath source; fails if either finds anything.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update && apt-get install -y --no-install-recommends build-essential cmake ninja-build git catch2 \
  librange-v3-dev libboost-graph-dev libopenblas-dev nlohmann-json3-dev libcli11-dev clang-tidy clang-format
dirs=(autodiff ops graph check cli tests examples bench fuzz include)
status=0

echo "== clang-format"
mapfile -t sources < <(git ls-files -- "${dirs[@]/%//*.cpp}" "${dirs[@]/%//*.hpp}")
unformatted=()
for f in "${sources[@]}"; do
  clang-format --dry-run --Werror "$f" > /dev/null 2>&1 || unformatted+=("$f")
done
if ((${#unformatted[@]})); then
  printf '  %s\n' "${unformatted[@]}"
  echo "clang-format: ${#unformatted[@]} of ${#sources[@]} files would change (clang-format -i to fix)"
  status=1
else
  echo "clang-format: ${#sources[@]} files formatted"
fi

echo "== clang-tidy"
# Configuring is enough: compile_commands.json and the generated sources come from cmake.
lint_dir=${LINT_BUILD_DIR:-build/lint}
cmake -S . -B "$lint_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADPATH_BUILD_BENCH=OFF > /dev/null
# Only the repo's sources, not what cmake generates into the build dir. The compile
# commands are g++'s, so clang is told not to mind g++-only warning flags.
if run-clang-tidy -p "$lint_dir" -j "${LINT_JOBS:-2}" -quiet -extra-arg=-Wno-unknown-warning-option \
    "$(pwd)/($(IFS='|'; echo "${dirs[*]}"))/" > "$lint_dir/clang-tidy.log" 2>&1; then
  echo "clang-tidy: no findings"
else
  grep -E 'warning:|error:' "$lint_dir/clang-tidy.log" | sort -u
  echo "clang-tidy: findings above (full log: $lint_dir/clang-tidy.log)"
  status=1
fi
exit $status
