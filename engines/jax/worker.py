"""SpecBench's jax worker: answers framed requests on its standard input and output.

The protocol is docs/jax.md's. This file takes the protocol off fd 1 before anything else is
imported, so that native libraries printing to fd 1 cannot corrupt a frame.
"""

import os
import sys

# The protocol streams: duplicates of fd 0 and fd 1. Then fd 1 points at standard error, so that
# a stray print (ours, jax's, Gloo's) goes there.
_PROTOCOL_IN = os.fdopen(os.dup(0), "rb", buffering=0)
_PROTOCOL_OUT = os.fdopen(os.dup(1), "wb", buffering=0)
os.dup2(2, 1)
sys.stdout = sys.stderr

import json  # noqa: E402
import platform  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402

MAGIC = b"SBJ1"
PROTOCOL = 1
MAX_HEADER = 1 << 20
MAX_PAYLOAD = 1 << 40
TESTING = os.environ.get("SPECBENCH_ENGINE_TEST") == "1"


class ProtocolError(Exception):
    """A frame that breaks the rules: the conversation cannot go on."""


def read_exact(count):
    """Reads exactly `count` bytes, looping over short reads; None at end of file before any."""
    chunks = []
    remaining = count
    while remaining > 0:
        chunk = _PROTOCOL_IN.read(min(remaining, 1 << 20))
        if not chunk:
            if remaining == count:
                return None
            raise ProtocolError(f"the stream ended {remaining} bytes before the frame did")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame():
    """The next request as (header, payload), or None when the parent closed the stream."""
    prefix = read_exact(16)
    if prefix is None:
        return None
    if prefix[:4] != MAGIC:
        raise ProtocolError(f"expected the magic SBJ1, got {prefix[:4]!r}")
    header_length, payload_length = struct.unpack("<IQ", prefix[4:])
    if not 1 <= header_length <= MAX_HEADER:
        raise ProtocolError(f"header length {header_length} is outside 1 to {MAX_HEADER}")
    if payload_length > MAX_PAYLOAD:
        raise ProtocolError(f"payload length {payload_length} is above 2^40")
    raw = read_exact(header_length)
    payload = read_exact(payload_length) if payload_length else b""
    if raw is None or payload is None:
        raise ProtocolError("the stream ended inside a frame")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ProtocolError(f"the header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise ProtocolError("the header is not a JSON object")
    return header, payload


def plain(value):
    """`value` with every float JSON cannot hold (NaN, ±infinity) as the strings nan, inf, -inf."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def write_frame(header, payload=b""):
    raw = json.dumps(plain(header), sort_keys=True, allow_nan=False).encode("utf-8")
    _PROTOCOL_OUT.write(MAGIC + struct.pack("<IQ", len(raw), len(payload)) + raw)
    if payload:
        _PROTOCOL_OUT.write(payload)


_JAX_STARTED = False


def start_jax():
    """Imports jax once, configured from the environment before its first use (docs/jax.md,
    "Devices and processes"): SPECBENCH_JAX_DEVICES forces that many CPU devices;
    SPECBENCH_JAX_COORDINATOR, SPECBENCH_JAX_PROCESSES and SPECBENCH_JAX_PROCESS_ID join a group
    of processes; SPECBENCH_JAX_CACHE is the persistent compilation cache's folder."""
    global _JAX_STARTED
    import jax  # noqa: PLC0415 (imported only when asked: it takes half a second)

    if _JAX_STARTED:
        return jax
    _JAX_STARTED = True
    devices = os.environ.get("SPECBENCH_JAX_DEVICES")
    if devices:
        jax.config.update("jax_num_cpu_devices", int(devices))
    cache = os.environ.get("SPECBENCH_JAX_CACHE")
    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    coordinator = os.environ.get("SPECBENCH_JAX_COORDINATOR")
    if coordinator:
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=int(os.environ["SPECBENCH_JAX_PROCESSES"]),
            process_id=int(os.environ["SPECBENCH_JAX_PROCESS_ID"]),
            initialization_timeout=60,
            # SpecBench watches every process of the group and stops them all when one ends;
            # this bounds what is left to JAX (its default is 100 s).
            heartbeat_timeout_seconds=10,
            shutdown_timeout_seconds=10,
        )
    return jax


