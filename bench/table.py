# SPDX-License-Identifier: MIT
# Reads the results folder of one bench/run_peers.sh run (r<round>_<side>_<case>.json in
# Google Benchmark's JSON format, load_<round>.json, meta.json, kernels_torch.json,
# skipped_<case>.txt for a case the script could not run) and
# prints one Markdown table: per case and peer, the CPU-time and wall-time medians of each
# side, the median and min-max of the per-round CPU-time ratios gradpath / peer, the
# target and whether it is met. Rounds under load (1-minute load above MAX_LOAD before or
# after the round) are listed and left out of every median; "met" is judged only from
# the CPU times of the rounds left in. A new case is one more Case(...) in CASES.
import glob
import json
import os
import re
import statistics
import sys
from dataclasses import dataclass
from typing import Callable, Optional

S1_SIDES = (32, 64, 128, 256, 512)  # bench/cases.hpp's s1_sides
PEERS = {  # peer -> (label, what to do when its rows are missing)
    "adolc": ("ADOL-C", "skipped (install libadolc-dev)"),
    "adept": ("Adept-2", "skipped (set ADEPT_DIR)"),
    "codipack": ("CoDiPack", "skipped (set CODIPACK_DIR)"),
    "torch": ("PyTorch", "skipped (install python3-torch)"),
}


@dataclass
class Case:
    name: str
    gradpath: str                 # run name of gradpath's side
    peer: str                     # run name of the peer's side
    per_op: bool = False          # ns per logical op (the "ops" counter) instead of us per iteration
    target: str = "-"             # what the issue asks, in words
    met: Optional[Callable[[float, float], bool]] = None  # (gradpath CPU median, CPU ratio median) -> met?

    @property
    def peer_key(self):
        return self.peer.split("/")[1]


def build_cases():
    # The targets: the scalar tape at most 0.8x Adept-2's CPU time, training and
    # convolution at most 0.7x PyTorch's.
    within_08_adept = ("<= 0.8x Adept-2", lambda g, r: r <= 0.8)
    within_07 = ("<= 0.7x PyTorch", lambda g, r: r <= 0.7)
    cases = []
    for side in S1_SIDES:
        for peer in ("adolc", "adept", "codipack"):
            target, met = within_08_adept if peer == "adept" else ("-", None)
            cases.append(Case(f"S1 {side}x{side}", f"S1/gradpath/side:{side}", f"S1/{peer}/side:{side}", True,
                              target, met))
    # The same outputs recorded with every product a node (muls and a sum, as conv2d_mac
    # records them) instead of one dot-product statement: the price of the finer graph.
    for side in S1_SIDES:
        cases.append(Case(f"S1 {side}x{side}, products as nodes", f"S1/gradpath-products/side:{side}",
                          f"S1/adept/side:{side}", True))
    cases.append(Case("S2 seed step", "S2/gradpath", "S2/torch"))
    cases.append(Case("S2 seed step", "S2/gradpath", "S2/adept", False, *within_08_adept))
    cases.append(Case("S2 seed step", "S2/gradpath", "S2/codipack"))
    cases.append(Case("S2 seed step, products as nodes", "S2/gradpath-products", "S2/adept"))
    for dtype in ("float64", "float32"):
        cases.append(Case(f"F1 conv2d 64x64 {dtype}", f"F1/gradpath/{dtype}", f"F1/torch/{dtype}", False, *within_07))
    for threads in (1, 2):
        cases.append(Case(f"F2 conv 32x16->32 28x28 float32, {threads}T", f"F2/gradpath/float32/threads:{threads}",
                          f"F2/torch/float32/threads:{threads}", False, *within_07))
    for dtype in ("float64", "float32"):
        for threads in (1, 2):
            cases.append(Case(f"T1 SGD step {dtype}, {threads}T", f"T1/gradpath/{dtype}/threads:{threads}",
                              f"T1/torch/{dtype}/threads:{threads}", False, *within_07))
    for dtype in ("float64", "float32"):
        for threads in (1, 2):
            cases.append(Case(f"T2 Adam step {dtype}, {threads}T", f"T2/gradpath/{dtype}/threads:{threads}",
                              f"T2/torch/{dtype}/threads:{threads}", False, *within_07))
    for threads in (1, 2):
        cases.append(Case(f"E1 Fashion-MNIST epoch float32, {threads}T", f"E1/gradpath/float32/threads:{threads}",
                          f"E1/torch/float32/threads:{threads}", False, *within_07))
    return cases


