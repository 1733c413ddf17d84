"""Runs worker.py as a child and checks its frames (docs/jax.md): python3 -m unittest here."""

import json
import os
import struct
import subprocess
import sys
import unittest

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")


def frame(header, payload=b""):
    raw = json.dumps(header).encode()
    return b"SBJ1" + struct.pack("<IQ", len(raw), len(payload)) + raw + payload


def read_frames(data):
    frames = []
    while data:
        assert data[:4] == b"SBJ1", data[:16]
        header_length, payload_length = struct.unpack("<IQ", data[4:16])
        header = json.loads(data[16 : 16 + header_length])
        start = 16 + header_length
        frames.append((header, data[start : start + payload_length]))
        data = data[start + payload_length :]
    return frames


def converse(requests, testing=False):
    environment = dict(os.environ, SPECBENCH_ENGINE_TEST="1" if testing else "0")
    result = subprocess.run(
        [sys.executable, WORKER], input=b"".join(requests), capture_output=True, env=environment, timeout=60, check=False
    )
    return result.returncode, read_frames(result.stdout), result.stderr.decode()


def load_request(optimizer, schedule, slots=()):
    """A `load` of a one-layer classifier (2 inputs, 3 classes) on 10 samples in batches of 4,
    or None when numpy, safetensors or jax are missing."""
    try:
        import numpy as np  # noqa: PLC0415
        from safetensors.numpy import save  # noqa: PLC0415

        import jax  # noqa: F401, PLC0415
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    tensors = {
        "param/d.weight": rng.standard_normal((3, 2)).astype(np.float32),
        "param/d.bias": np.zeros(3, np.float32),
        "data/train/input": rng.standard_normal((10, 2)).astype(np.float32),
        "data/train/target": rng.integers(0, 3, 10),
    }
    for name in ("d.weight", "d.bias"):
        for slot in slots:
            tensors[f"opt/{name}/{slot}"] = np.zeros_like(tensors[f"param/{name}"])
    spec = {
        "model": {"layers": [{"type": "dense", "name": "d", "units": 3}]},
        "loss": {"type": "softmax_cross_entropy"},
        "optimizer": optimizer,
        "schedule": schedule,
        "training": {"batch_size": 4, "shuffle": True},
    }
    state = {"step": 0, "epoch": 0, "epoch_order_seed": "18446744073709551615", "index": 0, "dropout_rng": "7", "optimizer_steps": 0}
    return frame({"op": "load", "spec": spec, "state": state}, save(tensors))


NEEDS_JAX = "skipped: needs numpy, safetensors and jax (scripts/setup.sh)"


