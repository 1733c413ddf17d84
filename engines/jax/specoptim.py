"""The five optimizer rules of the format in jax.numpy (docs/training.md, "Optimizers"):
PyTorch's single-tensor rules, not optax's (whose defaults and order of arithmetic differ).

Scalar coefficients are computed in double precision on the host and rounded once to float32;
the elementwise arithmetic is float32, in PyTorch's order — the order SpecBench's own backends
use, so that the trajectories agree.
"""

import math

import jax.numpy as jnp
import numpy as np


def f32(value):
    return np.float32(value)


def lerp(a, b, weight):
    """PyTorch's lerp: a + w(b − a) for w < 0.5, else b − (b − a)(1 − w)."""
    if weight < 0.5:
        return a + f32(weight) * (b - a)
    return b - (b - a) * f32(1 - weight)


def slots(optimizer):
    """The slots a parameter has under `optimizer` (the spec's object), in the format's names."""
    kind = optimizer["type"]
    if kind == "sgd":
        return ["momentum_buffer"] if optimizer.get("momentum", 0) != 0 else []
    if kind in ("adam", "adamw"):
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if optimizer.get("amsgrad", False) else [])
    if kind == "rmsprop":
        return (
            ["square_avg"]
            + (["momentum_buffer"] if optimizer.get("momentum", 0) > 0 else [])
            + (["grad_avg"] if optimizer.get("centered", False) else [])
        )
    if kind == "adagrad":
        return ["sum"]
    raise ValueError(f"optimizer.type: the jax worker has no rule {kind!r}")


#: The per-update coefficients a rule takes, in this order (`coefficients`).
COEFFICIENTS = ("neg_lr", "step_size", "bias2", "decay", "clr", "first")


def coefficients(optimizer, step, lr):
    """The scalars update `step` (the optimizer's count k, from 1) of `optimizer` at the rate
    `lr` needs, computed in double precision and rounded once to float32 (as SpecBench's own
    rules compute them): −lr; adam's −lr/(1 − β₁ᵏ) and sqrt(1 − β₂ᵏ); adamw's 1 − lr·wd;
    adagrad's −lr/(1 + (k − 1)·lr_decay); and 1 at the first update (sgd's momentum buffer
    starts at the gradient). A compiled loop takes them as arrays, so nothing recompiles as the
    rate and the count change."""
    beta1, beta2 = optimizer.get("beta1", 0.9), optimizer.get("beta2", 0.999)
    wd = optimizer.get("weight_decay", 0.0)
    return (
        f32(-lr),
        f32(-(lr / (1 - beta1**step))),
        f32(math.sqrt(1 - beta2**step)),
        f32(1 - lr * wd),
        f32(-(lr / (1 + (step - 1) * optimizer.get("lr_decay", 0.0)))),
        f32(1.0 if step == 1 else 0.0),
    )


def update(optimizer, p, g, state, step, lr):
    """One update of parameter `p` with gradient `g`; `state` maps slot names to arrays; `step`
    is the optimizer's count k including this update, `lr` the scheduled rate. Returns the new
    parameter and slots."""
    return apply(optimizer, p, g, state, dict(zip(COEFFICIENTS, coefficients(optimizer, step, lr))))


def apply(optimizer, p, g, state, c):
    """`update` with the update's coefficients `c` (`coefficients`, by name; scalars or traced
    arrays)."""
    kind = optimizer["type"]
    wd = optimizer.get("weight_decay", 0.0)
    state = dict(state)
    if kind == "sgd":
        momentum = optimizer.get("momentum", 0.0)
        if wd != 0:
            g = g + f32(wd) * p
        if momentum != 0:
            moved = state["momentum_buffer"] * f32(momentum) + f32(1 - optimizer.get("dampening", 0.0)) * g
            b = jnp.where(c["first"] != 0, g, moved)
            state["momentum_buffer"] = b
            g = g + f32(momentum) * b if optimizer.get("nesterov", False) else b
        return p + c["neg_lr"] * g, state
    if kind in ("adam", "adamw"):
        beta1, beta2, eps = optimizer.get("beta1", 0.9), optimizer.get("beta2", 0.999), optimizer.get("eps", 1e-8)
        if kind == "adamw":
            p = p * c["decay"]
        elif wd != 0:
            g = g + f32(wd) * p
        mean = lerp(state["exp_avg"], g, 1 - beta1)
        square = state["exp_avg_sq"] * f32(beta2) + f32(1 - beta2) * g * g
        state["exp_avg"], state["exp_avg_sq"] = mean, square
        second = square
        if optimizer.get("amsgrad", False):
            second = jnp.maximum(state["max_exp_avg_sq"], square)
            state["max_exp_avg_sq"] = second
        denominator = jnp.sqrt(second) / c["bias2"] + f32(eps)
        return p + c["step_size"] * (mean / denominator), state
    if kind == "rmsprop":
        alpha, eps, momentum = optimizer.get("alpha", 0.99), optimizer.get("eps", 1e-8), optimizer.get("momentum", 0.0)
        if wd != 0:
            g = g + f32(wd) * p
        s = state["square_avg"] * f32(alpha) + f32(1 - alpha) * g * g
        state["square_avg"] = s
        if optimizer.get("centered", False):
            mu = lerp(state["grad_avg"], g, 1 - alpha)
            state["grad_avg"] = mu
            denominator = jnp.sqrt(s - mu * mu)
        else:
            denominator = jnp.sqrt(s)
        denominator = denominator + f32(eps)
        if momentum > 0:
            b = state["momentum_buffer"] * f32(momentum) + g / denominator
            state["momentum_buffer"] = b
            return p + c["neg_lr"] * b, state
        return p + c["neg_lr"] * (g / denominator), state
    if kind == "adagrad":
        if wd != 0:
            g = g + f32(wd) * p
        total = state["sum"] + g * g
        state["sum"] = total
        return p + c["clr"] * (g / (jnp.sqrt(total) + f32(optimizer.get("eps", 1e-10)))), state
    raise ValueError(f"optimizer.type: the jax worker has no rule {kind!r}")