TO_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


def run_name(name):
    """Google Benchmark appends /process_time and /real_time to the name; the table does not."""
    return re.sub(r"(/process_time|/real_time)+$", "", name)


def load(folder):
    """(round -> run name -> [run]), the JSON contexts by side, and the load records."""
    runs, contexts = {}, {}
    for path in sorted(glob.glob(f"{folder}/r*_*_*.json")):
        round_, side, _ = os.path.basename(path)[1:].split("_", 2)
        with open(path) as f:
            data = json.load(f)
        contexts.setdefault(side, []).append(data.get("context", {}))
        for run in data["benchmarks"]:
            if run.get("run_type", "iteration") == "iteration":
                runs.setdefault(int(round_), {}).setdefault(run_name(run["name"]), []).append(run)
    loads = {}
    for path in glob.glob(f"{folder}/load_*.json"):
        with open(path) as f:
            record = json.load(f)
        loads[record["round"]] = record
    return runs, contexts, loads


def read_json(path):
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def value(run, key, per_op):
    us = run[key] * TO_US[run["time_unit"]]
    return us * 1e3 / run["ops"] if per_op else us


def fmt(x, unit):
    if unit == "us" and x >= 1e6:
        return f"{x / 1e6:.3g} s"
    return f"{x / 1e3:.3g} ms" if unit == "us" and x >= 1e3 else f"{x:.3g} {unit}"


