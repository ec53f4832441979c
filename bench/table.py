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
    both_sides: bool = False      # show the row only when the peer ran it too


CASES = [
    Case("S1 conv 64x64 as scalar ops", "ns/op", "S1/gradpath", "S1/adolc", "ADOL-C",
         "<= 4 ns/op and <= 0.25x ADOL-C", lambda g, r: g <= 4.0 and r is not None and r <= 0.25),
    Case("S1 tape memory", "B/op", "S1/gradpath", None, "",
         "<= 40 B/op", lambda g, r: g <= 40.0, value="bytes_per_op"),
    Case("S2 seed network step", "us", "S2/gradpath", "S2/torch", "PyTorch",
         "<= 0.5 us; ratio to PyTorch", lambda g, r: g <= 0.5, value="time"),
]
# The tensor cases, per element type; a row is shown only when both sides ran it.
DTYPES = ["float64", "float32"]
within_07 = lambda g, r: r is not None and r <= 0.7
for dtype in DTYPES:
    CASES.append(Case(f"F1 fused conv2d 64x64 {dtype}", "us", f"F1/gradpath/{dtype}", f"F1/torch/{dtype}", "PyTorch",
                      "<= 0.7x PyTorch", within_07, value="time", both_sides=True))
    for threads in (1, 2):
        CASES.append(Case(f"T1 training step {dtype}, {threads} thread{'s' if threads > 1 else ''}", "us",
                          f"T1/gradpath/{dtype}/threads:{threads}/real_time", f"T1/torch/{dtype}/threads:{threads}",
                          "PyTorch", "<= 0.7x PyTorch", within_07, value="time", both_sides=True))
    CASES.append(Case(f"T1 2 threads against 1 {dtype}", "us", f"T1/gradpath/{dtype}/threads:2/real_time",
                      f"T1/gradpath/{dtype}/threads:1/real_time", "gradpath 1 thread", "<= 1x (never slower)",
                      lambda g, r: r is not None and r <= 1.0, value="time", both_sides=True))

TO_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


def load(folder):
    """Every per-repetition run in the folder's JSON files, by benchmark name, and the
    OpenBLAS cores the runs reported (file name prefix -> cores)."""
    runs, cores = {}, {}
    for path in sorted(glob.glob(f"{folder}/*.json")):
        with open(path) as f:
            data = json.load(f)
        side = path.rsplit("/", 1)[-1].split("_")[0]
        if "openblas_core" in data.get("context", {}):
            cores.setdefault(side, set()).add(data["context"]["openblas_core"])
        for run in data["benchmarks"]:
            if run.get("run_type", "iteration") == "iteration":
                runs.setdefault(run["name"], []).append(run)
    return runs, cores


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
    runs, cores = load(folder)
    header = ["case", "gradpath median (min-max)", "peer median (min-max)", "ratio", "target", "met?"]
    rows = []
    for case in CASES:
        g = samples(runs, case.gradpath, case.value)
        p = samples(runs, case.peer, case.value) if case.peer else []
        if case.both_sides and not (g and p):
            continue
        g_med = statistics.median(g) if g else None
        ratio = g_med / statistics.median(p) if g and p else None
        met = "?" if g_med is None else ("yes" if case.met(g_med, ratio) else "no")
        peer = f"{case.peer_label}: {summary(p, case.unit)}" if case.peer else "-"
        rows.append([case.name, summary(g, case.unit), peer, f"{ratio:.3g}x" if ratio else "-", case.target, met])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths]] + rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"({len(samples(runs, CASES[0].gradpath, 'time'))} samples of each gradpath case; ratio = gradpath / peer;"
          f" OpenBLAS core: " + ", ".join(f"{side} {'/'.join(sorted(c))}" for side, c in sorted(cores.items())) + ")")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/bench/results")
