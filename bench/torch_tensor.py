# SPDX-License-Identifier: MIT
# The PyTorch peers for the tensor cases, run names matching bench/tensor_bench.cpp's:
# F1 (fused conv2d forward + backward on S1's shapes), F2 (one conv layer, batch 32,
# 16->32 channels, float32), T1 (one SGD training step of a small CNN) and T2 (one Adam
# step of a two-conv CNN), in float64 and float32 (F2 float32 only), T1/T2/F2 at 1 and 2
# threads. Writes Google Benchmark style JSON with wall and CPU time (torch_common.py).
import argparse

import torch
import torch.nn.functional as F

from torch_common import measure, set_threads, write

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def uniform(gen, dtype, *shape):
    return torch.rand(*shape, generator=gen, dtype=dtype) * 2 - 1


def conv_step(dtype, x_shape, w_shape, padding):
    """L = sum z^2 / 2 of one conv, no bias; grads of image and filter, read."""
    gen = torch.Generator().manual_seed(1)
    image = uniform(gen, dtype, *x_shape).requires_grad_()
    w = uniform(gen, dtype, *w_shape).requires_grad_()

    def step():
        z = F.conv2d(image, w, padding=padding)
        loss = (z * z).sum() * 0.5
        loss.backward()
        total = w.grad.sum().item() + image.grad.sum().item()
        w.grad = image.grad = None
        return total
    return step


def training_step(dtype, layers, optimizer, **options):
    """One step on a batch of 64 1x28x28 images: zero grads, forward, softmax
    cross-entropy, backward, optimiser step."""
    gen = torch.Generator().manual_seed(7)
    images = uniform(gen, dtype, 64, 1, 28, 28)
    labels = torch.randint(0, 10, (64,), generator=gen)
    model = torch.nn.Sequential(*layers).to(dtype)
    opt = optimizer(model.parameters(), **options)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def t1_layers():
    """conv 1->8 3x3 pad 1, relu, max-pool 2, dense 1568->10."""
    nn = torch.nn
    return [nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1568, 10)]


def t2_layers():
    """conv 1->16 3x3 pad 1, relu, max-pool 2, conv 16->32 3x3 pad 1, relu, max-pool 2,
    dense 1568->10."""
    nn = torch.nn
    return [nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1568, 10)]


# case -> [(run name, threads, step factory)]
CASES = {
    "F1": [(f"F1/torch/{label}", 1, lambda d=dtype: conv_step(d, (1, 1, 64, 64), (1, 1, 3, 3), 0))
           for label, dtype in DTYPES.items()],
    "F2": [(f"F2/torch/float32/threads:{n}", n, lambda: conv_step(torch.float32, (32, 16, 28, 28), (32, 16, 3, 3), 1))
           for n in (1, 2)],
    "T1": [(f"T1/torch/{label}/threads:{n}", n,
            lambda d=dtype: training_step(d, t1_layers(), torch.optim.SGD, lr=0.01))
           for label, dtype in DTYPES.items() for n in (1, 2)],
    "T2": [(f"T2/torch/{label}/threads:{n}", n,
            lambda d=dtype: training_step(d, t2_layers(), torch.optim.Adam, lr=1e-3))
           for label, dtype in DTYPES.items() for n in (1, 2)],
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--case", choices=sorted(CASES), action="append", help="cases to run (default: all)")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per repetition")
    args = parser.parse_args()

    runs = []
    for case in args.case or sorted(CASES):
        for name, threads, make_step in CASES[case]:
            set_threads(threads)
            runs += measure(name, make_step(), args.repetitions, args.seconds)
    write(args.out, runs)


if __name__ == "__main__":
    main()