def main(folder):
    runs, contexts, loads = load(folder)
    meta = read_json(f"{folder}/meta.json")
    max_load = float(meta.get("max_load", (os.cpu_count() or 1) - 0.5))
    rounds = sorted(runs)
    loaded = [r for r in rounds if r in loads and max(loads[r]["before"][0], loads[r]["after"][0]) > max_load]
    clean = [r for r in rounds if r not in loaded]

    print(f"Command: `{meta.get('command', '?')}` ({meta.get('date', '?')}, {meta.get('git', '?')},"
          f" {meta.get('cpu', '?').strip()}, {meta.get('cores', '?')} cores)\n")
    header = ["case", "peer", "gradpath CPU", "peer CPU", "gradpath wall", "peer wall",
              "CPU ratio gradpath/peer: median (min-max) of rounds", "target", "met?"]
    rows = []
    for case in build_cases():
        label, missing = PEERS[case.peer_key]
        has_peer = any(case.peer in runs[r] for r in rounds)
        has_gradpath = any(case.gradpath in runs[r] for r in rounds)
        if not has_gradpath:
            skipped = f"{folder}/skipped_{case.gradpath.split('/')[0]}.txt"
            if os.path.exists(skipped):
                with open(skipped) as f:
                    rows.append([case.name, label, f.read().strip()] + ["-"] * 4 + [case.target, "-"])
            continue
        unit = "ns/op" if case.per_op else "us"
        use = clean or rounds  # with every round under load, the times are shown but not compared

        def pooled(name, key):
            xs = [value(run, key, case.per_op) for r in use for run in runs[r].get(name, [])]
            return fmt(statistics.median(xs), unit) if xs else "-"

        g_cpu_all = [value(run, "cpu_time", case.per_op) for r in use for run in runs[r].get(case.gradpath, [])]
        row = [case.name, label, pooled(case.gradpath, "cpu_time"), "", pooled(case.gradpath, "real_time"), "", "-",
               case.target, "-"]
        if not has_peer:
            row[3] = row[5] = missing
        else:
            row[3], row[5] = pooled(case.peer, "cpu_time"), pooled(case.peer, "real_time")
            if not clean:
                row[6] = f"none: all {len(rounds)} rounds under load"
            else:
                ratios = []
                for r in clean:
                    g = [value(run, "cpu_time", case.per_op) for run in runs[r].get(case.gradpath, [])]
                    p = [value(run, "cpu_time", case.per_op) for run in runs[r].get(case.peer, [])]
                    if g and p:
                        ratios.append(statistics.median(g) / statistics.median(p))
                if ratios:
                    ratio = statistics.median(ratios)
                    row[6] = f"{ratio:.3g}x ({min(ratios):.3g}-{max(ratios):.3g}), {len(ratios)} rounds"
                    if case.met:
                        row[8] = "yes" if case.met(statistics.median(g_cpu_all), ratio) else "no"
        rows.append(row)
    print_table(header, rows)

    # Tape memory does not depend on the load: the last round's value of each side, when S1
    # ran (CASES may leave it out).
    s1_ran = any(name.startswith("S1/") for r in rounds for name in runs[r])
    memory_rows = []
    for side in S1_SIDES if s1_ran else ():
        row = [f"S1 {side}x{side}"]
        for key in ("gradpath", "gradpath-products", "adept", "codipack"):
            values = [run["bytes_per_op"] for r in rounds for run in runs[r].get(f"S1/{key}/side:{side}", [])
                      if "bytes_per_op" in run]
            row.append(f"{values[-1]:.3g} B/op" if values else (PEERS[key][1] if key in PEERS else "-"))
        adept_bytes = [run["bytes_per_op"] for r in rounds for run in runs[r].get(f"S1/adept/side:{side}", [])
                       if "bytes_per_op" in run]
        gradpath_bytes = [run["bytes_per_op"] for r in rounds for run in runs[r].get(f"S1/gradpath/side:{side}", [])]
        met = "-" if not (adept_bytes and gradpath_bytes) else "yes" if gradpath_bytes[-1] <= adept_bytes[-1] else "no"
        row += ["<= Adept-2's", met]
        memory_rows.append(row)
    if memory_rows:
        print()
        print_table(["tape memory", "gradpath (used)", "gradpath, products as nodes", "Adept-2 (Stack::memory)",
                     "CoDiPack (TapeValues used)", "target", "met?"], memory_rows)

    print("\nLoad (1-minute average before -> after each round; MAX_LOAD "
          f"{max_load:g}): " + ", ".join(
              f"round {r}: {loads[r]['before'][0]:g} -> {loads[r]['after'][0]:g}"
              f"{' (under load: left out)' if r in loaded else ''}" for r in sorted(loads)))
    # gradpath_bench's runs name the flags and the OpenBLAS core; E1's example does not.
    flags = next((f"`{c['cxx_flags']}`" for c in contexts.get("gradpath", []) if "cxx_flags" in c),
                 f"`{meta.get('arch_flags', '?')}` and CMake's Release flags")
    gradpath_cores = "/".join(sorted({c["openblas_core"] for c in contexts.get("gradpath", [])
                                      if "openblas_core" in c}))
    kernels = read_json(f"{folder}/kernels_torch.json")
    print(f"\nFlags and kernels: BENCH_ARCH={meta.get('bench_arch', '?')}; gradpath and the C++ peers built with"
          f" {flags}, OpenBLAS core"
          f" {gradpath_cores or '- (only gradpath_bench records it)'}; PyTorch "
          + (f"{kernels.get('torch', '?')}: OpenBLAS core {kernels.get('openblas_core', '?')}, ATen CPU capability"
             f" {kernels.get('aten_cpu_capability', '?')}, oneDNN ISA {kernels.get('onednn_isa', '?')}"
             f" (convolution {kernels.get('onednn_convolution', '?')}), OMP_WAIT_POLICY"
             f" {kernels.get('omp_wait_policy', '?')}" if kernels else "not run"))
    print("\nCPU time is the whole process's (every thread); ratios are taken within a round, then their median.")


def print_table(header, rows):
    for r in [header, ["---"] * len(header)] + rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/bench/native/results")
