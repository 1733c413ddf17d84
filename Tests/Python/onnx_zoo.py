"""A zoo of small PyTorch models exported to ONNX as a user would export them, for SpecBench's
ONNX import tests (Tests/InterchangeTests/ONNXZooTests.swift).

    python3 onnx_zoo.py FOLDER [MODEL ...]
    python3 onnx_zoo.py --check MODEL.onnx TENSORS.safetensors [...]

For every model (all of them, or the ones named), every exporter (`dynamo`: torch.onnx.export's
default since PyTorch 2.9, with onnxscript; `legacy`: the TorchScript exporter, dynamo=False) and
every opset that exporter is tested at, writes

    FOLDER/NAME-EXPORTER-OPSET.onnx   (and any external data file the exporter writes beside it)
    FOLDER/NAME-EXPORTER-OPSET.safetensors   with `input` (random samples, the same for every
        file of a model) and `output` (what the exported model, in eval mode, predicts for them)

Each export starts from its own copy of the model: an export in training mode runs the model
in training mode and so moves its batch norms' running statistics, which the file then holds. Prints one JSON line per file written:
{"file": ..., "model": ..., "exporter": ..., "opset": ..., "seconds": ...}, and one per export
the exporter itself refused ({"refused": ..., "reason": ...}), which the tests report.

With --check, runs each model in onnxruntime on its inputs and prints how far its predictions
are from PyTorch's (see `check`).
"""
import contextlib
import copy
import io
import json
import os
import sys
import time
import warnings

import torch
from safetensors.torch import save_file

torch.manual_seed(0)
nn = torch.nn


def mlp(*middle, inputs=4, hidden=8, outputs=3):
    return nn.Sequential(nn.Linear(inputs, hidden), *middle, nn.Linear(hidden, outputs))


def trained_batch_norm(model, shape):
    """Running statistics that are not the defaults (mean 0, variance 1), as after training."""
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(16, *shape) * 2 + 0.5)
    return model


class ViewFlatten(nn.Module):
    """`x.view(x.size(0), -1)` in a forward: the legacy exporter computes the shape in the graph
    (Shape, Gather, Unsqueeze, Concat)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))


# name: (model, sample shape)
ZOO = {
    "mlp": (nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)), [4]),
    "relu": (mlp(nn.ReLU()), [4]),
    "leaky-relu": (mlp(nn.LeakyReLU(0.1)), [4]),
    "sigmoid": (mlp(nn.Sigmoid()), [4]),
    "tanh": (mlp(nn.Tanh()), [4]),
    "softplus": (mlp(nn.Softplus()), [4]),
    "elu": (mlp(nn.ELU()), [4]),
    "gelu": (mlp(nn.GELU()), [4]),
    "silu": (mlp(nn.SiLU()), [4]),
    "softmax": (nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3), nn.Softmax(dim=-1)), [4]),
    "no-bias": (nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, 3, bias=False)), [4]),
    "layer-norm": (mlp(nn.LayerNorm(8), nn.ReLU()), [4]),
    "batch-norm": (trained_batch_norm(mlp(nn.BatchNorm1d(8), nn.ReLU()), [4]), [4]),
    "dropout": (mlp(nn.ReLU(), nn.Dropout(0.3)), [4]),
    "flatten": (nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Tanh(), nn.Linear(6, 2)), [3, 4]),
    "conv": (
        nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3)
        ),
        [1, 8, 8],
    ),
    "conv-batch-norm": (
        trained_batch_norm(
            nn.Sequential(
                nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 3),
            ),
            [2, 8, 8],
        ),
        [2, 8, 8],
    ),
    "view-flatten": (ViewFlatten(), [1, 6, 6]),
    "global-pool": (
        nn.Sequential(nn.Conv2d(1, 4, 3), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)),
        [1, 6, 6],
    ),
}

# The dynamo exporter writes opset 18 and later; the legacy exporter 9 to 20.
OPSETS = {"dynamo": [18, 19, 20, 21], "legacy": [13, 14, 15, 16, 17, 18, 19, 20]}
# Variants for some models: the legacy exporter in training mode (batch norm with its training
# outputs, dropout kept), and the dynamo exporter without its optimiser (batch norm not folded).
VARIANTS = {
    "legacy-train": (17, ["batch-norm", "conv-batch-norm", "dropout"]),
    "dynamo-unoptimized": (18, ["batch-norm", "conv-batch-norm", "gelu", "layer-norm"]),
}


def export(model, example, path, exporter, opset):
    kwargs = dict(
        input_names=["input"], output_names=["output"], opset_version=opset,
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
    )
    if exporter == "legacy-train":
        kwargs["training"] = torch.onnx.TrainingMode.TRAINING
        kwargs["do_constant_folding"] = False
    if exporter.startswith("dynamo"):
        kwargs.pop("dynamic_axes")
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=4096)},)
        kwargs["external_data"] = True
        kwargs["optimize"] = exporter == "dynamo"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), path, dynamo=exporter.startswith("dynamo"), **kwargs)


def check(pairs):
    """For each (model file, model's .safetensors): onnxruntime's prediction on the inputs,
    against PyTorch's: the largest absolute difference, that relative to the largest output
    (`max_rel`), and whether every value is within numpy.isclose(rtol=1e-5, atol=1e-6)."""
    import numpy as np
    import onnxruntime as ort
    from safetensors.numpy import load_file

    for model, tensors in pairs:
        data = load_file(tensors)
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: data["input"]})[0]
        want = data["output"]
        if got.shape != want.shape:
            print(json.dumps({"file": model, "shape": list(got.shape), "expected": list(want.shape)}), flush=True)
            continue
        difference = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
        scale = max(float(np.abs(want).max()), 1e-30)
        close = bool(np.allclose(got, want, rtol=1e-5, atol=1e-6))
        print(json.dumps({"file": model, "max_abs": difference, "max_rel": difference / scale, "close": close}), flush=True)


def main():
    if sys.argv[1] == "--check":
        rest = sys.argv[2:]
        check(list(zip(rest[0::2], rest[1::2])))
        return
    folder = sys.argv[1]
    names = sys.argv[2:] or list(ZOO)
    os.makedirs(folder, exist_ok=True)
    for name in names:
        model, shape = ZOO[name]
        model.eval()
        inputs = torch.randn(7, *shape) * 1.5
        plan = [(exporter, opset) for exporter, opsets in OPSETS.items() for opset in opsets]
        plan += [(exporter, opset) for exporter, (opset, models) in VARIANTS.items() if name in models]
        for exporter, opset in plan:
            file = os.path.join(folder, f"{name}-{exporter}-{opset}.onnx")
            start = time.monotonic()
            exported = copy.deepcopy(model)
            try:
                export(exported, inputs[:2], file, exporter, opset)
            except Exception as error:  # the exporter's own refusal, reported by the tests
                print(json.dumps({"refused": file, "reason": f"{type(error).__name__}: {error}"[:500]}), flush=True)
                continue
            seconds = round(time.monotonic() - start, 2)
            exported.eval()
            with torch.no_grad():
                outputs = exported(inputs)
            save_file({"input": inputs.contiguous(), "output": outputs.contiguous()}, file[: -len(".onnx")] + ".safetensors")
            print(json.dumps({"file": file, "model": name, "exporter": exporter, "opset": opset, "seconds": seconds}), flush=True)
    print(json.dumps({"torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
