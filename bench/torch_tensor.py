# SPDX-License-Identifier: MIT
# The PyTorch peers for F1 (fused conv2d forward + backward on S1's shapes) and T1 (one
# training step of a small CNN at 1 and 2 threads), in float64 and float32; the run names
# match bench/tensor_bench.cpp's. Writes Google Benchmark style JSON, with the OpenBLAS
# core PyTorch's GEMMs ran on (the same libopenblas.so.0 as gradpath's).
import argparse
import ctypes
import json
import time

import torch
import torch.nn.functional as F

DTYPES = {"float64": torch.float64, "float32": torch.float32}
openblas = ctypes.CDLL("libopenblas.so.0")
openblas.openblas_get_corename.restype = ctypes.c_char_p


def set_threads(n):
    torch.set_num_threads(n)
    openblas.openblas_set_num_threads(n)


def uniform(gen, dtype, *shape):
    return torch.rand(*shape, generator=gen, dtype=dtype) * 2 - 1


def f1_step(dtype):
    """image (1, 1, 64, 64), filter (1, 1, 3, 3), L = sum z^2 / 2; grads of both, read."""
    gen = torch.Generator().manual_seed(1)
    image = uniform(gen, dtype, 1, 1, 64, 64).requires_grad_()
    w = uniform(gen, dtype, 1, 1, 3, 3).requires_grad_()

    def step():
        z = F.conv2d(image, w)
        loss = (z * z).sum() * 0.5
        loss.backward()
        total = w.grad.sum().item() + image.grad.sum().item()
        w.grad = image.grad = None
        return total
    return step


def t1_step(dtype):
    """batch 64 of 1x28x28, conv 1->8 3x3 pad 1, relu, max-pool 2, dense 1568->10,
    softmax cross-entropy, one SGD step."""
    gen = torch.Generator().manual_seed(7)
    images = uniform(gen, dtype, 64, 1, 28, 28)
    labels = torch.randint(0, 10, (64,), generator=gen)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(1568, 10)).to(dtype)
    sgd = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        sgd.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        sgd.step()
        return loss.item()
    return step


def measure(name, step, repetitions, seconds):
    for _ in range(20):  # warm-up
        step()
    start = time.perf_counter()
    steps = 0
    while time.perf_counter() - start < seconds / 4 or steps < 10:  # size one repetition
        step()
        steps += 1
    per_step = (time.perf_counter() - start) / steps
    iterations = max(10, int(seconds / per_step))
    runs = []
    for _ in range(repetitions):
        start = time.perf_counter()
        for _ in range(iterations):
            step()
        elapsed = time.perf_counter() - start
        runs.append({"name": name, "run_type": "iteration", "iterations": iterations,
                     "real_time": elapsed / iterations * 1e6, "time_unit": "us"})
    return runs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per repetition")
    args = parser.parse_args()

    runs = []
    for label, dtype in DTYPES.items():
        set_threads(1)
        runs += measure(f"F1/torch/{label}", f1_step(dtype), args.repetitions, args.seconds)
        for threads in (1, 2):
            set_threads(threads)
            runs += measure(f"T1/torch/{label}/threads:{threads}", t1_step(dtype), args.repetitions, args.seconds)
    context = {"torch": torch.__version__, "openblas_core": openblas.openblas_get_corename().decode()}
    with open(args.out, "w") as f:
        json.dump({"context": context, "benchmarks": runs}, f, indent=1)


if __name__ == "__main__":
    main()
