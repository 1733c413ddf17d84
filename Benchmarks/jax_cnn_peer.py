#!/usr/bin/env python3
"""Peer benchmark for the image presets of `specbench bench`: the same network, data sizes, loss
and Adam step in JAX (XLA, jit), with lax.conv_general_dilated for the convolutions and
lax.reduce_window for the max pools — what a user who wants speed on a CPU would write.
Needs jax and optax (scripts/setup.sh installs them).

usage: jax_cnn_peer.py --preset cnn-digits|lenet [--batch 64] [--steps 300] [--warmup 20]
prints one line: steps_per_sec=... ms_per_step=... samples_per_sec=...
"""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

# (input shape, layers): ("conv", filters, kernel, pad) with ReLU, ("pool", k), ("flatten",),
# ("dense", units, relu?) — as Benchmark.Preset.all writes them.
PRESETS = {
    "cnn-digits": ((1, 8, 8), [("conv", 10, 3, 1), ("pool", 2), ("conv", 20, 3, 1), ("pool", 2), ("flatten",), ("dense", 10, False)]),
    "lenet": (
        (1, 28, 28),
        [("conv", 6, 5, 2), ("pool", 2), ("conv", 16, 5, 0), ("pool", 2), ("flatten",), ("dense", 120, True), ("dense", 84, True),
         ("dense", 10, False)],
    ),
}

p = argparse.ArgumentParser()
p.add_argument("--preset", choices=sorted(PRESETS), required=True)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--steps", type=int, default=300)
p.add_argument("--warmup", type=int, default=20)
a = p.parse_args()
shape, layers = PRESETS[a.preset]
rng = np.random.default_rng(0)

params = []
channels, height, width = shape
flat = None
for layer in layers:
    if layer[0] == "conv":
        _, filters, k, pad = layer
        fan_in = channels * k * k
        params.append((jnp.asarray((rng.standard_normal((filters, channels, k, k)) * np.sqrt(2 / fan_in)).astype(np.float32)),
                       jnp.zeros(filters, jnp.float32)))
        channels, height, width = filters, height + 2 * pad - k + 1, width + 2 * pad - k + 1
    elif layer[0] == "pool":
        height, width = height // layer[1], width // layer[1]
    elif layer[0] == "flatten":
        flat = channels * height * width
    else:
        units = layer[1]
        params.append((jnp.asarray((rng.standard_normal((units, flat)) * np.sqrt(2 / flat)).astype(np.float32)), jnp.zeros(units, jnp.float32)))
        flat = units
classes = flat
X = jnp.asarray(rng.standard_normal((a.batch * 8,) + shape).astype(np.float32))
Y = jnp.asarray(rng.integers(0, classes, a.batch * 8))
opt = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-8)
state = opt.init(params)


def forward(ps, x):
    h, i = x, 0
    for layer in layers:
        if layer[0] == "conv":
            w, b = ps[i]
            i += 1
            pad = layer[3]
            h = jax.lax.conv_general_dilated(h, w, (1, 1), [(pad, pad), (pad, pad)], dimension_numbers=("NCHW", "OIHW", "NCHW"))
            h = jax.nn.relu(h + b.reshape(1, -1, 1, 1))
        elif layer[0] == "pool":
            k = layer[1]
            h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, k, k), (1, 1, k, k), "VALID")
        elif layer[0] == "flatten":
            h = h.reshape(h.shape[0], -1)
        else:
            w, b = ps[i]
            i += 1
            h = h @ w.T + b
            if layer[2]:
                h = jax.nn.relu(h)
    return h


def loss_fn(ps, x, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(forward(ps, x)), y[:, None], 1))


@jax.jit
def step(ps, st, x, y):
    loss, g = jax.value_and_grad(loss_fn)(ps, x, y)
    updates, st = opt.update(g, st, ps)
    return optax.apply_updates(ps, updates), st, loss


batches = [(X[i * a.batch:(i + 1) * a.batch], Y[i * a.batch:(i + 1) * a.batch]) for i in range(8)]
for t in range(a.warmup):
    params, state, loss = step(params, state, *batches[t % 8])
loss.block_until_ready()
start = time.perf_counter()
for t in range(a.steps):
    params, state, loss = step(params, state, *batches[t % 8])
loss.block_until_ready()
elapsed = time.perf_counter() - start
print(f"steps_per_sec={a.steps / elapsed:.1f} ms_per_step={1000 * elapsed / a.steps:.3f} samples_per_sec={a.steps * a.batch / elapsed:.0f}")
