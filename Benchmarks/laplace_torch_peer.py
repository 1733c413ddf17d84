"""laplace-torch on a session exported with `specbench export --to pytorch` (its `model/…`
state_dict and `data/…` tensors): the same posterior `specbench posterior` fits, timed.

Usage: laplace_torch_peer.py EXPORT.safetensors SUBSET HESSIAN ACTIVATION
Prints one JSON line: seconds to fit, to tune the prior precision by the marginal likelihood,
and to predict the validation split with the probit predictive, and the NLL and accuracy there.
The MLP is rebuilt from the state_dict: its Linear layers in order with ACTIVATION between.
"""
import json
import sys
import time

import torch
from laplace import Laplace
from safetensors.torch import load_file

path, subset, hessian, activation = sys.argv[1:5]
tensors = load_file(path)
weights = sorted({k[len("model/"):].rsplit(".", 1)[0] for k in tensors if k.startswith("model/")}, key=lambda n: int(n))
layers = []
for i, name in enumerate(weights):
    w, b = tensors[f"model/{name}.weight"], tensors[f"model/{name}.bias"]
    linear = torch.nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        linear.weight.copy_(w)
        linear.bias.copy_(b)
    layers.append(linear)
    if i < len(weights) - 1:
        layers.append({"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[activation]())
model = torch.nn.Sequential(*layers)
x, y = tensors["data/inputs"], tensors["data/targets"].long().reshape(-1)
vx, vy = tensors["data/val_inputs"], tensors["data/val_targets"].long().reshape(-1)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=256)

start = time.perf_counter()
la = Laplace(model, "classification", subset_of_weights=subset, hessian_structure=hessian)
la.fit(loader)
fitted = time.perf_counter()
la.optimize_prior_precision(method="marglik", n_steps=100)
tuned = time.perf_counter()
with torch.no_grad():
    p = la(vx, pred_type="glm", link_approx="probit")
predicted = time.perf_counter()
nll = float(-torch.log(p[torch.arange(len(vy)), vy].clamp_min(1e-300)).mean())
accuracy = float((p.argmax(1) == vy).float().mean())
print(json.dumps({
    "fit_s": fitted - start, "tune_s": tuned - fitted, "predict_s": predicted - tuned, "total_s": predicted - start,
    "prior_precision": float(la.prior_precision), "nll": nll, "accuracy": accuracy,
}))