def hello():
    reply = {"ok": True, "protocol": PROTOCOL, "python": platform.python_version(), "jax": None, "devices": None}
    try:
        jax = start_jax()
        reply["jax"] = jax.__version__
        reply["devices"] = [str(device) for device in jax.devices()]
        reply["processes"] = jax.process_count()
    except Exception as error:  # noqa: BLE001 (any failure means: no jax here)
        reply["jax_error"] = f"{type(error).__name__}: {error}"
    return reply


SESSION = None


def load(header, payload):
    """Starts a session from the spec, its state and its data (docs/jax.md, "Training")."""
    global SESSION
    start_jax()
    from safetensors.numpy import load as load_tensors  # noqa: PLC0415

    import spectrain  # noqa: PLC0415

    SESSION = None
    SESSION = spectrain.Session(header, load_tensors(payload))
    import jax  # noqa: PLC0415

    return {
        "ok": True,
        "compile_seconds": SESSION.compile_seconds,
        "max_steps": SESSION.max_chunk,
        "eval_rows": SESSION.eval_rows,
        "devices": [str(d) for d in SESSION.mesh.devices.flat],
        "processes": jax.process_count(),
    }, b""


def fault():
    """Test only (SPECBENCH_ENGINE_TEST=1): SPECBENCH_ENGINE_FAULT=KIND:STEP makes a `train`
    request that starts at or past STEP fail as KIND says — abort (SIGABRT, as a crash in XLA),
    exit, hang, or garbage on the protocol stream; SPECBENCH_ENGINE_FAULT_PROCESS limits it to
    one process of a group, and SPECBENCH_ENGINE_FAULT_ONCE=FILE to the first worker that gets
    there (it creates FILE)."""
    spec = os.environ.get("SPECBENCH_ENGINE_FAULT")
    if not TESTING or not spec or SESSION is None:
        return
    process = os.environ.get("SPECBENCH_ENGINE_FAULT_PROCESS")
    if process is not None and process != os.environ.get("SPECBENCH_JAX_PROCESS_ID", "0"):
        return
    kind, _, step = spec.partition(":")
    if SESSION.step < int(step or "0"):
        return
    once = os.environ.get("SPECBENCH_ENGINE_FAULT_ONCE")  # a file: the fault fires while it is absent
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    sys.stderr.write(f"specbench jax worker: injected fault {kind} at step {SESSION.step}\n")
    sys.stderr.flush()
    if kind == "abort":
        os.abort()
    if kind == "exit":
        os._exit(5)
    if kind == "hang":
        while True:
            time.sleep(60)
    if kind == "garbage":
        _PROTOCOL_OUT.write(b"not a frame" * 8)
        while True:
            time.sleep(60)


def session_request(op, header, payload):
    """A request to the loaded session: train, outputs, export, or predict without a model."""
    from safetensors.numpy import load as load_tensors  # noqa: PLC0415
    from safetensors.numpy import save  # noqa: PLC0415

    import spectrain  # noqa: PLC0415

    if SESSION is None:
        raise spectrain.RequestError(f"{op}: no session is loaded (send load first)")
    if op == "train":
        fault()
        return SESSION.train(header), b""
    if op == "rewind":
        return SESSION.rewind(header), b""
    if op == "outputs":
        reply, output = SESSION.outputs(header)
        return reply, save({"output": output})
    if op == "export":
        return {"ok": True, "state": SESSION.counters()}, save(SESSION.export(bool(header.get("parameters_only", False))))
    tensors = load_tensors(payload)
    if "input" not in tensors:
        raise spectrain.RequestError("predict: the payload has no tensor named input")
    return {"ok": True}, save({"output": SESSION.predict(tensors["input"].astype("float32"))})


