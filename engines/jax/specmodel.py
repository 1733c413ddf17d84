"""The spec's model in jax.numpy, written from docs/spec-format.md and docs/training.md (not from
any library's layers): the evaluation-mode forward pass of every layer type and activation.

`params` maps the state file's names (`param/dense1.weight`, `buffer/bn.running_mean`) to
arrays; a dense weight is `[units, inputs]`, as in PyTorch.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
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
        # (The branch not taken sees a safe value: a gradient through `minimum` would be halved at a tie.)
        return jnp.where(x > 20, x, jnp.log1p(jnp.exp(jnp.where(x > 20, 0.0, x))))
    if name == "elu":
        return jnp.where(x > 0, x, jnp.expm1(jnp.where(x > 0, 0.0, x)))
    if name == "softmax":  # over the last axis
        return jax.nn.softmax(x, axis=-1)
    raise SpecError(f"unknown activation {name!r}")


def pair(value, default):
    """A pair field of an image layer: `k` or `[kh, kw]`."""
    if value is None:
        return default
    if isinstance(value, (list, tuple)):
        return (int(value[0]), int(value[1]))
    return (int(value), int(value))


def image_window(layer, shape):
    """A conv2d's or pool's kernel, stride, dilation and padding as (before, after) per axis, by
    docs/spec-format.md ("Images"): "same" pads d·(k − 1), half before (rounded down)."""
    kernel = pair(layer.get("kernel"), (1, 1))
    pool = layer.get("type") != "conv2d"
    stride = pair(layer.get("stride"), kernel if pool else (1, 1))
    dilation = (1, 1) if pool else pair(layer.get("dilation"), (1, 1))
    padding = layer.get("padding", 0)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        pads = tuple((t // 2, t - t // 2) for t in totals)
    elif padding == "valid":
        pads = ((0, 0), (0, 0))
    else:
        ph, pw = pair(padding, (0, 0))
        pads = ((ph, ph), (pw, pw))
    return {"kernel": kernel, "stride": stride, "dilation": dilation, "padding": pads}


def dropout_layers(model):
    """The dropout layers that draw masks in training mode: (index, rate) for a rate above 0."""
    return [(i, float(layer.get("rate", 0))) for i, layer in enumerate(model["layers"]) if layer.get("type") == "dropout" and layer.get("rate", 0) > 0]


def run(model, params, x, training=False, weights=None, masks=None, observe=None):
    """The model on a batch `x` (`[B, input…]`): returns the outputs and, in training mode, the
    batch_norm buffers as the step leaves them (`{}` in evaluation mode).

    `weights` (`[B]`, 1 or 0) marks the batch's real rows: a short batch is padded to a fixed
    size so that nothing recompiles, and the padding takes no part in batch_norm's statistics
    (nor, through `sample_losses`, in the loss). `masks` maps a dropout layer's index to its
    keep mask (`[B, sample size]`, booleans) drawn from the format's generator; in training
    mode a dropout layer with a rate above 0 needs one. `observe(index, x)`, when given, sees
    each layer's input (shape inference)."""
    buffers = {}
    if "input" in model:  # the samples in the model's shape ([C, H, W] for the image layers)
        x = x.reshape((x.shape[0],) + tuple(int(d) for d in model["input"]))
    for index, layer in enumerate(model["layers"]):
        kind, name = layer.get("type"), layer.get("name")
        if observe is not None:
            observe(index, x)
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
            rate = layer.get("rate", 0)
            if training and rate > 0:
                if masks is None or index not in masks:
                    raise SpecError(f"{path}: dropout in training mode needs the step's masks from the format's generator")
                # y = x / (1 − rate) where kept, as float32 computes 1/(1 − rate).
                scale = np.float32(1) / (np.float32(1) - np.float32(rate))
                keep = masks[index].reshape(x.shape)
                x = jnp.where(keep, x * scale, jnp.float32(0))
        elif kind == "layer_norm":
            eps = jnp.float32(layer.get("eps", 1e-5))
            mean = x.mean(axis=-1, keepdims=True)
            variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
            x = (x - mean) / jnp.sqrt(variance + eps) * params[f"param/{name}.weight"] + params[f"param/{name}.bias"]
        elif kind == "batch_norm":
            eps = jnp.float32(layer.get("eps", 1e-5))
            shape = (1, -1) + (1,) * (x.ndim - 2)  # the channel axis is the first of a sample's
            running_mean = params.get(f"buffer/{name}.running_mean")
            running_var = params.get(f"buffer/{name}.running_var")
            if training:
                axes = (0,) + tuple(range(2, x.ndim))
                inner = math.prod(x.shape[2:])
                rows = jnp.ones(x.shape[0], jnp.float32) if weights is None else weights
                w = rows.reshape((-1,) + (1,) * (x.ndim - 1))
                count = rows.sum() * inner
                mean = (x * w).sum(axis=axes, keepdims=True) / count
                squares = (w * (x - mean) ** 2).sum(axis=axes, keepdims=True)
                variance = squares / count
                # The running statistics (when given) move only when a feature has more than one value.
                if running_mean is not None and running_var is not None:
                    momentum = np.float32(layer.get("momentum", 0.1))
                    keep = np.float32(1) - momentum
                    moved_mean = keep * running_mean + momentum * mean.reshape(-1)
                    moved_var = keep * running_var + momentum * (squares.reshape(-1) / jnp.maximum(count - 1, 1))
                    buffers[f"buffer/{name}.running_mean"] = jnp.where(count > 1, moved_mean, running_mean)
                    buffers[f"buffer/{name}.running_var"] = jnp.where(count > 1, moved_var, running_var)
            else:
                mean = running_mean.reshape(shape)
                variance = running_var.reshape(shape)
            weight = params[f"param/{name}.weight"].reshape(shape)
            bias = params[f"param/{name}.bias"].reshape(shape)
            x = (x - mean) / jnp.sqrt(variance + eps) * weight + bias
        elif kind == "conv2d":
            window = image_window(layer, x.shape)
            x = jax.lax.conv_general_dilated(
                x,
                params[f"param/{name}.weight"],
                window_strides=window["stride"],
                padding=window["padding"],
                rhs_dilation=window["dilation"],
                dimension_numbers=("NCHW", "OIHW", "NCHW"),
                feature_group_count=int(layer.get("groups", 1)),
                precision=jax.lax.Precision.HIGHEST,
            )
            if layer.get("use_bias", True):
                x = x + params[f"param/{name}.bias"].reshape(1, -1, 1, 1)
            x = activation(layer.get("activation", "identity"), x)
        elif kind in ("max_pool2d", "avg_pool2d"):
            window = image_window(layer, x.shape)
            dims, strides = (1, 1) + window["kernel"], (1, 1) + window["stride"]
            padding = ((0, 0), (0, 0)) + window["padding"]
            if kind == "max_pool2d":  # the padding is −∞
                x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, strides, padding)
            else:  # the padding counts as zeros: divided by kh·kw (PyTorch's count_include_pad)
                total = jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, strides, padding)
                x = total / jnp.float32(window["kernel"][0] * window["kernel"][1])
        elif kind == "global_avg_pool":
            x = x.reshape(x.shape[0], x.shape[1], -1).mean(axis=2)
        elif kind == "reshape":
            x = x.reshape((x.shape[0],) + tuple(int(d) for d in layer["shape"]))
        else:
            raise SpecError(f"{path}.type: the jax worker cannot run a {kind!r} layer")
    return x, buffers


