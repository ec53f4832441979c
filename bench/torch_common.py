# SPDX-License-Identifier: MIT
# What the PyTorch peers (torch_seed.py, torch_tensor.py) share: threads, the timing loop
# (wall AND CPU time, written as Google Benchmark style JSON) and the kernels PyTorch runs.
# `python3 bench/torch_common.py --kernels FILE` writes the kernels once per run
# (bench/run_peers.sh); it starts a child Python because oneDNN reads DNNL_VERBOSE only
# when it loads.
import argparse
import ctypes
import json
import os
import subprocess
import sys
import time

import torch

openblas = ctypes.CDLL("libopenblas.so.0")
openblas.openblas_get_corename.restype = ctypes.c_char_p


def set_threads(n):
    torch.set_num_threads(n)
    openblas.openblas_set_num_threads(n)


def measure(name, step, repetitions, seconds):
    """Google Benchmark style runs of `step`: real_time from time.perf_counter and
    cpu_time from time.process_time (the whole process, every thread), both in us per
    step; each repetition lasts about `seconds`."""
    for _ in range(20):  # warm-up
        step()
    start = time.perf_counter()
    steps = 0
    while time.perf_counter() - start < seconds / 4 or steps < 10:  # size one repetition
        step()
        steps += 1
    iterations = max(10, int(seconds / ((time.perf_counter() - start) / steps)))
    runs = []
    for _ in range(repetitions):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(iterations):
            step()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        runs.append({"name": name, "run_type": "iteration", "iterations": iterations, "time_unit": "us",
                     "real_time": wall / iterations * 1e6, "cpu_time": cpu / iterations * 1e6})
    return runs


def context():
    """What the table prints for this side: versions, the OpenBLAS core, ATen's CPU
    capability and the OpenMP wait policy the run had."""
    capability = next((line.split(":", 1)[1].strip() for line in torch.__config__.show().splitlines()
                       if "CPU capability usage" in line), "?")
    return {"torch": torch.__version__, "openblas_core": openblas.openblas_get_corename().decode(),
            "aten_cpu_capability": capability, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)")}


def write(out, runs):
    with open(out, "w") as f:
        json.dump({"context": context(), "benchmarks": runs}, f, indent=1)


# Run in the child: one float32 and one float64 conv forward and backward on F2's shapes,
# so oneDNN prints its ISA and the convolution implementations it picks.
_PROBE = """
import torch, torch.nn.functional as F
for dtype in (torch.float32, torch.float64):
    x = torch.rand(32, 16, 28, 28, dtype=dtype, requires_grad=True)
    w = torch.rand(32, 16, 3, 3, dtype=dtype, requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
"""


def kernels():
    env = dict(os.environ, DNNL_VERBOSE="1", ONEDNN_VERBOSE="1")
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True).stdout
    isa = sorted({line.split("isa:", 1)[1] for line in out.splitlines() if ",isa:" in line})
    convs = sorted({line.split(",")[4] for line in out.splitlines() if ",exec,cpu,convolution," in line})
    return dict(context(), mkldnn_available=torch.backends.mkldnn.is_available(), onednn_isa="/".join(isa) or "-",
                onednn_convolution="/".join(convs) or "- (no oneDNN convolution ran)",
                torch_config=torch.__config__.show())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernels", required=True, help="JSON file to write PyTorch's kernels to")
    with open(parser.parse_args().kernels, "w") as f:
        json.dump(kernels(), f, indent=1)
