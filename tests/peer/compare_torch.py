#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# gradpath against PyTorch: seeded random JSON models, every named tensor's values and grads compared.
"""Generates random networks as gradpath JSON models, runs `gradpath grad MODEL --json`
on each, builds the same network in PyTorch (float64) straight from the JSON, and
compares the value and grad of every named tensor (inputs, params and op outputs), and
`gradpath grad MODEL --hvp ...` along a random direction of the params against
torch.autograd.functional.hvp.

Some cases end in an entry PyTorch rejects too (bad shapes, bad labels, bad options):
gradpath must then exit with status 2 and print one line, not crash.

Usage: /usr/bin/python3 tests/peer/compare_torch.py build/release/gradpath --cases 300 --seed 1
Exit status: 0 when every case agrees, 1 on any disagreement.
"""

import argparse
import collections
import json
import math
import os
import random
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

REL_TOL = 1e-9   # relative to the PyTorch value
ABS_TOL = 1e-12  # times max(1, largest |value| of the tensor): rounding in sums that cancel


class Rejected(Exception):
    """PyTorch (or its integer-dtype rule for class indices) refuses the entry."""


# ---- the model, run by PyTorch ------------------------------------------------------------

def _bias(b, out_rank_zero):
    return None if b is None else (b.reshape(()) if out_rank_zero else b.reshape(-1))


def _conv(x, w, b, e):
    stride, padding = e.get("stride", 1), e.get("padding", 0)
    if x.dim() == 2 and w.dim() == 2:
        y = F.conv2d(x[None, None], w[None, None], None if b is None else b.reshape(1), stride=stride, padding=padding)
        return y[0, 0]
    if x.dim() == 4 and w.dim() == 4:
        return F.conv2d(x, w, None if b is None else b.reshape(-1), stride=stride, padding=padding)
    raise Rejected("conv2d: ranks")


def _pool(x, e, fn):
    kernel = e.get("kernel", 2)
    stride = e.get("stride", kernel)
    if stride == 0:
        raise Rejected("pool: stride 0")
    if x.dim() == 2:
        return fn(x[None], kernel, stride, e.get("padding", 0))[0]
    if x.dim() != 4:
        raise Rejected("pool: rank")
    return fn(x, kernel, stride, e.get("padding", 0))


def _dense(x, w, b):
    if x.dim() < 1 or w.dim() not in (1, 2):
        raise Rejected("dense: ranks")
    y = x @ (w.T if w.dim() == 2 else w)
    return y if b is None else y + _bias(b, w.dim() == 1)


def _labels(entry, ins):
    if len(ins) == 2:
        values = ins[1].detach().reshape(-1).tolist()
        if any(v != math.floor(v) for v in values):
            raise Rejected("class indices must be integers")
        return torch.tensor([int(v) for v in values], dtype=torch.long)
    return torch.tensor(entry["labels"], dtype=torch.long)


def _cross_entropy(logits, labels):
    if logits.dim() == 1:
        if labels.numel() != 1:
            raise Rejected("one label for (C) logits")
        return F.cross_entropy(logits[None], labels.reshape(1))
    if logits.dim() != 2:
        raise Rejected("logits rank")
    return F.cross_entropy(logits, labels)


def _squared(y, t, reduction):
    if torch.broadcast_shapes(y.shape, t.shape) != y.shape:
        raise Rejected("target does not broadcast to the prediction")
    return F.mse_loss(y, t.expand_as(y), reduction=reduction)


def _transpose(x, e):
    if "axes" in e:
        return torch.transpose(x, *e["axes"])
    if x.dim() != 2:
        raise Rejected("transpose: name two axes")
    return x.T


def _reduce(fn, x, e):
    if "axis" not in e:
        return fn(x)
    if x.dim() == 0:
        raise Rejected("axis of a rank-0 tensor")
    return fn(x, dim=e["axis"], keepdim=e.get("keepdim", False))


def _matmul(a, b):
    if a.dim() not in (2, 3) or b.dim() not in (2, 3):
        raise Rejected("matmul: ranks")
    return torch.matmul(a, b)


