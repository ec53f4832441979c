# SPDX-License-Identifier: MIT
# The PyTorch peer for S2: the seed network (5x5 image, 3x3 filter at stride 2, dense of
# 4 + bias, L = (y - t)^2 / 2) in float64 on one thread; each step is forward + backward
# + reading the grads + clearing them. Checks the grads once against a hand adjoint, as
# the C++ sides do (bench/cases.hpp), then writes Google Benchmark style JSON ("S2/torch")
# with wall and CPU time (torch_common.py).
import argparse
import sys

import torch

from torch_common import measure, set_threads, write


def hand_gradient(image, w, v, b, t):
    """dL/dy = y - t; dv_k = (y - t) z_k, db = y - t, dw_i = sum_k (y - t) v_k a_tap(k, i)."""
    a, w, v = image.reshape(5, 5).tolist(), w.reshape(9).tolist(), v.tolist()
    windows = [[a[2 * (k // 2) + i // 3][2 * (k % 2) + i % 3] for i in range(9)] for k in range(4)]
    z = [sum(wi * ai for wi, ai in zip(w, window)) for window in windows]
    dy = sum(vk * zk for vk, zk in zip(v, z)) + b.item() - t.item()
    dw = [sum(dy * v[k] * windows[k][i] for k in range(4)) for i in range(9)]
    return dw + [dy * zk for zk in z] + [dy]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per repetition")
    args = parser.parse_args()

    set_threads(1)
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
        grads = w.grad.reshape(9).tolist() + v.grad.tolist() + [b.grad.item()]
        w.grad = v.grad = b.grad = None
        return grads

    got, hand = step(), hand_gradient(image, w.detach(), v.detach(), b.detach(), target)
    if any(abs(g - h) > 1e-12 for g, h in zip(got, hand)):
        sys.exit(f"GRADIENT CHECK FAILED: S2/torch gave {got}, the hand adjoint says {hand}")
    write(args.out, measure("S2/torch", step, args.repetitions, args.seconds))


if __name__ == "__main__":
    main()