def forward(model, params, x, training=False):
    """The model's outputs for `x` (`[N, input…]`): in evaluation mode dropout is off and
    batch_norm uses its running statistics; in training mode batch_norm normalises with the
    batch's mean and biased variance (a model whose dropout would draw masks is refused: see
    `run`)."""
    return run(model, params, x, training)[0]


def sample_losses(spec, output, targets):
    """Each sample's loss (docs/training.md, "Losses"): `output` is `[N, width]`; `targets` are
    class indices (int) or values of the output's shape. Elementwise losses are the mean over a
    sample's outputs, so that the batch's loss is the mean of these."""
    name = spec.get("type")
    y = output.reshape(output.shape[0], -1)
    width = y.shape[1]
    if jnp.issubdtype(targets.dtype, jnp.integer):
        if name == "softmax_cross_entropy":
            logsumexp = jax.scipy.special.logsumexp(y, axis=1)
            return logsumexp - jnp.take_along_axis(y, targets[:, None], axis=1)[:, 0]
        # One output: the class itself (0 or 1); several: one-hot.
        t = targets[:, None].astype(jnp.float32) if width == 1 else jax.nn.one_hot(targets, width, dtype=jnp.float32)
    else:
        t = targets.reshape(y.shape)
    d = y - t
    if name == "mse":
        return (d * d).mean(axis=1)
    if name == "huber":
        delta = jnp.float32(spec.get("delta", 1.0))
        return jnp.where(jnp.abs(d) < delta, 0.5 * d * d, delta * (jnp.abs(d) - 0.5 * delta)).mean(axis=1)
    if name == "sigmoid_binary_cross_entropy":
        return (jnp.maximum(y, 0) - y * t + jnp.log1p(jnp.exp(-jnp.abs(y)))).mean(axis=1)
    raise SpecError(f"loss.type: the jax worker cannot compute a {name!r} loss")


def loss(spec, output, targets):
    """The mean loss of a batch."""
    return sample_losses(spec, output, targets).mean()


def batch_measures(spec, output, targets, weights):
    """The batch's accuracy (class targets) or mean absolute error (values under mse or huber)
    over the rows whose weight is 1, as `LossSpec.batchMeasures` defines them; NaN where the
    loss has no such measure."""
    y = output.reshape(output.shape[0], -1)
    n = weights.sum()
    if jnp.issubdtype(targets.dtype, jnp.integer):
        # The argmax (the first of equal maxima), or for one output 1 above 0.
        predicted = (y[:, 0] > 0).astype(targets.dtype) if y.shape[1] == 1 else jnp.argmax(y, axis=1).astype(targets.dtype)
        return (weights * (predicted == targets)).sum() / n
    if spec.get("type") in ("mse", "huber"):
        return (weights * jnp.abs(y - targets.reshape(y.shape)).mean(axis=1)).sum() / n
    return jnp.float32(jnp.nan)


def loss_and_gradients(model, loss_spec, params, x, targets):
    """The batch's mean loss in training mode and its gradient for every `param/…` tensor."""
    trainable = {name: value for name, value in params.items() if name.startswith("param/")}
    fixed = {name: value for name, value in params.items() if not name.startswith("param/")}

    def objective(trainable):
        return loss(loss_spec, forward(model, {**fixed, **trainable}, x, training=True), targets)

    value, gradients = jax.value_and_grad(objective)(trainable)
    return value, gradients