def predict(header, payload):
    """The model's outputs, in evaluation mode, for the payload's `input` (docs/jax.md)."""
    start_jax()
    import numpy as np  # noqa: PLC0415 (jax and its kin load on the first request that needs them)
    from safetensors.numpy import load, save  # noqa: PLC0415

    import specmodel  # noqa: PLC0415

    tensors = load(payload)
    if "input" not in tensors:
        return {"ok": False, "error": "predict: the payload has no tensor named input"}, b""
    model = header.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("layers"), list):
        return {"ok": False, "error": "predict: the header's model must be the spec's model object"}, b""
    try:
        output = specmodel.forward(model, tensors, tensors["input"])
    except specmodel.SpecError as error:
        return {"ok": False, "error": f"predict: {error}"}, b""
    except KeyError as error:
        return {"ok": False, "error": f"predict: the payload has no tensor {error}"}, b""
    return {"ok": True}, save({"output": np.asarray(output, dtype=np.float32)})


def gradients(header, payload):
    """The batch's mean loss in training mode and the gradient of every parameter (docs/jax.md)."""
    start_jax()
    import numpy as np  # noqa: PLC0415
    from safetensors.numpy import load, save  # noqa: PLC0415

    import specmodel  # noqa: PLC0415

    tensors = load(payload)
    missing = [name for name in ("input", "target") if name not in tensors]
    if missing:
        return {"ok": False, "error": f"gradients: the payload has no tensor named {missing[0]}"}, b""
    model, loss_spec = header.get("model"), header.get("loss")
    if not isinstance(model, dict) or not isinstance(loss_spec, dict):
        return {"ok": False, "error": "gradients: the header needs the spec's model and loss objects"}, b""
    params = {name: value for name, value in tensors.items() if name not in ("input", "target")}
    try:
        value, grads = specmodel.loss_and_gradients(model, loss_spec, params, tensors["input"], tensors["target"])
    except specmodel.SpecError as error:
        return {"ok": False, "error": f"gradients: {error}"}, b""
    except KeyError as error:
        return {"ok": False, "error": f"gradients: the payload has no tensor {error}"}, b""
    out = {"grad/" + name[len("param/") :]: np.asarray(g, dtype=np.float32) for name, g in grads.items()}
    return {"ok": True, "loss": float(value)}, save(out)


def optimizer_update(header, payload):
    """One update of every parameter by the spec's optimizer rule (docs/jax.md)."""
    start_jax()
    import numpy as np  # noqa: PLC0415
    from safetensors.numpy import load, save  # noqa: PLC0415

    import specoptim  # noqa: PLC0415

    optimizer, step, lr = header.get("optimizer"), header.get("step"), header.get("lr")
    if not isinstance(optimizer, dict) or not isinstance(step, int) or step < 1 or not isinstance(lr, (int, float)):
        return {"ok": False, "error": "update: the header needs the spec's optimizer object, step (k ≥ 1) and lr"}, b""
    tensors = load(payload)
    out = {}
    try:
        names = specoptim.slots(optimizer)
        for key in sorted(k for k in tensors if k.startswith("param/")):
            name = key[len("param/") :]
            state = {slot: tensors[f"opt/{name}/{slot}"] for slot in names}
            p, state = specoptim.update(optimizer, tensors[key], tensors[f"grad/{name}"], state, step, float(lr))
            out[key] = np.asarray(p, dtype=np.float32)
            for slot, value in state.items():
                out[f"opt/{name}/{slot}"] = np.asarray(value, dtype=np.float32)
    except ValueError as error:
        return {"ok": False, "error": f"update: {error}"}, b""
    except KeyError as error:
        return {"ok": False, "error": f"update: the payload has no tensor {error}"}, b""
    return {"ok": True}, save(out)


