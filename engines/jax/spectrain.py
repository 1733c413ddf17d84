"""A session trained in the worker (docs/jax.md, "Training"): the spec's state resident on the
devices, and up to K updates a request in one compiled loop.

What the host computes, in double precision or exact integers, as SpecBench's own backends do:
the batches' sample indices (`specdata`), the scheduled rate and the optimizer's coefficients of
each update (`specoptim.coefficients`), and the dropout masks from the format's generator. What
the devices compute: everything else, in float32. The loop's inputs have fixed shapes — K_max
updates of a batch padded to B rows, with a weight of 0 on the padding and a count of updates
to make — so that one compilation serves every request, the short last batch of an epoch and
every rate included.
"""

import json
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import specdata
import specmodel
import specoptim

#: Bytes of per-update inputs (indices, row weights, dropout masks) one request may send to the
#: devices; K_max is what fits, at most MAX_CHUNK.
INPUT_BUDGET = 16 << 20
MAX_CHUNK = 512
#: Rows of one evaluation request, before rounding up to a multiple of the device count.
EVAL_ROWS = 2048


class RequestError(Exception):
    """A request this session cannot answer; the conversation goes on."""


def rate(schedule, t, lr):
    """The scheduled rate of update `t` (docs/spec-format.md, "schedule"), in double precision."""
    t = max(1, t - int(schedule.get("start", 0)))
    kind = schedule.get("type", "constant")

    def cosine(k, t_max, eta_min):
        return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * min(k, t_max) / t_max)) / 2

    if kind == "constant":
        return lr
    if kind == "step":
        return lr * math.pow(schedule.get("gamma", 0.1), (t - 1) // int(schedule["step_size"]))
    if kind == "exponential":
        return lr * math.pow(schedule["gamma"], t - 1)
    if kind == "cosine":
        return cosine(t - 1, int(schedule["t_max"]), schedule.get("eta_min", 0.0))
    if kind == "warmup_cosine":
        warmup = int(schedule["warmup_steps"])
        if t <= warmup:
            return lr * t / warmup
        return cosine(t - warmup - 1, int(schedule["t_max"]) - warmup, schedule.get("eta_min", 0.0))
    raise RequestError(f"schedule.type: the jax worker has no schedule {kind!r}")


def counter(header, key, low=0, high=(1 << 63) - 1):
    value = header.get(key)
    if isinstance(value, str):  # 64-bit values travel as decimal strings
        try:
            value = int(value, 10)
        except ValueError:
            value = None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RequestError(f"state.{key} must be a whole number from {low} to {high}")
    return value


class Session:
    """The parameters, buffers, optimizer slots, counters and data of one trainer."""

    def __init__(self, header, tensors):
        spec = header.get("spec")
        if not isinstance(spec, dict) or not all(isinstance(spec.get(k), dict) for k in ("model", "loss", "optimizer", "training")):
            raise RequestError("load: the header's spec needs the model, loss, optimizer and training objects")
        self.model, self.loss_spec, self.optimizer = spec["model"], spec["loss"], spec["optimizer"]
        self.schedule = spec.get("schedule") or {"type": "constant"}
        self.base_lr = float(self.optimizer.get("lr", 0.001))
        training = spec["training"]
        state = header.get("state")
        if not isinstance(state, dict):
            raise RequestError("load: the header needs the state's counters")
        self.batch_size = counter(training, "batch_size", 1, 1 << 31)
        self.step = counter(state, "step")
        self.optimizer_steps = counter(state, "optimizer_steps")
        self.dropout_rng = counter(state, "dropout_rng", 0, specdata.MASK)
        seed = counter(state, "epoch_order_seed", 0, specdata.MASK)
        index, epoch = counter(state, "index"), counter(state, "epoch")

        self.data = {}
        for part in ("train", "validation"):
            inputs, targets = tensors.pop(f"data/{part}/input", None), tensors.pop(f"data/{part}/target", None)
            if inputs is None or targets is None:
                if part == "train":
                    raise RequestError("load: the payload needs data/train/input and data/train/target")
                continue
            if inputs.shape[0] != targets.shape[0] or inputs.shape[0] > 1 << 31:
                raise RequestError(f"load: data/{part} has {inputs.shape[0]} inputs and {targets.shape[0]} targets (at most 2^31)")
            self.data[part] = (inputs.astype(np.float32), targets.astype(np.int32) if targets.dtype.kind in "iu" else targets.astype(np.float32))
        self.count = self.data["train"][0].shape[0]
        if self.count == 0:
            raise RequestError("load: the training data is empty")
        self.sampler = specdata.EpochSampler(self.count, self.batch_size, bool(training.get("shuffle", True)), seed, index, epoch)

        self.params = {k: v for k, v in tensors.items() if k.startswith("param/")}
        self.buffers = {k: v for k, v in tensors.items() if k.startswith("buffer/")}
        self.slot_names = specoptim.slots(self.optimizer)
        self.slots = {}
        for name in self.params:
            for slot in self.slot_names:
                key = f"opt/{name[len('param/'):]}/{slot}"
                if key not in tensors:
                    raise RequestError(f"load: the payload has no optimizer slot {key}")
                self.slots[key] = tensors[key]
        self.param_names = sorted(self.params)

        # The devices: a one-axis mesh over the first `devices` of every process's devices.
        wanted = int(header.get("devices", 1))
        available = jax.devices()
        if not 1 <= wanted <= len(available):
            raise RequestError(f"load: {wanted} devices asked for, {len(available)} available ({', '.join(map(str, available))})")
        self.mesh = Mesh(np.array(available[:wanted]), ("data",))
        self.replicated = NamedSharding(self.mesh, P())
        self.batched = NamedSharding(self.mesh, P("data"))
        self.rows = -(-min(self.batch_size, self.count) // wanted) * wanted  # B, a multiple of the device count
        self.eval_rows = -(-EVAL_ROWS // wanted) * wanted

        sample_shape = self.data["train"][0].shape[1:]
        self.dropout = self._dropout_widths(sample_shape)  # [(layer index, rate, sample width)]
        per_update = self.rows * (4 + 4 + sum(width for _, _, width in self.dropout))
        self.max_chunk = max(1, min(MAX_CHUNK, INPUT_BUDGET // per_update))

        self.device_data = {part: (self.place(x), self.place(t)) for part, (x, t) in self.data.items()}
        self.device_state = (
            {k: self.place(v) for k, v in self.params.items()},
            {k: self.place(v) for k, v in self.buffers.items()},
            {k: self.place(v) for k, v in self.slots.items()},
        )
        started = time.perf_counter()
        self._compile()
        self.compile_seconds = time.perf_counter() - started
        self.last_norms = {}
        # What stays on the host: names and sizes. The values live on the devices (a host copy
        # of the data would double the memory a large dataset takes).
        self.buffer_names = sorted(self.buffers)
        self.part_rows = {part: inputs.shape[0] for part, (inputs, _) in self.data.items()}
        del self.data, self.params, self.buffers, self.slots

    # MARK: placement

    def place(self, host, sharding=None):
        """`host` as an array on the mesh (replicated unless `sharding` says otherwise); every
        process of a group passes the same values, and each places its own shards."""
        sharding = sharding or self.replicated
        if jax.process_count() > 1:
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
        return jax.device_put(host, sharding)

    @staticmethod
    def fetch(array):
        """A replicated array's values on this host."""
        if jax.process_count() > 1:
            return np.asarray(array.addressable_data(0))
        return np.asarray(array)

    def _dropout_widths(self, sample_shape):
        layers = dict(specmodel.dropout_layers(self.model))
        if not layers:
            return []
        widths = {}

        def observe(index, x):
            if index in layers:
                widths[index] = math.prod(x.shape[1:])

        params = {**self.params, **self.buffers}
        jax.eval_shape(lambda x: specmodel.run(self.model, params, x, observe=observe)[0], jax.ShapeDtypeStruct((1,) + sample_shape, jnp.float32))
        return [(index, layers[index], widths[index]) for index in sorted(layers)]

    # MARK: the compiled functions

    def _compile(self):
        model, loss_spec, optimizer = self.model, self.loss_spec, self.optimizer
        names, slot_names, batched, replicated = self.param_names, self.slot_names, self.batched, self.replicated
        dropout_indices = [index for index, _, _ in self.dropout]

        def one_step(params, buffers, slots, x, t, w, c, masks):
            def objective(trainable):
                y, moved = specmodel.run(model, {**buffers, **trainable}, x, training=True, weights=w, masks=masks)
                return (specmodel.sample_losses(loss_spec, y, t) * w).sum() / w.sum(), (y, moved)

            (value, (y, moved)), grads = jax.value_and_grad(objective, has_aux=True)(params)
            new_params, new_slots = {}, {}
            for name in names:
                short = name[len("param/") :]
                state = {slot: slots[f"opt/{short}/{slot}"] for slot in slot_names}
                new_params[name], state = specoptim.apply(optimizer, params[name], grads[name], state, c)
                for slot, v in state.items():
                    new_slots[f"opt/{short}/{slot}"] = v
            measure = specmodel.batch_measures(loss_spec, y, t, w)
            return value, measure, grads, new_params, {**buffers, **moved}, new_slots

        def finite(tensor):
            return jnp.isfinite(tensor).all()

        def updated_finite(new_params, new_buffers, new_slots):
            """Per tensor of the update, in the order of `names` (a parameter with its slots),
            then the buffers."""
            flags = [finite(new_params[n]) & jnp.all(jnp.stack([finite(new_slots[f"opt/{n[6:]}/{s}"]) for s in slot_names] or [True])) for n in names]
            return jnp.stack(flags + [finite(new_buffers[b]) for b in sorted(new_buffers)])

        def make_chunk(careful):
            """The loop over a request's updates. The fast loop checks each update's loss (a
            scalar) and, once at the end, every tensor: checking every gradient and updated
            tensor at every update is a pass over the model each time (a tenth of an MLP's
            step). A request that fails is made again by the careful loop, which checks them
            all at every update and stops at the first that is not finite."""

            def chunk(params, buffers, slots, data_x, data_y, indices, weights, coefficients, masks, count):
                k_max = indices.shape[0]
                carry = {
                    "params": params, "buffers": buffers, "slots": slots,
                    "done": jnp.int32(0), "failed": jnp.bool_(False), "kind": jnp.int32(0), "tensor": jnp.int32(0),
                    "losses": jnp.zeros(k_max, jnp.float32), "measures": jnp.zeros(k_max, jnp.float32),
                    "norms": jnp.zeros(len(names), jnp.float32),
                }  # fmt: skip

                def more(carry):
                    return (carry["done"] < count) & ~carry["failed"]

                def body(carry):
                    i = carry["done"]
                    ids = indices[i]
                    x = jax.lax.with_sharding_constraint(data_x[ids], batched)
                    t = jax.lax.with_sharding_constraint(data_y[ids], batched)
                    w = jax.lax.with_sharding_constraint(weights[i], batched)
                    c = {name: coefficients[i, j] for j, name in enumerate(specoptim.COEFFICIENTS)}
                    step_masks = {index: jax.lax.with_sharding_constraint(masks[n][i], batched) for n, index in enumerate(dropout_indices)}
                    value, measure, grads, new_params, new_buffers, new_slots = one_step(
                        carry["params"], carry["buffers"], carry["slots"], x, t, w, c, step_masks
                    )
                    loss_ok = jnp.isfinite(value)
                    kind, tensor = jnp.where(loss_ok, 0, 1), jnp.int32(0)
                    if careful:
                        gradient_finite = jnp.stack([finite(grads[n]) for n in names])
                        updated = updated_finite(new_params, new_buffers, new_slots)
                        # 1: the loss, 2: a gradient, 3: the update (`tensor` says which).
                        kind = jnp.where(~loss_ok, 1, jnp.where(~gradient_finite.all(), 2, jnp.where(~updated.all(), 3, 0)))
                        tensor = jnp.where(kind == 2, jnp.argmin(gradient_finite), jnp.argmin(updated)).astype(jnp.int32)
                    ok = kind == 0
                    # The dashboard's gradient norms: those of a request's last update.
                    norms = jax.lax.cond(
                        ok & (i + 1 == count),
                        lambda: jnp.stack([jnp.sqrt((grads[n] * grads[n]).sum()) for n in names]),
                        lambda: carry["norms"],
                    )
                    # A failed update is carried too (keeping the one before would cost a select
                    # of every tensor at every update): the loop stops, and `train` goes back to
                    # the state before the request and makes the good updates again.
                    return {
                        "params": new_params, "buffers": new_buffers, "slots": new_slots,
                        "done": i + ok.astype(jnp.int32), "failed": ~ok, "kind": kind.astype(jnp.int32), "tensor": tensor,
                        "losses": carry["losses"].at[i].set(value), "measures": carry["measures"].at[i].set(measure),
                        "norms": norms,
                    }  # fmt: skip

                out = jax.lax.while_loop(more, body, carry)
                out["all_finite"] = updated_finite(out["params"], out["buffers"], out["slots"]).all()
                return out

            return chunk

        def evaluate(params, buffers, data_x, data_y, ids, w):
            x = jax.lax.with_sharding_constraint(data_x[ids], batched)
            t = jax.lax.with_sharding_constraint(data_y[ids], batched)
            y = specmodel.run(model, {**params, **buffers}, x)[0]
            # The outputs gathered on every device: each process reads them whole.
            value = (specmodel.sample_losses(loss_spec, y, t) * w).sum() / w.sum()
            return value, jax.lax.with_sharding_constraint(y, replicated)

        def infer(params, buffers, x):
            y = specmodel.run(model, {**params, **buffers}, jax.lax.with_sharding_constraint(x, batched))[0]
            return jax.lax.with_sharding_constraint(y, replicated)

        params, buffers, slots = self.device_state
        train_x, train_y = self.device_data["train"]
        example = (params, buffers, slots, train_x, train_y, *self._chunk_inputs(0, [], [], []))
        self._chunk = jax.jit(make_chunk(False), donate_argnums=(0, 1, 2)).lower(*example).compile()
        self._careful_chunk = jax.jit(make_chunk(True), donate_argnums=(0, 1, 2))  # compiled when a request first fails
        self._copy = jax.jit(lambda state: jax.tree.map(jnp.copy, state)).lower(self.device_state).compile()
        ids, w = self._eval_inputs(0, 1)
        self._evaluate = {part: jax.jit(evaluate).lower(params, buffers, x, t, ids, w).compile() for part, (x, t) in self.device_data.items()}
        self._infer = jax.jit(infer)

    # MARK: requests

    def _chunk_inputs(self, count, batches, rates, dropout_masks):
        """The loop's inputs for `count` updates: indices and weights `[K_max, B]`, the
        coefficients `[K_max, 6]`, each dropout layer's masks `[K_max, B, width]`."""
        k_max, rows = self.max_chunk, self.rows
        indices = np.zeros((k_max, rows), np.int32)
        weights = np.zeros((k_max, rows), np.float32)
        coefficients = np.zeros((k_max, len(specoptim.COEFFICIENTS)), np.float32)
        for j, batch in enumerate(batches):
            indices[j, : len(batch)] = batch
            weights[j, : len(batch)] = 1
            k = self.optimizer_steps + j + 1
            coefficients[j] = specoptim.coefficients(self.optimizer, k, rates[j])
        masks = [np.zeros((k_max, rows, width), np.bool_) for _, _, width in self.dropout]
        for j, per_layer in enumerate(dropout_masks):
            for n, mask in enumerate(per_layer):
                masks[n][j, : mask.shape[0]] = mask
        return (
            self.place(indices), self.place(weights), self.place(coefficients),
            [self.place(m) for m in masks], self.place(np.int32(count)),
        )  # fmt: skip

    def train(self, header):
        """Up to `steps` updates (at most K_max), stopping after a batch that ends an epoch when
        `stop_at_epoch_end`; the reply lists each update and the first failure (docs/jax.md)."""
        steps = header.get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise RequestError("train: steps must be a positive whole number")
        steps = min(steps, self.max_chunk)
        stop_at_epoch_end = bool(header.get("stop_at_epoch_end", False))
        positions, batches, ended = [], [], []
        start_position = (self.sampler.seed, self.sampler.index, self.sampler.epoch)
        for _ in range(steps):
            batch, end = self.sampler.next_batch()
            batches.append(batch)
            ended.append(end)
            positions.append((self.sampler.seed, self.sampler.index, self.sampler.epoch))
            if end and stop_at_epoch_end:
                break
        count = len(batches)
        rates = [rate(self.schedule, self.step + j + 1, self.base_lr) for j in range(count)]
        # Dropout: one uniform per element, row-major over the batch, layer by layer, step by step.
        dropout_masks, dropout_states, state = [], [], self.dropout_rng
        for batch in batches:
            per_layer = []
            for _, layer_rate, width in self.dropout:
                u, state = specdata.uniforms(state, len(batch) * width)
                per_layer.append((u >= np.float32(layer_rate)).reshape(len(batch), width))
            dropout_masks.append(per_layer)
            dropout_states.append(state)

        # What `rewind` goes back to: the loop takes (donates) the state's buffers.
        self.before_chunk = (self._copy_state(), start_position, self.dropout_rng, self.step, self.optimizer_steps, self.last_norms)
        train_x, train_y = self.device_data["train"]
        inputs = self._chunk_inputs(count, batches, rates, dropout_masks)
        out = self._chunk(*self.device_state, train_x, train_y, *inputs)
        self.device_state = (out["params"], out["buffers"], out["slots"])
        done = int(self.fetch(out["done"]))
        if done < count or not bool(self.fetch(out["all_finite"])):
            # Something was not finite: the request made again from its start by the careful
            # loop, which stops at the first update that fails, with that update's state
            # carried; then the good updates once more, to keep their state.
            self.device_state = self.before_chunk[0]
            self.before_chunk = (self._copy_state(),) + self.before_chunk[1:]
            out = self._careful_chunk(*self.device_state, train_x, train_y, *inputs)
            done = int(self.fetch(out["done"]))
            self.device_state = self.before_chunk[0]
            self.before_chunk = (self._copy_state(),) + self.before_chunk[1:]
            again = self._careful_chunk(*self.device_state, train_x, train_y, *inputs[:-1], self.place(np.int32(done)))
            self.device_state = (again["params"], again["buffers"], again["slots"])
            out["norms"] = again["norms"]
        losses, measures = self.fetch(out["losses"]), self.fetch(out["measures"])
        reply = {
            "ok": True,
            "losses": [float(v) for v in losses[:done]],
            "rates": rates[:done],
            "measures": [None if math.isnan(v) else float(v) for v in measures[:done]],
            "ended": ended[:done],
            "failure": None,
        }
        if done < count:
            kind, tensor = int(self.fetch(out["kind"])), int(self.fetch(out["tensor"]))
            tensors = self.param_names + self.buffer_names if kind == 3 else self.param_names
            reply["failure"] = {
                "step": self.step + done + 1,
                "loss": float(losses[done]),
                "kind": {1: "loss", 2: "gradient", 3: "update"}[kind],
                "tensor": None if kind == 1 else tensors[tensor][tensors[tensor].index("/") + 1 :],
            }
            # Back to where the last completed update left the sample order and the generator.
            seed, index, epoch = positions[done - 1] if done else start_position
            self.sampler = specdata.EpochSampler(self.count, self.batch_size, self.sampler.shuffle, seed, index, epoch)
        if done:
            self.dropout_rng = dropout_states[done - 1]
            norms = self.fetch(out["norms"])
            self.last_norms = {name[len("param/") :]: float(v) for name, v in zip(self.param_names, norms)}
        self.step += done
        self.optimizer_steps += done
        reply["state"] = self.counters()
        reply["gradient_norms"] = self.last_norms
        return reply

    def _copy_state(self):
        return self._copy(self.device_state)

    def rewind(self, header):
        """Keeps only the first `keep` updates of the last `train` request (a stop rule fired
        inside its chunk): back to the state before it, and those updates made again — the same
        batches, masks and rates, the same compiled loop, so the same values."""
        keep = header.get("keep")
        if getattr(self, "before_chunk", None) is None:
            raise RequestError("rewind: no train request to go back over")
        if not isinstance(keep, int) or isinstance(keep, bool) or not 0 <= keep <= self.step - self.before_chunk[3]:
            raise RequestError(f"rewind: keep must be from 0 to the {self.step - self.before_chunk[3]} updates of the last request")
        state, (seed, index, epoch), self.dropout_rng, self.step, self.optimizer_steps, self.last_norms = self.before_chunk
        self.device_state = state
        self.sampler = specdata.EpochSampler(self.count, self.batch_size, self.sampler.shuffle, seed, index, epoch)
        self.before_chunk = None
        if keep == 0:
            return {"ok": True, "losses": [], "rates": [], "measures": [], "ended": [], "failure": None, "state": self.counters(), "gradient_norms": self.last_norms}
        return self.train({"steps": keep})

    def counters(self):
        return {
            "step": self.step, "epoch": self.sampler.epoch, "epoch_order_seed": str(self.sampler.seed),
            "index": self.sampler.index, "dropout_rng": str(self.dropout_rng), "optimizer_steps": self.optimizer_steps,
        }  # fmt: skip

    def _eval_inputs(self, start, count):
        ids = np.full(self.eval_rows, start, np.int32)
        ids[:count] = np.arange(start, start + count, dtype=np.int32)
        w = np.zeros(self.eval_rows, np.float32)
        w[:count] = 1
        return self.place(ids), self.place(w)

    def outputs(self, header):
        """The mean loss and the outputs of rows [start, start + count) of a part, in evaluation mode."""
        part = header.get("part")
        if part not in self.part_rows:
            raise RequestError(f"outputs: no data part {json.dumps(part)} (train{', validation' if 'validation' in self.part_rows else ''})")
        total = self.part_rows[part]
        start, count = header.get("start"), header.get("count")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, count)) or not (0 <= start and 1 <= count <= self.eval_rows and start + count <= total):
            raise RequestError(f"outputs: start and count must pick 1 to {self.eval_rows} of the {total} rows")
        params, buffers, _ = self.device_state
        x, t = self.device_data[part]
        value, y = self._evaluate[part](params, buffers, x, t, *self._eval_inputs(start, count))
        return {"ok": True, "loss": float(self.fetch(value))}, np.asarray(self.fetch(y)[:count], np.float32)

    def predict(self, inputs):
        """The outputs for `inputs` in evaluation mode, in padded pieces of `eval_rows` rows."""
        params, buffers, _ = self.device_state
        pieces = []
        for start in range(0, inputs.shape[0], self.eval_rows):
            piece = inputs[start : start + self.eval_rows]
            padded = np.zeros((self.eval_rows,) + inputs.shape[1:], np.float32)
            padded[: piece.shape[0]] = piece
            pieces.append(self.fetch(self._infer(params, buffers, self.place(padded, self.batched)))[: piece.shape[0]])
        return np.concatenate(pieces) if pieces else np.zeros((0,), np.float32)

    def export(self, parameters_only):
        params, buffers, slots = self.device_state
        tensors = {k: self.fetch(v) for k, v in {**params, **buffers}.items()}
        if not parameters_only:
            tensors.update({k: self.fetch(v) for k, v in slots.items()})
        return {k: np.asarray(v, np.float32) for k, v in tensors.items()}