TORCH_OPS = {
    "conv2d": lambda i, e: _conv(i[0], i[1], i[2] if len(i) > 2 else None, e),
    "conv2d_mac": lambda i, e: _conv(i[0], i[1], i[2] if len(i) > 2 else None, e),
    "max_pool2d": lambda i, e: _pool(i[0], e, lambda x, k, s, p: F.max_pool2d(x, k, s, p)),
    "avg_pool2d": lambda i, e: _pool(i[0], e, lambda x, k, s, p: F.avg_pool2d(x, k, s, p, count_include_pad=True)),
    "dense": lambda i, e: _dense(i[0], i[1], i[2] if len(i) > 2 else None),
    "matmul": lambda i, e: _matmul(i[0], i[1]),
    "add": lambda i, e: i[0] + i[1],
    "sub": lambda i, e: i[0] - i[1],
    "mul": lambda i, e: i[0] * i[1],
    "div": lambda i, e: i[0] / i[1],
    "relu": lambda i, e: torch.relu(i[0]),
    "tanh": lambda i, e: torch.tanh(i[0]),
    "sigmoid": lambda i, e: torch.sigmoid(i[0]),
    "exp": lambda i, e: torch.exp(i[0]),
    "abs": lambda i, e: torch.abs(i[0]),
    "softmax": lambda i, e: torch.softmax(i[0], -1),
    "log_softmax": lambda i, e: torch.log_softmax(i[0], -1),
    "flatten": lambda i, e: torch.flatten(i[0], e.get("start_axis", 0)),
    "reshape": lambda i, e: i[0].reshape(e["shape"]),
    "transpose": lambda i, e: _transpose(i[0], e),
    "sum": lambda i, e: _reduce(torch.sum, i[0], e),
    "mean": lambda i, e: _reduce(torch.mean, i[0], e),
    "half_squared_error": lambda i, e: _squared(i[0], i[1], "sum") / 2,
    "mse": lambda i, e: _squared(i[0], i[1], "mean"),
    "softmax_cross_entropy": lambda i, e: _cross_entropy(i[0], _labels(e, i)),
}
VIEWS = {"flatten", "reshape"}  # gradpath views share their source's slots, so its grads too


def torch_entry(entry, tensors):
    """One graph entry on PyTorch tensors; Rejected when PyTorch refuses it."""
    try:
        return TORCH_OPS[entry["op"]]([tensors[n] for n in entry["in"]], entry)
    except Rejected:
        raise
    except (RuntimeError, ValueError, IndexError, TypeError) as error:
        raise Rejected(str(error).splitlines()[0]) from error


def run_torch(model):
    """Values and grads (flat lists) of every named tensor, by PyTorch."""
    tensors, alias = {}, {}
    for section in ("inputs", "params"):
        for name, spec in model.get(section, {}).items():
            t = torch.tensor(spec["values"]).reshape(spec["shape"]).requires_grad_()
            tensors[name] = t
    for entry in model["graph"]:
        out = torch_entry(entry, tensors)
        if entry["op"] in VIEWS:
            alias[entry["out"]] = alias.get(entry["in"][0], entry["in"][0])
        elif out.requires_grad:
            out.retain_grad()
        tensors[entry["out"]] = out
    tensors[model["loss"]].backward()
    result = {}
    for name, t in tensors.items():
        source = tensors[alias.get(name, name)]
        grad = source.grad if source.grad is not None else torch.zeros_like(source)
        result[name] = (t.detach().reshape(-1).tolist(), grad.reshape(-1).tolist())
    return result


def torch_hvp(model, direction):
    """H v of the loss in the params, by torch.autograd.functional.hvp, flat in the order of
    model["params"]; `direction` holds v per param name."""
    names = list(model["params"])
    inputs = {name: torch.tensor(spec["values"]).reshape(spec["shape"]) for name, spec in model["inputs"].items()}

    def loss_of(*params):
        tensors = dict(inputs)
        tensors.update(zip(names, params))
        for entry in model["graph"]:
            tensors[entry["out"]] = torch_entry(entry, tensors)
        return tensors[model["loss"]].reshape(())

    params = tuple(torch.tensor(model["params"][n]["values"]).reshape(model["params"][n]["shape"]) for n in names)
    v = tuple(torch.tensor(direction[n]).reshape(model["params"][n]["shape"]) for n in names)
    _, hv = torch.autograd.functional.hvp(loss_of, params, v)
    return [x for t in hv for x in t.reshape(-1).tolist()]