def batches(header):
    """The sample indices of the next `steps` batches under the format's data order (docs/jax.md).
    64-bit seeds travel as decimal strings: JSON numbers are doubles."""
    import numpy as np  # noqa: PLC0415
    from safetensors.numpy import save  # noqa: PLC0415

    import specdata  # noqa: PLC0415

    try:
        count, batch_size, steps = int(header["count"]), int(header["batch_size"]), int(header["steps"])
        seed = int(header["epoch_order_seed"]) if "epoch_order_seed" in header else None
        training_seed = int(header.get("training_seed", "0"))
    except (KeyError, TypeError, ValueError) as error:
        return {"ok": False, "error": f"batches: the header needs count, batch_size, steps and a seed ({error})"}, b""
    if count < 1 or batch_size < 1 or not 0 <= steps <= 1_000_000:
        return {"ok": False, "error": "batches: count and batch_size must be positive, steps from 0 to 1,000,000"}, b""
    # The sizes are checked before the orders and the reply are built: at most 2^31 samples and
    # 10^8 indices in one reply.
    if count > 1 << 31 or steps * min(batch_size, count) > 100_000_000:
        return {"ok": False, "error": "batches: at most 2^31 samples and 100,000,000 indices in one request; ask for fewer steps"}, b""
    if seed is None:
        seed = specdata.initial_epoch_order_seed(training_seed)
    sampler = specdata.EpochSampler(
        count, batch_size, bool(header.get("shuffle", True)), seed, int(header.get("index", 0)), int(header.get("epoch", 0))
    )
    indices, sizes, ended = [], [], []
    for _ in range(steps):
        batch, end = sampler.next_batch()
        indices += batch
        sizes.append(len(batch))
        ended.append(int(end))
    position = {"epoch_order_seed": str(sampler.seed), "index": sampler.index, "epoch": sampler.epoch}
    arrays = {
        "indices": np.asarray(indices, dtype=np.int64),
        "sizes": np.asarray(sizes, dtype=np.int64),
        "ended": np.asarray(ended, dtype=np.int64),
    }
    return {"ok": True, "position": position}, save(arrays)


def answer(header, payload):
    """The reply to one request, as (header, payload); None for `exit` after replying."""
    op = header.get("op")
    if op == "hello":
        return hello(), b""
    if op in ("load", "train", "rewind", "outputs", "export") or (op == "predict" and "model" not in header):
        try:
            return load(header, payload) if op == "load" else session_request(op, header, payload)
        except Exception as error:  # noqa: BLE001 (every failure of a request is its reply)
            import spectrain  # noqa: PLC0415
            import specmodel  # noqa: PLC0415

            global SESSION
            known = (spectrain.RequestError, specmodel.SpecError, ValueError)
            if isinstance(error, KeyError):
                text = f"the payload or the spec has no {error}"
            else:
                text = str(error) if isinstance(error, known) else f"{type(error).__name__}: {error}"
            if op == "train" and not isinstance(error, spectrain.RequestError):
                SESSION = None  # the compiled loop took the state's buffers: it is gone
            return {"ok": False, "error": f"{op}: {text}" if not text.startswith(op) else text, "session": SESSION is not None}, b""
    if op == "predict":
        return predict(header, payload)
    if op == "gradients":
        return gradients(header, payload)
    if op == "update":
        return optimizer_update(header, payload)
    if op == "batches":
        return batches(header)
    if op == "echo":
        return {"ok": True, "bytes": len(payload)}, payload
    if TESTING and op == "crash":
        os._exit(7)
    if TESTING and op == "sleep":  # answers after `seconds`
        time.sleep(float(header.get("seconds", 0)))
        return {"ok": True}, b""
    if TESTING and op == "hang":
        while True:
            time.sleep(60)
    if TESTING and op == "huge":  # a frame that declares a payload of 2^39 bytes, and stops
        _PROTOCOL_OUT.write(MAGIC + struct.pack("<IQ", 2, 1 << 39) + b"{}")
        return None
    if TESTING and op == "garbage":
        _PROTOCOL_OUT.write(b"this is not a frame\n" * 4)
        return None
    if TESTING and op == "noise":
        sys.stderr.write("x" * int(header.get("bytes", 0)))
        sys.stderr.flush()
        print("a print to fd 1 goes to standard error")
        os.write(1, b"native code writing to fd 1 reaches standard error too\n")
        return {"ok": True}, b""
    return {"ok": False, "error": f"unknown op {json.dumps(op)}"}, b""


def main():
    while True:
        try:
            frame = read_frame()
        except ProtocolError as error:
            sys.stderr.write(f"specbench jax worker: {error}\n")
            return 3
        if frame is None:
            # The parent is gone: nothing is left to answer or to clean up. Exit now, without
            # the interpreter's exit handlers (jax.distributed's would wait for the group).
            sys.stderr.flush()
            os._exit(0)
        header, payload = frame
        if header.get("op") == "exit":
            write_frame({"ok": True})
            return 0
        reply = answer(header, payload)
        if reply is not None:
            write_frame(*reply)


if __name__ == "__main__":
    sys.exit(main())
