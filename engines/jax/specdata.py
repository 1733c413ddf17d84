"""The format's data order in plain Python (docs/training.md, "Data order"; docs/spec-format.md,
"The seeded generator"): SplitMix64, FNV-1a, Fisher–Yates, the epoch order and its seeds, so
that the jax worker trains on the same batches, in the same order, as SpecBench's own backends.
"""

import numpy as np

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def fnv1a64(text):
    """FNV-1a, 64-bit, over the UTF-8 bytes of `text`."""
    value = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 0x100000001B3) & MASK
    return value


class SplitMix64:
    """The format's generator; `state` is its whole state."""

    def __init__(self, state):
        self.state = state & MASK

    @classmethod
    def stream(cls, seed, name):
        """The stream `name` under `seed`: state = seed XOR fnv1a64(name)."""
        return cls(seed ^ fnv1a64(name))

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def draws(state, count):
    """The next `count` outputs of the generator whose state is `state`, at once (NumPy's
    uint64 arithmetic wraps modulo 2^64, as the generator's does), and the state after them:
    output i depends only on state + (i + 1)·γ."""
    with np.errstate(over="ignore"):
        z = np.uint64(state) + np.arange(1, count + 1, dtype=np.uint64) * np.uint64(GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z, (state + count * GAMMA) & MASK


def uniforms(state, count):
    """`count` float32 uniforms in [0, 1) from the top 24 bits of each output, and the state after."""
    z, state = draws(state, count)
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24), state


def permutation(n, generator):
    """0..n−1 by Fisher–Yates from the end: for i = n − 1 down to 1, swap i with next() mod (i + 1).
    The draws are made at once; the swaps, which depend on each other, one by one."""
    order = list(range(n))
    if n < 2:
        return order
    z, generator.state = draws(generator.state, n - 1)
    positions = range(n - 1, 0, -1)
    picks = (z % np.arange(n, 1, -1, dtype=np.uint64)).tolist()
    for i, j in zip(positions, picks):
        order[i], order[j] = order[j], order[i]
    return order


def initial_epoch_order_seed(training_seed):
    return (training_seed ^ fnv1a64("data.order")) & MASK


def next_epoch_order_seed(seed):
    return SplitMix64(seed).next()


class EpochSampler:
    """The batches of the training samples, as SpecBench's `EpochSampler` takes them: up to
    `batch_size` from the epoch's order (the last batch of an epoch may be short); when an epoch
    is used up, the epoch count advances and the next order is drawn from the next seed."""

    def __init__(self, count, batch_size, shuffle, epoch_order_seed, index=0, epoch=0):
        self.count, self.batch_size, self.shuffle = count, batch_size, shuffle
        self.seed, self.index, self.epoch = epoch_order_seed, min(index, count), epoch
        self.order = self._order()

    def _order(self):
        return permutation(self.count, SplitMix64(self.seed)) if self.shuffle else list(range(self.count))

    def _next_epoch(self):
        self.epoch += 1
        self.index = 0
        self.seed = next_epoch_order_seed(self.seed)
        self.order = self._order()

    def next_batch(self):
        """The next batch's sample indices, and whether it ended an epoch."""
        if self.index >= self.count:
            self._next_epoch()
        end = self.index + min(self.batch_size, self.count - self.index)
        batch = self.order[self.index : end]
        self.index = end
        ended = self.index >= self.count
        if ended:
            self._next_epoch()
        return batch, ended