def check_hvp(command, model, rng, path):
    """gradpath grad --hvp against torch_hvp along a random direction: problems, as text."""
    if not model["params"]:
        return []
    direction, args = {}, []
    for name, spec in model["params"].items():
        direction[name] = [rng.uniform(-1, 1) for _ in spec["values"]]
        file = f"{path}.{name}.hvp.json"
        with open(file, "w") as f:
            json.dump(direction[name], f)
        args += ["--hvp", f"{name}={file}"]
    run = subprocess.run([command, "grad", path, "--json", *args], capture_output=True, text=True, timeout=120)
    problems = []
    if run.returncode != 0:
        problems.append(f"gradpath grad --hvp failed (status {run.returncode}): {run.stderr.strip()}")
    else:
        ours = [row[0] for row in json.loads(run.stdout)["hvp"]]
        theirs = torch_hvp(model, direction)
        scale = max((abs(x) for x in theirs if math.isfinite(x)), default=0.0)
        bad = [i for i, (g, w) in enumerate(zip(ours, theirs)) if not close(g, w, scale)]
        if len(ours) != len(theirs):
            problems.append(f"hvp: {len(ours)} elements from gradpath, {len(theirs)} from PyTorch")
        elif bad:
            i = bad[0]
            problems.append(f"hvp: {len(bad)} of {len(ours)} elements differ; element {i}: "
                            f"gradpath {ours[i]!r}, PyTorch {theirs[i]!r}")
    if not problems:  # the directions stay beside a model that disagrees, to rerun it
        for name in direction:
            os.remove(f"{path}.{name}.hvp.json")
    return problems


# ---- random models --------------------------------------------------------------------------

class Builder:
    """A model under construction; every entry is run by PyTorch as it is added, so the
    generator knows each shape and which values are safe to feed to exp or div."""

    def __init__(self, rng):
        self.rng = rng
        self.model = {"inputs": {}, "params": {}, "graph": []}
        self.tensors = {}
        self.tags = collections.Counter()
        self.count = 0
        # Inputs are sometimes large, to reach saturated activations and softmax's shift.
        self.scale = rng.choice([1, 1, 1, 4, 16])

    def fresh(self, prefix):
        # A letter suffix (a, b, ..., z, ba, ...), never digits: gradpath numbers a tensor's
        # elements by appending digits, so 'x1' of 13 elements and a node 'x13' would clash.
        self.count += 1
        n, suffix = self.count, ""
        while True:
            n, digit = divmod(n, 26)
            suffix = chr(ord("a") + digit) + suffix
            if n == 0:
                return prefix + suffix

    def leaf(self, shape, section="inputs", values=None, away_from_zero=False, prefix=None):
        name = self.fresh(prefix or ("x" if section == "inputs" else "p"))
        size = math.prod(shape)
        if values is None:
            scale = self.scale if section == "inputs" else 1
            values = [self.rng.uniform(-scale, scale) for _ in range(size)]
            if away_from_zero:
                values = [math.copysign(0.5 + abs(v), v) for v in values]
        self.model[section][name] = {"shape": list(shape), "values": values}
        self.tensors[name] = torch.tensor(values).reshape(shape)
        return name

    def op(self, op, ins, tags=(), **options):
        entry = {"op": op, "in": list(ins), **options, "out": self.fresh(op.split("_")[0][:4])}
        self.tensors[entry["out"]] = torch_entry(entry, self.tensors)
        self.model["graph"].append(entry)
        self.tags[op] += 1
        self.tags.update(f"{op} {tag}" for tag in tags)
        return entry["out"]

    def shape(self, name):
        return tuple(self.tensors[name].shape)

    def magnitude(self, name):
        return float(self.tensors[name].abs().max())


def random_shape(rng, rank, low=1, high=4):
    return tuple(rng.randint(low, high) for _ in range(rank))


