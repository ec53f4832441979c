# SPDX-License-Identifier: MIT
# Reads the Google Benchmark style JSON files of one run (gradpath_bench and the peers'
# scripts) and prints one table: case, gradpath and peer medians (min-max), ratio, target.
# A new case is one more Case(...) line in CASES.
import glob
import json
import statistics
import sys
from dataclasses import dataclass
from typing import Callable, Optional


@dataclass
class Case:
    name: str
    unit: str
    gradpath: str                 # benchmark name of gradpath's side
    peer: Optional[str]           # benchmark name of the peer's side, or None
    peer_label: str
    target: str                   # what the issue asks, in words
    met: Callable[[float, Optional[float]], bool]  # (gradpath median, ratio) -> met?
    value: str = "time_per_op"    # "time_per_op", "time" (us per iteration) or a counter name


CASES = [
    Case("S1 conv 64x64 as scalar ops", "ns/op", "S1/gradpath", "S1/adolc", "ADOL-C",
         "<= 4 ns/op and <= 0.25x ADOL-C", lambda g, r: g <= 4.0 and r is not None and r <= 0.25),
    Case("S1 tape memory", "B/op", "S1/gradpath", None, "",
         "<= 40 B/op", lambda g, r: g <= 40.0, value="bytes_per_op"),
    Case("S2 seed network step", "us", "S2/gradpath", "S2/torch", "PyTorch",
         "<= 0.5 us; ratio to PyTorch", lambda g, r: g <= 0.5, value="time"),
]

TO_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


def load(folder):
    """Every per-repetition run in the folder's JSON files, by benchmark name."""
    runs = {}
    for path in sorted(glob.glob(f"{folder}/*.json")):
        with open(path) as f:
            for run in json.load(f)["benchmarks"]:
                if run.get("run_type", "iteration") == "iteration":
                    runs.setdefault(run["name"], []).append(run)
    return runs


def samples(runs, name, value):
    out = []
    for run in runs.get(name, []):
        us = run["real_time"] * TO_US[run["time_unit"]]
        if value == "time":
            out.append(us)
        elif value == "time_per_op":
            out.append(us * 1e3 / run["ops"])
        else:
            out.append(run[value])
    return out


def summary(xs, unit):
    if not xs:
        return "-"
    return f"{statistics.median(xs):.3g} {unit} ({min(xs):.3g}-{max(xs):.3g})"


def main(folder):
    runs = load(folder)
    header = ["case", "gradpath median (min-max)", "peer median (min-max)", "ratio", "target", "met?"]
    rows = []
    for case in CASES:
        g = samples(runs, case.gradpath, case.value)
        p = samples(runs, case.peer, case.value) if case.peer else []
        g_med = statistics.median(g) if g else None
        ratio = g_med / statistics.median(p) if g and p else None
        met = "?" if g_med is None else ("yes" if case.met(g_med, ratio) else "no")
        peer = f"{case.peer_label}: {summary(p, case.unit)}" if case.peer else "-"
        rows.append([case.name, summary(g, case.unit), peer, f"{ratio:.3g}x" if ratio else "-", case.target, met])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths]] + rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"({len(samples(runs, CASES[0].gradpath, 'time'))} samples of each gradpath case; ratio = gradpath / peer)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/bench/results")
