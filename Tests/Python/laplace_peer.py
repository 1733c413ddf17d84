"""laplace-torch (the library users of Laplace approximations know) on a SpecBench session's
weights and data, for the Bayes tests to compare against.

Usage: laplace_peer.py JOBS.json, a list of {"state", "data", "subset", "hessian", "prior", "out"}
(one Python process for every case: importing torch is the slow part).

For each job:
STATE holds the session's tensors (param/dense1.weight, ...) of a dense MLP whose layers are
named dense1..denseK with tanh between them and identity at the end (the test builds such a
session); DATA holds "inputs" [N, D], "labels" [N] (float32 class indices) and "queries" [M, D].
Writes the posterior precision (full: the matrix; diag: its diagonal), the log marginal
likelihood at PRIOR, the probit predictive of the queries, and the prior precision
laplace-torch's own marglik optimisation finds.
"""
import json
import sys

import torch
from laplace import Laplace
from safetensors.torch import load_file


def run(state_path, data_path, subset, hessian, prior, out_path):
    prior = float(prior)
    state = load_file(state_path)
    data = load_file(data_path)

    names = sorted({k.split("/")[1].split(".")[0] for k in state if k.startswith("param/")}, key=lambda n: int(n[5:]))
    layers = []
    for i, name in enumerate(names):
        w = state[f"param/{name}.weight"].double()
        b = state[f"param/{name}.bias"].double()
        linear = torch.nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.copy_(b)
        layers.append(linear)
        if i < len(names) - 1:
            layers.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)

    x = data["inputs"].double()
    y = data["labels"].long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=len(y))
    structure = {"full": "full", "diag": "diag"}[hessian]
    la = Laplace(model, "classification", subset_of_weights=subset, hessian_structure=structure, prior_precision=prior)
    la.fit(loader)
    precision = la.posterior_precision.tolist()
    marglik = float(la.log_marginal_likelihood(prior_precision=torch.tensor(prior, dtype=torch.float64)))
    probit = la(data["queries"].double(), pred_type="glm", link_approx="probit").tolist()
    la.optimize_prior_precision(method="marglik", n_steps=500, lr=0.1)
    tuned = float(la.prior_precision)
    json.dump({"precision": precision, "marglik": marglik, "probit": probit, "tuned": tuned}, open(out_path, "w"))


for job in json.load(open(sys.argv[1])):
    run(job["state"], job["data"], job["subset"], job["hessian"], job["prior"], job["out"])
