"""Keras files, SpecBench beside Keras, measured side by side in one run (docs/interchange.md).

For each model — the digits CNN as trained, and a 784-512-512-10 MLP (670k parameters) — in
interleaved rounds: `specbench export --to keras` and `specbench import` as whole processes, and
Keras 3 (jax backend, imported once, before timing) saving and loading the same archive in this
process. Prints the median of each and the ratios.

Usage: KERAS_BACKEND=jax python3 Benchmarks/keras_files.py .build/release/specbench [rounds]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

binary = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
here = os.path.dirname(os.path.abspath(__file__))
work = tempfile.mkdtemp()

mlp = {
    "format": "specbench/session", "version": 6, "name": "mlp",
    "model": {"input": [784], "layers": [
        {"type": "dense", "units": 512, "activation": "relu"},
        {"type": "dense", "units": 512, "activation": "relu"},
        {"type": "dense", "units": 10}]},
    "loss": {"type": "softmax_cross_entropy"}, "optimizer": {"type": "adam"},
    "data": {"type": "blobs", "samples": 100, "centers": 10, "features": 784}}
with open(os.path.join(work, "mlp.json"), "w") as f:
    json.dump(mlp, f)
sessions = {"digits-cnn": os.path.join(here, "..", "sessions", "digits-cnn.json"), "mlp-670k": os.path.join(work, "mlp.json")}


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def run(*arguments):
    subprocess.run([binary, *arguments], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


times = {}
for _ in range(rounds):
    for name, session in sessions.items():
        archive = os.path.join(work, name + ".keras")
        times.setdefault((name, "specbench export"), []).append(timed(lambda: run("export", session, "--to", "keras", "--out", archive)))
        times.setdefault((name, "specbench import"), []).append(
            timed(lambda: run("import", archive, "--out", os.path.join(work, name + "-back"))))
        model = None

        def load():
            global model
            model = keras.saving.load_model(archive)

        times.setdefault((name, "keras load_model"), []).append(timed(load))
        times.setdefault((name, "keras save"), []).append(timed(lambda: model.save(os.path.join(work, name + "-keras.keras"))))

for name in sessions:
    medians = {what: statistics.median(values) for (model, what), values in times.items() if model == name}
    print(f"{name}:")
    for what, value in medians.items():
        print(f"  {what:18s} {value * 1000:8.1f} ms")
    print(f"  export / keras save       {medians['specbench export'] / medians['keras save']:.2f}")
    print(f"  import / keras load_model {medians['specbench import'] / medians['keras load_model']:.2f}")
