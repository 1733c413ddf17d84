"""Loading an MNIST-style CSV: SpecBench beside pandas (read_csv, C engine) and numpy.loadtxt,
in one run (Benchmarks/data.sh runs it).

    python3 data_load.py SPECBENCH FOLDER [ROUNDS]

Writes FOLDER/mnist-style.csv once (60,000 rows: a header, a label column and 784 integer
pixel columns, seeded: about 168 MB), then for each round runs every reader in a process of its
own, in turn, so that the machine's noise falls on all of them: SpecBench (`specbench bench
--load`), pandas.read_csv and numpy.loadtxt (float32). Each process reports its own load time;
its peak memory is the child's maximum resident set (wait4). Prints the medians, and the ratios
to pandas measured in the same run.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROWS, PIXELS = 60_000, 784

PANDAS = r"""
import sys, time, resource
import numpy as np, pandas as pd
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
frame = pd.read_csv(sys.argv[1], engine="c")
seconds = time.perf_counter() - start
print(seconds, before, frame.shape[0])
"""

LOADTXT = r"""
import sys, time, resource
import numpy as np
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
array = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, dtype=np.float32)
seconds = time.perf_counter() - start
print(seconds, before, array.shape[0])
"""


def generate(path):
    import numpy as np

    if os.path.exists(path) and os.path.getsize(path) > 100_000_000:
        return
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=ROWS)
    pixels = rng.integers(0, 256, size=(ROWS, PIXELS))
    table = np.column_stack([labels, pixels])
    temporary = path + ".part"
    with open(temporary, "w") as out:
        out.write("label," + ",".join(f"pixel{i}" for i in range(PIXELS)) + "\n")
        np.savetxt(out, table, fmt="%d", delimiter=",")
    os.replace(temporary, path)


def main():
    specbench, folder = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "mnist-style.csv")
    generate(path)
    size = os.path.getsize(path)
    ours = [specbench, "bench", "--load", path, "--json"]
    cache = os.path.join(folder, "cache")
    # SpecBench three ways: parsing (the cache off), a first open (parsing and writing the
    # cache, into an empty one), and a second open (reading the cache that one wrote).
    readers = {
        "specbench parse": (ours, {"SPECBENCH_CACHE": "off"}),
        "specbench 1st open": (ours, {"SPECBENCH_CACHE_DIR": cache}),
        "specbench 2nd open": (ours, {"SPECBENCH_CACHE_DIR": cache}),
        "pandas": ([sys.executable, "-c", PANDAS, path], {}),
        "numpy.loadtxt": ([sys.executable, "-c", LOADTXT, path], {}),
    }
    results = {name: {"seconds": [], "peak": [], "before": []} for name in readers}
    for _ in range(rounds):
        for name, (command, environment) in readers.items():
            if name == "specbench 1st open":
                shutil.rmtree(cache, ignore_errors=True)
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.dup2(write_fd, 1)
                os.close(read_fd)
                os.execve(command[0], command, {**os.environ, **environment})
            os.close(write_fd)
            with os.fdopen(read_fd) as pipe:
                out = pipe.read()
            _, status, usage = os.wait4(pid, 0)
            if status != 0:
                raise SystemExit(f"{name} failed (status {status})")
            if name.startswith("specbench"):
                report = json.loads(out)
                seconds, before = report["seconds"], report["baseline_bytes"]
            else:
                seconds, before, _ = out.split()
                seconds, before = float(seconds), int(before)
            results[name]["seconds"].append(float(seconds))
            results[name]["before"].append(int(before))
            results[name]["peak"].append(usage.ru_maxrss * 1024)
    arrays = ROWS * PIXELS * 4 + ROWS * 8
    pandas_seconds = statistics.median(results["pandas"]["seconds"])
    print(f"{path}: {size / 1e6:.0f} MB, {ROWS} rows × {PIXELS} pixels; arrays (float32 inputs, labels) {arrays / 1e6:.0f} MB; "
          f"medians of {rounds} rounds")
    print(f"{'reader':<19} {'seconds':>8} {'÷ pandas':>9} {'peak MB':>8} {'before MB':>10} {'peak ÷ arrays':>14}")
    for name, r in results.items():
        seconds = statistics.median(r["seconds"])
        peak = statistics.median(r["peak"])
        before = statistics.median(r["before"])
        print(f"{name:<19} {seconds:>8.3f} {seconds / pandas_seconds:>9.2f} {peak / 1e6:>8.0f} {before / 1e6:>10.0f} "
              f"{peak / arrays:>14.2f}")


if __name__ == "__main__":
    main()
