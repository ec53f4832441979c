# SPDX-License-Identifier: MIT
# The PyTorch peer for S2: the seed network (5x5 image, 3x3 filter at stride 2, dense of
# 4 + bias, L = (y - t)^2 / 2) in float64 on one thread; each step is forward + backward
# + reading the grads + clearing them. Writes Google Benchmark style JSON (name "S2/torch").
import argparse
import json
import time

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000, help="steps per repetition")
    args = parser.parse_args()

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(3)
    uniform = lambda *shape: torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1
    image = uniform(1, 1, 5, 5)
    w = uniform(1, 1, 3, 3).requires_grad_()
    v = uniform(4).requires_grad_()
    b = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    target = torch.tensor(0.25, dtype=torch.float64)

    def step():
        z = torch.nn.functional.conv2d(image, w, stride=2).reshape(4)
        y = v @ z + b
        loss = (y - target) ** 2 * 0.5
        loss.backward()
        total = w.grad.sum().item() + v.grad.sum().item() + b.grad.item()
        w.grad = v.grad = b.grad = None
        return total

    for _ in range(200):  # warm-up
        step()
    runs = []
    for _ in range(args.repetitions):
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        elapsed = time.perf_counter() - start
        runs.append({"name": "S2/torch", "run_type": "iteration", "iterations": args.steps,
                     "real_time": elapsed / args.steps * 1e6, "time_unit": "us"})
    with open(args.out, "w") as f:
        json.dump({"context": {"torch": torch.__version__}, "benchmarks": runs}, f, indent=1)


if __name__ == "__main__":
    main()