def broadcast_partner(rng, shape):
    """A shape that broadcasts with `shape`: trailing axes kept, dropped or set to 1."""
    rank = rng.randint(0, len(shape))
    partner = list(shape[len(shape) - rank:])
    for i in range(len(partner)):
        if rng.random() < 0.35:
            partner[i] = 1
    if rng.random() < 0.15 and len(shape) < 4:
        partner = [rng.randint(1, 3)] + list(shape)  # the other side grows a leading axis
    return tuple(partner)


def conv_step(b, x):
    rng, shape = b.rng, b.shape(x)
    kh, kw = rng.randint(1, 4), rng.randint(1, 4)
    padding, stride = rng.randint(0, 3), rng.randint(1, 3)
    if len(shape) == 2:
        h, w = shape
    else:
        _, c, h, w = shape
    if kh > h + 2 * padding or kw > w + 2 * padding:
        padding = max(0, (max(kh - h, kw - w) + 1) // 2)
    w_shape = (kh, kw) if len(shape) == 2 else (rng.randint(1, 4), c, kh, kw)
    weight = b.leaf(w_shape, "params", prefix="w")
    ins = [x, weight]
    if rng.random() < 0.5:
        out_channels = 1 if len(shape) == 2 else w_shape[0]
        bias_shape = () if out_channels == 1 and rng.random() < 0.5 else (out_channels,)
        ins.append(b.leaf(bias_shape, "params", prefix="b"))
    tags = ["2-D" if len(shape) == 2 else "NCHW", "bias" if len(ins) == 3 else "no bias", f"stride {stride}",
            f"padding {padding}", "square" if kh == kw else "non-square"]
    if padding >= min(kh, kw):
        tags.append("padding >= kernel")
    return b.op(rng.choice(["conv2d", "conv2d_mac"]), ins, tags=tags, stride=stride, padding=padding)


def pool_step(b, x):
    rng, shape = b.rng, b.shape(x)
    h, w = shape[-2:]
    kernel = rng.randint(1, min(4, h + 2, w + 2))
    padding = rng.randint(0, kernel // 2)
    if kernel > h + 2 * padding or kernel > w + 2 * padding:
        padding = kernel // 2
    if kernel > h + 2 * padding or kernel > w + 2 * padding:
        return x
    options = {"kernel": kernel, "padding": padding}
    if rng.random() < 0.6:
        options["stride"] = rng.randint(1, 3)
    return b.op(rng.choice(["max_pool2d", "avg_pool2d"]), [x], tags=[f"kernel {kernel} padding {padding}"], **options)


def dense_step(b, x):
    rng, shape = b.rng, b.shape(x)
    if not shape or (len(shape) > 2 and rng.random() < 0.7):
        x = b.op("flatten", [x], start_axis=1 if len(shape) >= 2 and rng.random() < 0.5 else 0)
        shape = b.shape(x)
    n_in = shape[-1]
    single = rng.random() < 0.25
    weight = b.leaf((n_in,) if single else (rng.randint(1, 5), n_in), "params", prefix="W")
    ins = [x, weight]
    if rng.random() < 0.6:
        bias_shape = rng.choice([(), (1,)]) if single else (b.shape(weight)[0],)
        ins.append(b.leaf(bias_shape, "params", prefix="b"))
    return b.op("dense", ins, tags=["W (in)" if single else "W (out, in)", {1: "x (in)", 2: "x (batch, in)"}.get(len(shape), "x (..., in)"),
                                    "bias" if len(ins) == 3 else "no bias"])


def binary_step(b, x):
    rng, shape = b.rng, b.shape(x)
    op = rng.choice(["add", "sub", "mul", "div"])
    partner = b.leaf(broadcast_partner(rng, shape), away_from_zero=op == "div")
    ins = [x, partner] if op == "div" or rng.random() < 0.5 else [partner, x]
    return b.op(op, ins, tags=["broadcast"] if b.shape(partner) != shape else [])


def unary_step(b, x):
    choices = ["relu", "tanh", "sigmoid", "abs"] + (["exp"] if b.magnitude(x) < 4 else [])
    return b.op(b.rng.choice(choices), [x])


def shape_step(b, x):
    rng, shape = b.rng, b.shape(x)
    kind = rng.choice(["flatten", "reshape", "transpose", "softmax", "matmul"])
    if kind == "flatten" and shape:
        return b.op("flatten", [x], start_axis=rng.randint(0, len(shape) - 1))
    if kind == "reshape":
        size, dims = math.prod(shape), []
        while size > 1 and len(dims) < 3:
            divisors = [d for d in range(2, size + 1) if size % d == 0]
            dims.append(rng.choice(divisors))
            size //= dims[-1]
        dims.append(size)
        rng.shuffle(dims)
        return b.op("reshape", [x], shape=dims)
    if kind == "transpose" and len(shape) >= 2:
        if len(shape) == 2 and rng.random() < 0.5:
            return b.op("transpose", [x])
        a0, a1 = rng.sample(range(len(shape)), 2)
        return b.op("transpose", [x], axes=[a0 - len(shape) if rng.random() < 0.3 else a0, a1])
    if kind == "softmax":
        return b.op(rng.choice(["softmax", "log_softmax"]), [x])
    if kind == "matmul":
        return matmul_step(b, x)
    return unary_step(b, x)


def matmul_step(b, x):
    rng, shape = b.rng, b.shape(x)
    if len(shape) not in (2, 3):
        x = b.op("reshape", [x], shape=[math.prod(shape[:-1]), shape[-1]] if shape else [1, 1])
        shape = b.shape(x)
    right = (shape[-1], rng.randint(1, 4))
    if rng.random() < 0.5:
        right = (shape[0] if len(shape) == 3 else rng.randint(1, 3),) + right
    return b.op("matmul", [x, b.leaf(right, "params", prefix="M")], tags=[f"{len(shape)}-D x {len(right)}-D"])


def reduce_step(b, x):
    rng, shape = b.rng, b.shape(x)
    op = rng.choice(["sum", "mean"])
    if not shape or rng.random() < 0.3:
        return b.op(op, [x])
    axis = rng.randint(-len(shape), len(shape) - 1)
    keep = rng.random() < 0.5
    return b.op(op, [x], tags=["axis, keepdim" if keep else "axis"], axis=axis, keepdim=keep)


def loss_step(b, x):
    rng, shape = b.rng, b.shape(x)
    if len(shape) in (1, 2) and shape[-1] >= 2 and rng.random() < 0.4:
        rows = shape[0] if len(shape) == 2 else 1
        labels = [rng.randrange(shape[-1]) for _ in range(rows)]
        if rng.random() < 0.5:
            return b.op("softmax_cross_entropy", [x], tags=["labels option"], labels=labels)
        y = b.leaf((rows,) if len(shape) == 2 else (), values=[float(v) for v in labels], prefix="y")
        return b.op("softmax_cross_entropy", [x, y], tags=["labels tensor"])
    if rng.random() < 0.6:
        target = b.leaf(shape if rng.random() < 0.7 else tuple(shape[len(shape) - rng.randint(0, len(shape)):]),
                        prefix="t")
        return b.op(rng.choice(["half_squared_error", "mse"]), [x, target])
    return reduce_step(b, x) if not shape else b.op(rng.choice(["sum", "mean"]), [x])


def image_start(b):
    rng = b.rng
    if rng.random() < 0.3:
        return b.leaf(random_shape(rng, 2, 2, 8))
    return b.leaf((rng.randint(1, 3), rng.randint(1, 4), rng.randint(2, 7), rng.randint(2, 7)))


def random_model(rng):
    b = Builder(rng)
    family = rng.choice(["conv", "conv", "dense", "tensor", "tensor"])
    if family == "conv":
        x = image_start(b)
        for _ in range(rng.randint(1, 3)):
            step = rng.choice([conv_step, conv_step, pool_step, unary_step])
            x = step(b, x)
        x = dense_step(b, x) if rng.random() < 0.7 else x
    elif family == "dense":
        x = b.leaf((rng.randint(1, 6),) if rng.random() < 0.4 else random_shape(rng, 2, 1, 6))
        for _ in range(rng.randint(1, 3)):
            x = dense_step(b, x)
            if rng.random() < 0.7:
                x = unary_step(b, x)
        if rng.random() < 0.3:
            x = b.op(rng.choice(["softmax", "log_softmax"]), [x])
    else:
        x = b.leaf(random_shape(rng, rng.randint(1, 4)))
        for _ in range(rng.randint(3, 6)):
            x = rng.choice([binary_step, unary_step, shape_step, shape_step, reduce_step, matmul_step])(b, x)
    if b.magnitude(x) > 1e3:
        x = b.op("tanh", [x])
    b.model["loss"] = loss_step(b, x)
    return b


# Entries PyTorch refuses; gradpath must refuse them too, with one line and exit status 2.
def bad_entry(b):
    rng = b.rng
    kind = rng.choice(["broadcast", "matmul", "conv", "pool", "labels", "axis", "reshape", "dense"])
    if kind == "broadcast":
        return rng.choice(["add", "sub", "mul", "div"]), {"in": [b.leaf((2, 3)), b.leaf((rng.choice([2, 4]),))]}
    if kind == "matmul":
        return "matmul", {"in": [b.leaf((2, 3)), b.leaf((4, 2))]}
    if kind == "conv":
        return "conv2d" if rng.random() < 0.5 else "conv2d_mac", rng.choice([
            {"in": [b.leaf((1, 2, 4, 4)), b.leaf((1, 3, 2, 2))]},                   # channels differ
            {"in": [b.leaf((3, 3)), b.leaf((5, 2))], "padding": 0},                 # kernel larger than input
            {"in": [b.leaf((1, 1, 4, 4)), b.leaf((2, 1, 2, 2)), b.leaf((3,))]},     # bias size
            {"in": [b.leaf((4, 4)), b.leaf((2, 2))], "stride": 0},
        ])
    if kind == "pool":
        return rng.choice(["max_pool2d", "avg_pool2d"]), rng.choice([
            {"in": [b.leaf((4, 4))], "kernel": 3, "padding": 2},                     # padding above kernel / 2
            {"in": [b.leaf((2, 2))], "kernel": 5},
            {"in": [b.leaf((1, 1, 4, 4))], "kernel": 2, "stride": 0},
            {"in": [b.leaf((4,))], "kernel": 2},
        ])
    if kind == "labels":
        logits = b.leaf((2, 3))
        return "softmax_cross_entropy", rng.choice([
            {"in": [logits], "labels": [0, 3]},
            {"in": [logits], "labels": [0]},
            {"in": [logits, b.leaf((2,), values=[1.0, 0.5], prefix="y")]},
            {"in": [logits, b.leaf((2,), values=[2.0, -1.0], prefix="y")]},
            {"in": [logits, b.leaf((3,), values=[0.0, 1.0, 2.0], prefix="y")]},
        ])
    if kind == "axis":
        return rng.choice(["sum", "mean"]), {"in": [b.leaf((2, 3))], "axis": rng.choice([2, -3])}
    if kind == "reshape":
        return "reshape", {"in": [b.leaf((2, 3))], "shape": [4, 2]}
    return "dense", {"in": [b.leaf((2, 3)), b.leaf((4, 5), "params")]}


def error_model(rng):
    b = random_model(rng)
    op, fields = bad_entry(b)
    index = len(b.model["graph"])
    entry = {"op": op, **fields, "out": b.fresh("bad")}
    b.model["graph"].append(entry)
    b.model["graph"].append({"op": "sum", "in": [entry["out"]], "out": b.fresh("L")})
    b.model["loss"] = b.model["graph"][-1]["out"]
    b.tags[f"error: {op}"] += 1
    return b, index


# ---- comparison --------------------------------------------------------------------------------

# JSON numbers cannot hold these: gradpath grad --json writes them as strings.
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def close(got, want, scale):
    if isinstance(got, str):
        got = NON_FINITE[got]
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    if math.isinf(want) or math.isinf(got):
        return got == want
    return abs(got - want) <= REL_TOL * abs(want) + ABS_TOL * max(1.0, scale)


def compare(ours, theirs):
    """Disagreements between gradpath's JSON and PyTorch's values/grads, as text lines."""
    problems = []
    for name, (values, grads) in theirs.items():
        for kind, want, got in (("value", values, ours["values"].get(name)), ("grad", grads, ours["grads"].get(name))):
            if got is None:
                problems.append(f"{name}: gradpath printed no {kind}s")
                continue
            if len(got) != len(want):
                problems.append(f"{name}: {len(got)} {kind}s from gradpath, {len(want)} from PyTorch")
                continue
            scale = max((abs(v) for v in want if math.isfinite(v)), default=0.0)
            bad = [i for i, (g, w) in enumerate(zip(got, want)) if not close(g, w, scale)]
            if bad:
                i = bad[0]
                problems.append(f"{name}: {len(bad)} of {len(want)} {kind}s differ, first [{i}]: "
                                f"gradpath {got[i]!r}, PyTorch {want[i]!r}")
    extra = set(ours["values"]) - set(theirs)
    if extra:
        problems.append(f"gradpath printed unknown names {sorted(extra)}")
    return problems


def run_gradpath(command, path):
    return subprocess.run([command, "grad", path, "--json"], capture_output=True, text=True, timeout=120)


def check_case(command, case, rng, workdir, expect_error):
    if expect_error:
        b, bad_index = error_model(rng)
    else:
        b, bad_index = random_model(rng), None
    path = os.path.join(workdir, f"case{case:04d}.json")
    with open(path, "w") as f:
        json.dump(b.model, f)
    run = run_gradpath(command, path)
    problems = []
    if expect_error:
        bad = b.model["graph"][bad_index]
        try:
            torch_entry(bad, b.tensors)
            problems.append("the bad entry is accepted by PyTorch: the generator is wrong")
        except Rejected:
            pass
        lines = run.stderr.splitlines()
        where = f"graph[{bad_index}] ({bad['op']})"
        if run.returncode != 2:
            problems.append(f"exit status {run.returncode}, expected 2 (stderr: {run.stderr.strip()[:300]})")
        elif len(lines) != 1 or not lines[0].startswith("gradpath: ") or where not in lines[0] or run.stdout:
            problems.append(f"expected one line naming {where} on stderr, got: {run.stderr!r}")
    else:
        if run.returncode != 0:
            problems.append(f"gradpath failed (status {run.returncode}): {run.stderr.strip()}")
        else:
            problems = compare(json.loads(run.stdout), run_torch(b.model))
            problems += check_hvp(command, b.model, rng, path)
    return b, path, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gradpath", help="the built gradpath command")
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--error-share", type=float, default=0.1, help="share of cases ending in a bad entry")
    parser.add_argument("--keep", help="directory for the models (default: a temporary one, kept on failure)")
    args = parser.parse_args()

    workdir = args.keep or tempfile.mkdtemp(prefix="gradpath_peer_")
    os.makedirs(workdir, exist_ok=True)
    tags, failures, errors_checked = collections.Counter(), [], 0
    for case in range(args.cases):
        rng = random.Random(args.seed * 1_000_003 + case)
        expect_error = rng.random() < args.error_share
        b, path, problems = check_case(args.gradpath, case, rng, workdir, expect_error)
        tags.update(b.tags)
        errors_checked += expect_error
        if problems:
            failures.append((path, problems))
        elif not args.keep:
            os.remove(path)

    print(f"{args.cases} cases (seed {args.seed}): {args.cases - errors_checked} compared with PyTorch "
          f"{torch.__version__} in float64 (values, grads, and a Hessian-vector product against "
          f"torch.autograd.functional.hvp), {errors_checked} bad entries checked for exit status 2")
    print("coverage (cases x entries):")
    for tag, n in sorted(tags.items()):
        print(f"  {n:5d}  {tag}")
    for path, problems in failures:
        print(f"MISMATCH {path}")
        for p in problems[:8]:
            print(f"  {p}")
    print(f"{len(failures)} of {args.cases} cases disagree" if failures else "all cases agree")
    if not failures and not args.keep:
        os.rmdir(workdir)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
