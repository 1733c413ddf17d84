"""The spec's model in jax.numpy, written from docs/spec-format.md and docs/training.md (not from
any library's layers): the evaluation-mode forward pass of every layer type and activation.

`params` maps the state file's names (`param/dense1.weight`, `buffer/bn.running_mean`) to
arrays; a dense weight is `[units, inputs]`, as in PyTorch.
"""

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import erf


class SpecError(Exception):
    """A model this worker does not know how to run, named by its JSON path."""


def activation(spec, x):
    """An activation by its spec form: a name, or an object with `type` (and `alpha`)."""
    name = spec if isinstance(spec, str) else spec.get("type")
    if name == "identity":
        return x
    if name == "relu":
        return jnp.where(x > 0, x, 0.0)
    if name == "leaky_relu":
        return jnp.where(x > 0, x, jnp.float32(spec.get("alpha", 0.01)) * x)
    if name == "sigmoid":
        return jax.nn.sigmoid(x)
    if name == "tanh":
        return jnp.tanh(x)
    if name == "gelu":  # the exact form, with erf (PyTorch's default)
        return 0.5 * x * (1.0 + erf(x * jnp.float32(math.sqrt(0.5))))
    if name == "silu":
        return x * jax.nn.sigmoid(x)
    if name == "softplus":  # PyTorch's: beta 1, x itself above the threshold 20
        return jnp.where(x > 20, x, jnp.log1p(jnp.exp(jnp.minimum(x, 20.0))))
    if name == "elu":
        return jnp.where(x > 0, x, jnp.expm1(jnp.minimum(x, 0.0)))
    if name == "softmax":  # over the last axis
        return jax.nn.softmax(x, axis=-1)
    raise SpecError(f"unknown activation {name!r}")


def forward(model, params, x):
    """The model's outputs for `x` (`[N, input…]`) in evaluation mode: dropout off, batch_norm
    on its running statistics."""
    for index, layer in enumerate(model["layers"]):
        kind, name = layer.get("type"), layer.get("name")
        path = f"model.layers[{index}]"
        if kind == "dense":
            x = x.reshape(x.shape[0], -1) @ params[f"param/{name}.weight"].T
            if layer.get("use_bias", True):
                x = x + params[f"param/{name}.bias"]
            x = activation(layer.get("activation", "identity"), x)
        elif kind == "activation":
            x = activation(layer["function"], x)
        elif kind == "flatten":
            x = x.reshape(x.shape[0], -1)
        elif kind == "dropout":
            pass
        elif kind == "layer_norm":
            eps = jnp.float32(layer.get("eps", 1e-5))
            mean = x.mean(axis=-1, keepdims=True)
            variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
            x = (x - mean) / jnp.sqrt(variance + eps) * params[f"param/{name}.weight"] + params[f"param/{name}.bias"]
        elif kind == "batch_norm":
            eps = jnp.float32(layer.get("eps", 1e-5))
            shape = (1, -1) + (1,) * (x.ndim - 2)  # the channel axis is the first of a sample's
            mean = params[f"buffer/{name}.running_mean"].reshape(shape)
            variance = params[f"buffer/{name}.running_var"].reshape(shape)
            weight = params[f"param/{name}.weight"].reshape(shape)
            bias = params[f"param/{name}.bias"].reshape(shape)
            x = (x - mean) / jnp.sqrt(variance + eps) * weight + bias
        else:
            raise SpecError(f"{path}.type: the jax worker cannot run a {kind!r} layer")
    return x
