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


def forward(model, params, x, training=False):
    """The model's outputs for `x` (`[N, input…]`). In evaluation mode dropout is off and
    batch_norm uses its running statistics; in training mode batch_norm normalises with the
    batch's mean and biased variance (and `forward` does not update the running statistics).
    Dropout in training mode needs the spec's masks, which this worker does not draw yet: such a
    model is refused."""
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
            if training and layer.get("rate", 0) > 0:
                raise SpecError(f"{path}: dropout in training mode needs the spec's dropout masks, which the jax worker does not draw yet")
        elif kind == "layer_norm":
            eps = jnp.float32(layer.get("eps", 1e-5))
            mean = x.mean(axis=-1, keepdims=True)
            variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
            x = (x - mean) / jnp.sqrt(variance + eps) * params[f"param/{name}.weight"] + params[f"param/{name}.bias"]
        elif kind == "batch_norm":
            eps = jnp.float32(layer.get("eps", 1e-5))
            shape = (1, -1) + (1,) * (x.ndim - 2)  # the channel axis is the first of a sample's
            if training:
                axes = (0,) + tuple(range(2, x.ndim))
                mean = x.mean(axis=axes, keepdims=True)
                variance = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
            else:
                mean = params[f"buffer/{name}.running_mean"].reshape(shape)
                variance = params[f"buffer/{name}.running_var"].reshape(shape)
            weight = params[f"param/{name}.weight"].reshape(shape)
            bias = params[f"param/{name}.bias"].reshape(shape)
            x = (x - mean) / jnp.sqrt(variance + eps) * weight + bias
        else:
            raise SpecError(f"{path}.type: the jax worker cannot run a {kind!r} layer")
    return x


def loss(spec, output, targets):
    """The mean loss of a batch (docs/training.md, "Losses"): `output` is `[N, width]`;
    `targets` are class indices (int) or values of the output's shape."""
    name = spec.get("type")
    y = output.reshape(output.shape[0], -1)
    width = y.shape[1]
    if jnp.issubdtype(targets.dtype, jnp.integer):
        if name == "softmax_cross_entropy":
            logsumexp = jax.scipy.special.logsumexp(y, axis=1)
            return (logsumexp - jnp.take_along_axis(y, targets[:, None], axis=1)[:, 0]).mean()
        # One output: the class itself (0 or 1); several: one-hot.
        t = targets[:, None].astype(jnp.float32) if width == 1 else jax.nn.one_hot(targets, width, dtype=jnp.float32)
    else:
        t = targets.reshape(y.shape)
    d = y - t
    if name == "mse":
        return (d * d).mean()
    if name == "huber":
        delta = jnp.float32(spec.get("delta", 1.0))
        return jnp.where(jnp.abs(d) < delta, 0.5 * d * d, delta * (jnp.abs(d) - 0.5 * delta)).mean()
    if name == "sigmoid_binary_cross_entropy":
        return (jnp.maximum(y, 0) - y * t + jnp.log1p(jnp.exp(-jnp.abs(y)))).mean()
    raise SpecError(f"loss.type: the jax worker cannot compute a {name!r} loss")


def loss_and_gradients(model, loss_spec, params, x, targets):
    """The batch's mean loss in training mode and its gradient for every `param/…` tensor."""
    trainable = {name: value for name, value in params.items() if name.startswith("param/")}
    fixed = {name: value for name, value in params.items() if not name.startswith("param/")}

    def objective(trainable):
        return loss(loss_spec, forward(model, {**fixed, **trainable}, x, training=True), targets)

    value, gradients = jax.value_and_grad(objective)(trainable)
    return value, gradients