class ProtocolTests(unittest.TestCase):
    def test_hello_echo_and_exit_in_order(self):
        payload = os.urandom(3 << 20)
        status, frames, _ = converse([frame({"op": "hello"}), frame({"op": "echo"}, payload), frame({"op": "exit"})])
        self.assertEqual(status, 0)
        self.assertEqual(len(frames), 3)
        hello = frames[0][0]
        self.assertEqual((hello["ok"], hello["protocol"]), (True, 1))
        self.assertIn("jax", hello)
        self.assertEqual(frames[1], ({"ok": True, "bytes": len(payload)}, payload))
        self.assertEqual(frames[2][0], {"ok": True})

    def test_an_unknown_op_is_answered_and_the_conversation_goes_on(self):
        status, frames, _ = converse([frame({"op": "trian"}), frame({"op": "echo"}, b"x")])
        self.assertEqual(status, 0)
        self.assertEqual(frames[0][0], {"ok": False, "error": 'unknown op "trian"'})
        self.assertEqual(frames[1], ({"ok": True, "bytes": 1}, b"x"))

    def test_the_test_ops_exist_only_when_asked_for(self):
        _, frames, _ = converse([frame({"op": "crash"})])
        self.assertEqual(frames[0][0]["ok"], False)

    def test_a_print_never_reaches_the_protocol_stream(self):
        status, frames, stderr = converse([frame({"op": "noise", "bytes": 100}), frame({"op": "exit"})], testing=True)
        self.assertEqual(status, 0)
        self.assertEqual([f[0] for f in frames], [{"ok": True}, {"ok": True}])
        self.assertIn("a print to fd 1 goes to standard error", stderr)

    def test_batches_checks_its_sizes_before_building_anything(self):
        request = {"op": "batches", "count": 1 << 40, "batch_size": 64, "steps": 10, "training_seed": "0"}
        status, frames, _ = converse([frame(request), frame({"op": "echo"}, b"y")])
        self.assertEqual(status, 0)
        self.assertEqual(frames[0][0]["ok"], False)
        self.assertIn("at most 2^31 samples", frames[0][0]["error"])
        self.assertEqual(frames[1][1], b"y")

    def test_a_session_loads_trains_rewinds_and_exports(self):
        load = load_request({"type": "sgd", "lr": 0.1, "momentum": 0.9}, {"type": "step", "step_size": 2, "gamma": 0.5}, ["momentum_buffer"])
        if load is None:
            self.skipTest(NEEDS_JAX)
        from safetensors.numpy import load as load_tensors  # noqa: PLC0415

        requests = [
            frame({"op": "train", "steps": 1}),
            load,
            frame({"op": "train", "steps": 5, "stop_at_epoch_end": True}),
            frame({"op": "rewind", "keep": 2}),
            frame({"op": "export", "parameters_only": True}),
            frame({"op": "outputs", "part": "train", "start": 8, "count": 5}),
        ]
        status, frames, stderr = converse(requests)
        self.assertEqual(status, 0, stderr)
        refused, loaded, trained, rewound, exported, outputs = [f[0] for f in frames]
        self.assertEqual(refused["ok"], False)
        self.assertIn("no session is loaded", refused["error"])
        self.assertEqual(loaded["ok"], True, loaded)
        # Batches of 4, 4, 2: the third ends the epoch, where the request stops.
        self.assertEqual(trained["ended"], [False, False, True])
        self.assertEqual(trained["rates"], [0.1, 0.1, 0.05])
        self.assertEqual((trained["state"]["step"], trained["state"]["epoch"], trained["state"]["index"]), (3, 1, 0))
        self.assertEqual(rewound["losses"], trained["losses"][:2])
        self.assertEqual((rewound["state"]["step"], rewound["state"]["index"]), (2, 8))
        self.assertEqual(sorted(load_tensors(frames[4][1])), ["param/d.bias", "param/d.weight"])
        self.assertEqual(exported["state"]["step"], 2)
        self.assertEqual(outputs["ok"], False)
        self.assertIn("must pick 1 to", outputs["error"])

    def test_nothing_compiles_after_load(self):
        """The short last batch of an epoch, a new rate at every update and any number of
        updates a request run on what `load` compiled."""
        load = load_request({"type": "sgd", "lr": 0.1}, {"type": "cosine", "t_max": 7})
        if load is None:
            self.skipTest(NEEDS_JAX)
        more = [frame({"op": "train", "steps": k}) for k in (1, 3, 5, 2)] + [frame({"op": "outputs", "part": "train", "start": 7, "count": 3})]

        def compilations(requests):
            environment = dict(os.environ, JAX_LOG_COMPILES="1")
            result = subprocess.run([sys.executable, WORKER], input=b"".join(requests), capture_output=True, env=environment, timeout=120, check=False)
            frames = read_frames(result.stdout)
            self.assertTrue(all(f[0]["ok"] for f in frames), frames)
            return result.stderr.decode().count("Compiling ")

        after_load = compilations([load])
        self.assertGreater(after_load, 0)
        self.assertEqual(compilations([load] + more), after_load)

    def test_malformed_frames_end_the_conversation_saying_why(self):
        cases = [
            (b"XXXX" + bytes(12), "expected the magic SBJ1"),
            (b"SBJ1" + struct.pack("<IQ", 0, 0), "header length 0 is outside"),
            (b"SBJ1" + struct.pack("<IQ", 5, 1 << 41), "payload length 2199023255552 is above 2^40"),
            (b"SBJ1" + struct.pack("<IQ", 5, 0) + b"[1,2]", "the header is not a JSON object"),
            (b"SBJ1" + struct.pack("<IQ", 9, 0) + b"{", "the stream ended 8 bytes before the frame did"),
        ]
        for data, message in cases:
            with self.subTest(message=message):
                status, frames, stderr = converse([data])
                self.assertEqual((status, frames), (3, []))
                self.assertIn(message, stderr)


if __name__ == "__main__":
    unittest.main()
