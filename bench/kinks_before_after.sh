#!/bin/bash
# Before/after of one change on the tensor cases, as in bench/README.md ("ReLU backward and
# max-pool forward"): OLD and NEW are two builds of gradpath_bench, run alternately round by
# round (ROUNDS, 7 by default), each printing side, case, real and CPU time per iteration;
# the load is printed before every run. Medians are taken over the CPU times.
set -euo pipefail
OLD=${OLD:?path of the old gradpath_bench}
NEW=${NEW:?path of the new gradpath_bench}
F=${FILTER:-'^(T1/gradpath/float(32|64)/threads:1/process_time/real_time|K1/gradpath/float(32|64)/process_time)$'}
for r in $(seq "${ROUNDS:-7}"); do
  for side in old new; do
    bin=$OLD; [ $side = new ] && bin=$NEW
    echo "round $r $side load $(cut -d' ' -f1-3 /proc/loadavg)"
    OPENBLAS_CORETYPE=Haswell $bin --benchmark_filter="$F" --benchmark_repetitions=1 --benchmark_min_time=0.5 --benchmark_format=csv 2>/dev/null | grep -E '^"(T1|K1)' | cut -d, -f1,3,4,5 | sed "s/^/$side,/"
  done
done
