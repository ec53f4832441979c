# SPDX-License-Identifier: MIT
# The PyTorch peer of case E1: one training epoch of examples/fashion_mnist.cpp's network
# on Fashion-MNIST (conv 1->16 3x3 pad 1, relu, max-pool 2, flatten, dense 3136->10,
# softmax cross-entropy; Adam at the example's first-epoch rate, batch 64, the order
# shuffled once, the last batch short), read from the same gzip IDX files. Only the
# training loop is timed, the images already scaled into one tensor; each step also reads
# the loss and counts the correct predictions, as the example does. Writes Google
# Benchmark style JSON (torch_common.py) named as bench/table.py looks it up.
import argparse
import gzip
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from torch_common import set_threads, write

DTYPES = {"float64": torch.float64, "float32": torch.float32}
NUMPY_DTYPES = {torch.float64: np.float64, torch.float32: np.float32}


def read_idx(path, rank):
    """An IDX file of unsigned bytes in `rank` dimensions, as a numpy array."""
    with gzip.open(path) as f:
        data = f.read()
    zero, type_code, dims = struct.unpack_from(">HBB", data)
    if zero != 0 or type_code != 8 or dims != rank:
        sys.exit(f"{path}: not an IDX file of unsigned bytes in {rank} dimensions")
    shape = struct.unpack_from(f">{rank}I", data, 4)
    values = np.frombuffer(data, np.uint8, offset=4 + 4 * rank)
    if values.size != np.prod(shape):
        sys.exit(f"{path}: {values.size} bytes of data, the header says {shape}")
    return values.reshape(shape)


def load(folder, dtype):
    """Images scaled to zero mean and unit variance over the training set through one table
    per byte value, as the example does, and the labels."""
    pixels = read_idx(f"{folder}/train-images-idx3-ubyte.gz", 3)
    labels = read_idx(f"{folder}/train-labels-idx1-ubyte.gz", 1)
    # The statistics from the histogram of byte values: exact, and no float copy of the set.
    counts = np.bincount(pixels.ravel(), minlength=256)
    values = np.arange(256) / 255.0
    mean = (counts * values).sum() / counts.sum()
    stddev = np.sqrt(max((counts * values**2).sum() / counts.sum() - mean**2, 1e-12))
    table = ((values - mean) / stddev).astype(NUMPY_DTYPES[dtype])
    return torch.from_numpy(table[pixels]).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def network(rows, cols, channels, dtype, seed):
    """The example's Net with its initialisation: He normal weights, zero biases."""
    torch.manual_seed(seed)
    nn = torch.nn
    conv, dense = nn.Conv2d(1, channels, 3, padding=1), nn.Linear(channels * (rows // 2) * (cols // 2), 10)
    for layer in (conv, dense):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
    return nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), dense).to(dtype)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="directory of the gzip IDX files")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args()
    set_threads(args.threads)
    dtype = DTYPES[args.dtype]

    images, labels = load(args.data, dtype)
    count, batch = len(labels), 64
    model = network(images.shape[2], images.shape[3], 16, dtype, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=4e-3, betas=(0.9, 0.999), eps=1e-8)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(1))

    loss_sum, correct = 0.0, 0
    wall, cpu = time.perf_counter(), time.process_time()
    for first in range(0, count, batch):
        ids = order[first:first + batch]
        x, y = images[ids], labels[ids]
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(ids)
        correct += (logits.argmax(1) == y).sum().item()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

    train_loss = loss_sum / count
    print(f"PyTorch, {args.dtype}, {args.threads} thread(s): train loss {train_loss:.4f} acc"
          f" {100 * correct / count:.2f}%, training {wall:.2f} s wall, {cpu:.2f} s CPU")
    write(args.out, [{"name": f"E1/torch/{args.dtype}/threads:{args.threads}", "run_type": "iteration",
                      "iterations": 1, "time_unit": "s", "real_time": wall, "cpu_time": cpu,
                      "steps": (count + batch - 1) // batch, "train_loss": train_loss}])


if __name__ == "__main__":
    main()
