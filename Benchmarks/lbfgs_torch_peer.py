"""torch.optim.LBFGS on an exported SpecBench session, timed around the steps alone.

    python3 lbfgs_torch_peer.py EXPORTED_SCRIPT.py STEPS [--each]

Builds the exported script's model, loads its weights, restores its L-BFGS state, makes STEPS
full-batch steps with a closure on two threads, and prints {"seconds": …, "evals": …, "loss": …}.
With --each (the tests' oracle, Tests/SpecBenchCLITests/TorchLBFGSTests.swift) it prints instead
the restored counts, then after each step the loss `step` returned, the state's `n_iter` and
`func_evals` and its `t`, one JSON object a line.
"""
import importlib.util
import json
import sys
import time

import torch
from safetensors.torch import load_file

torch.set_num_threads(2)
spec = importlib.util.spec_from_file_location("exported", sys.argv[1])
exported = importlib.util.module_from_spec(spec)
spec.loader.exec_module(exported)
tensors = load_file(exported.TENSORS)
model = exported.build_model()
model.load_state_dict({name: tensors["model/" + name] for name in exported.EXPECTED}, strict=True)
optimizer = exported.make_optimizer(model)
exported.restore_optimizer(optimizer, model, tensors)
inputs, targets = tensors["data/inputs"], tensors["data/targets"]
state = optimizer.state[next(iter(model.parameters()))]
each = "--each" in sys.argv[3:]
if each:
    print(json.dumps({"n_iter": state["n_iter"], "func_evals": state["func_evals"]}))
start_evals = state["func_evals"]
model.train()
begin = time.perf_counter()
for _ in range(int(sys.argv[2])):
    def closure():
        optimizer.zero_grad()
        loss = exported.loss_function(model(inputs), targets)
        loss.backward()
        return loss
    step_loss = optimizer.step(closure)
    if each:
        print(json.dumps({"loss": float(step_loss), "n_iter": state["n_iter"], "func_evals": state["func_evals"], "t": float(state["t"])}))
seconds = time.perf_counter() - begin
if each:
    sys.exit(0)
with torch.no_grad():
    loss = float(exported.loss_function(model(inputs), targets))
print(json.dumps({"seconds": seconds, "evals": state["func_evals"] - start_evals, "loss": loss}))
