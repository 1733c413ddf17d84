"""Training on mapped data: SpecBench binaries side by side, each run in a process of its own,
alternating, ROUNDS times. Prints seconds, peak resident memory (the kernel's maximum, which
counts the data file's pages the run touched) and peak anonymous memory (sampled every 5 ms from
/proc: the memory a run cannot give back), medians over the rounds.

Cases (files written once into FOLDER and reused):
  idx        MNIST's size: 60,000 images of 28×28 bytes (47 MB) and labels; 300 steps
  npy-f4     the same as float32 .npy, [60000, 784] (188 MB); 300 steps
  csv-text   an MNIST-style CSV (168 MB) whose label column is words with accents
             (zéro, un, …); `bench --load` with the cache off
  cgroup     float32 .npy [65536, 1024] (256 MiB) trained 300 steps inside a memory cgroup of
             96 MiB (only where this process may make one: root and cgroup v1 or v2)

usage: python3 Benchmarks/mapped_train.py FOLDER ROUNDS BINARY [BINARY ...]
"""

import json
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

WORDS = ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"]


def session(folder, name, data, width):
    spec = {
        "format": "specbench/session",
        "version": 6,
        "name": name,
        "backend": "fast",
        "model": {
            "input": width,
            "layers": ([{"type": "flatten"}] if len(width) > 1 else [])
            + [{"type": "dense", "units": 128, "activation": "relu"}, {"type": "dense", "units": 10}],
        },
        "loss": {"type": "softmax_cross_entropy"},
        "optimizer": {"type": "adam", "lr": 0.001},
        "data": dict(data, validation_fraction=0.1),
        "training": {"batch_size": 64, "seed": 1, "stop": [{"type": "max_steps", "steps": 1000000}]},
    }
    path = os.path.join(folder, name + ".json")
    with open(path, "w") as f:
        json.dump(spec, f)
    return path


def idx(path, dims, body):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, len(dims)]))
        for d in dims:
            f.write(int(d).to_bytes(4, "big"))
        f.write(body.tobytes())


def prepare(folder):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(7)
    labels = (np.arange(60000) % 10).astype(np.uint8)
    images = rng.integers(0, 256, size=(60000, 28, 28), dtype=np.uint8)
    cases = {}
    if not os.path.exists(os.path.join(folder, "images.idx")):
        idx(os.path.join(folder, "images.idx"), images.shape, images)
        idx(os.path.join(folder, "labels.idx"), labels.shape, labels)
        np.save(os.path.join(folder, "x.npy"), images.reshape(60000, 784).astype(np.float32) / 255)
        np.save(os.path.join(folder, "y.npy"), labels.astype(np.int64))
    cases["idx"] = ["run", session(folder, "idx", {"type": "idx", "images": "images.idx", "labels": "labels.idx"}, [1, 28, 28]),
                    "--steps", "300"]
    cases["npy-f4"] = ["run", session(folder, "npy", {"type": "npy", "inputs": "x.npy", "targets": "y.npy"}, [784]),
                       "--steps", "300"]
    csv = os.path.join(folder, "text.csv")
    if not os.path.exists(csv):
        with open(csv, "w", encoding="utf-8") as f:
            f.write("label," + ",".join(f"p{i}" for i in range(784)) + "\n")
            flat = images.reshape(60000, 784)
            for r in range(60000):
                f.write(WORDS[labels[r]] + "," + ",".join(map(str, flat[r])) + "\n")
    cases["csv-text"] = ["bench", "--load", csv, "--target", "label"]
    big = os.path.join(folder, "big")
    os.makedirs(big, exist_ok=True)
    if not os.path.exists(os.path.join(big, "x.npy")):
        x = rng.random((65536, 1024), dtype=np.float32) - 0.5
        y = (np.arange(65536) % 10).astype(np.int64)
        np.save(os.path.join(big, "x.npy"), x)
        np.save(os.path.join(big, "y.npy"), y)
    cases["cgroup"] = ["run", session(big, "big", {"type": "npy", "inputs": "x.npy", "targets": "y.npy"}, [1024]),
                       "--steps", "300"]
    return cases


def cgroup(limit):
    """A memory cgroup of `limit` bytes this process may put a child in, or None."""
    name = f"specbench-bench-{os.getpid()}"
    for root, limit_file in (("/sys/fs/cgroup/memory", "memory.limit_in_bytes"), ("/sys/fs/cgroup", "memory.max")):
        path = os.path.join(root, name)
        try:
            if not os.path.exists(path):
                os.mkdir(path)
            with open(os.path.join(path, limit_file), "w") as f:
                f.write(str(limit))
            return path
        except OSError:
            try:
                os.rmdir(path)
            except OSError:
                pass
    return None


def measure(binary, arguments, group=None, drop=None):
    env = dict(os.environ, SPECBENCH_CACHE="off")
    if drop:
        fd = os.open(drop, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    command = [binary] + arguments
    if group:
        command = ["/bin/sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh"] + command
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak_anon = [0]

    def sample():
        while process.poll() is None:
            try:
                with open(f"/proc/{process.pid}/status") as f:
                    for line in f:
                        if line.startswith("RssAnon:"):
                            peak_anon[0] = max(peak_anon[0], int(line.split()[1]) * 1024)
            except OSError:
                pass
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace").strip().splitlines()
    outcome = "ok" if process.returncode == 0 else f"exit {process.returncode}" + (f": {error[-1][:60]}" if error else "")
    if process.returncode < 0:
        outcome = f"killed by signal {-process.returncode}"
    return seconds, usage.ru_maxrss * 1024, peak_anon[0], outcome


def main():
    folder, rounds, binaries = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    cases = prepare(folder)
    group = cgroup(96 << 20)
    results = {}
    for _ in range(rounds):
        for name, arguments in cases.items():
            if name == "cgroup" and group is None:
                continue
            for binary in binaries:
                drop = os.path.join(folder, "big", "x.npy") if name == "cgroup" else None
                results.setdefault((name, binary), []).append(measure(binary, arguments, group if name == "cgroup" else None, drop))
    if group:
        os.rmdir(group)
    else:
        print("cgroup: skipped (no memory cgroup can be made here: needs root and a cgroup memory controller)")
    print(f"{'case':9} {'binary':34} {'seconds':>8} {'peak MB':>8} {'anon MB':>8}  outcome")
    for (name, binary), runs in results.items():
        seconds = statistics.median(r[0] for r in runs)
        peak = statistics.median(r[1] for r in runs) / 1e6
        anon = statistics.median(r[2] for r in runs) / 1e6
        outcomes = ", ".join(sorted(set(r[3] for r in runs)))
        print(f"{name:9} {binary[-34:]:34} {seconds:8.2f} {peak:8.0f} {anon:8.0f}  {outcomes}")


if __name__ == "__main__":
    main()
