import Datasets
import SpecKit

/// The text of the PyTorch script `TorchExport` writes: a program that needs only `torch` and
/// `safetensors`, builds the session's `nn.Sequential`, loads the weights and `torch.optim`'s
/// state, and continues training with the session's optimizer, hyper-parameters, schedule,
/// loss, batch size and step limits on the training data saved beside it.
struct TorchScript {
  let spec: SessionSpec
  let state: TrainingState
  let modules: [TorchExport.Module]
  let tensorsFile: String
  /// The script's own file name, for its usage line.
  let scriptFile: String
  /// The number of classes, for class-index targets.
  let classes: Int?
  let hasValidation: Bool
  /// The data's standardisation (the training split's statistics), which the model's inputs
  /// went through; the saved data is standardised already.
  var standardization: Standardization? = nil

  var text: String {
    let p = TorchExport.python
    var lines: [String] = []
    lines += [
      "#!/usr/bin/env python3",
      "\"\"\"A SpecBench session as a PyTorch program, written by SpecBench \(SpecBenchVersion.current) at step \(state.step).",
      "",
      "Builds the model as torch.nn.Sequential, loads its weights and \(optimizerClass)'s state from",
      "the tensor file beside this file (TENSORS), and continues training on the session's training data, saved",
      "with it, with the same optimizer, hyper-parameters, learning-rate schedule, loss and batch size,",
      "until the session's step or epoch limit. The sample order and dropout draws come from torch's",
      "generator (seeded with the session's seed), not SpecBench's, so losses agree in distribution,",
      "not bit for bit. Needs torch and safetensors. The model takes its inputs as training gave them:",
      "for raw rows of a data file the session standardises (data.normalize), call standardize(rows) first.",
      "",
      "    python3 THIS_FILE [--steps N] [--save model.pt]",
      "\"\"\"",
      "# Every name below that came from the session is a string literal: data, never code.",
      "import argparse",
      "import math",
      "import os",
      "",
      "import torch",
      "from torch import nn",
      "from safetensors.torch import load_file",
      "",
      "SESSION_NAME = \(pyString(spec.name))",
      "SCRIPT_FILE = \(pyString(scriptFile))",
      "TENSORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), \(pyString(tensorsFile)))",
      "STEP = \(state.step)  # updates made so far",
      "EPOCH = \(state.epoch)  # epochs completed so far",
      "OPTIMIZER_STEP = \(state.optimizerSteps)  # the optimizer's own update count",
      "SEED = \(spec.training.seed)",
      "BATCH_SIZE = \(spec.training.batchSize)",
      "SHUFFLE = \(spec.training.shuffle ? "True" : "False")",
      "MAX_STEPS = \(maxSteps.map(String.init) ?? "None")",
      "MAX_EPOCHS = \(maxEpochs.map(String.init) ?? "None")",
      "DEFAULT_STEPS = 1000  # when no limit applies, or the session is already past its limits",
      "",
      "# The state_dict the model expects: name -> shape.",
      "EXPECTED = {",
    ]
    for module in modules {
      for tensor in module.tensors { lines.append("    \(pyString(tensor.torch)): \(tensor.shape),") }
    }
    lines += ["}", "", "", "def build_model():", "    return nn.Sequential("]
    for module in modules { lines.append("        \(module.constructor),") }
    lines += ["    )", "", ""]
    // The session's layer of each module, by position: names as literals, not comments.
    lines.append("LAYERS = [" + modules.map { pyString($0.layer) }.joined(separator: ", ") + "]")
    lines += ["", ""]
    // The model takes inputs as training gave them: standardised when the data asks for it.
    let means = standardization.map { "[" + $0.mean.map { p($0) }.joined(separator: ", ") + "]" } ?? "None"
    let stds = standardization.map { "[" + $0.std.map { p($0 > 0 ? $0 : 1) }.joined(separator: ", ") + "]" } ?? "None"
    lines += [
      "# The data's standardisation (data.normalize, the training split's statistics), or None.",
      "INPUT_MEAN = \(means)",
      "INPUT_STD = \(stds)",
      "",
      "",
      "def standardize(rows):",
      "    \"\"\"Raw rows of the data file as the model takes them (the saved data is standardised already).\"\"\"",
      "    if INPUT_MEAN is None:",
      "        return rows",
      "    return (rows - torch.tensor(INPUT_MEAN, dtype=rows.dtype)) / torch.tensor(INPUT_STD, dtype=rows.dtype)",
      "",
      "",
    ]
    lines += [
      "def learning_rate(update):",
      "    \"\"\"The rate of update `update` (from 1), by the session's schedule (\(spec.schedule.name), from update \(spec.schedule.start)).\"\"\"",
      "    lr = \(p(spec.optimizer.learningRate))",
      "    t = max(1, update - \(spec.schedule.start))",
    ]
    switch spec.schedule.shape {
    case .constant:
      lines.append("    return lr")
    case .step(let stepSize, let gamma):
      lines.append("    return lr * \(p(gamma)) ** ((t - 1) // \(stepSize))")
    case .exponential(let gamma):
      lines.append("    return lr * \(p(gamma)) ** (t - 1)")
    case .cosine(let tMax, let etaMin):
      lines.append("    return \(p(etaMin)) + (lr - \(p(etaMin))) * (1 + math.cos(math.pi * min(t - 1, \(tMax)) / \(tMax))) / 2")
    case .warmupCosine(let warmup, let tMax, let etaMin):
      lines += [
        "    if t <= \(warmup):",
        "        return lr * t / \(warmup)",
        "    k, t_max = t - \(warmup) - 1, \(tMax - warmup)",
        "    return \(p(etaMin)) + (lr - \(p(etaMin))) * (1 + math.cos(math.pi * min(k, t_max) / t_max)) / 2",
      ]
    }
    lines += ["", "", "def make_optimizer(model):", "    return \(optimizerConstructor)", "", ""]
    if case .lbfgs = spec.optimizer {
      lines += [
        "def restore_optimizer(optimizer, model, tensors):",
        "    \"\"\"Puts the session's L-BFGS state into torch.optim.LBFGS's (kept under its first parameter).",
        "    The flat vectors follow model.parameters()' order, SpecBench's flat layout.\"\"\"",
        "    def saved(name):",
        "        return tensors[\"optimizer/lbfgs/\" + name]",
        "    state = optimizer.state[next(iter(model.parameters()))]",
        "    state[\"func_evals\"] = int(saved(\"func_evals\").item())",
        "    state[\"n_iter\"] = int(saved(\"n_iter\").item())",
        "    if state[\"n_iter\"] == 0:",
        "        return  # nothing else is read before the first iteration sets it",
        "    state[\"d\"] = saved(\"d\").clone()",
        "    state[\"t\"] = float(saved(\"t\").item())",
        "    state[\"old_dirs\"] = [row.clone() for row in saved(\"old_dirs\")]",
        "    state[\"old_stps\"] = [row.clone() for row in saved(\"old_stps\")]",
        "    state[\"ro\"] = [value.clone() for value in saved(\"ro\")]",
        "    state[\"H_diag\"] = saved(\"H_diag\").clone()",
        "    state[\"prev_flat_grad\"] = saved(\"prev_flat_grad\").clone()",
        "    state[\"prev_loss\"] = float(saved(\"prev_loss\").item())",
      ]
    } else {
      lines += [
        "def restore_optimizer(optimizer, model, tensors):",
        "    \"\"\"Puts the session's optimizer slots and update count into torch.optim's state.\"\"\"",
        "    if OPTIMIZER_STEP == 0:",
        "        return",
        "    for name, parameter in model.named_parameters():",
        "        state = {slot: tensors[f\"optimizer/{name}/{slot}\"].clone() for slot in \(spec.optimizer.slots.map(\.slot.rawValue))}",
      ]
      let withStep = if case .sgd = spec.optimizer { false } else { true }
      lines.append(
        withStep
          ? "        optimizer.state[parameter] = {\"step\": torch.tensor(float(OPTIMIZER_STEP)), **state}"
          : "        optimizer.state[parameter] = state")
    }
    lines += ["", "", "def loss_function(output, target):", "    \"\"\"The session's loss (\(spec.loss.name)), as it defines it.\"\"\""]
    switch spec.loss {
    case .mse:
      lines.append(
        classes != nil
          ? "    return nn.functional.mse_loss(output, nn.functional.one_hot(target, \(classes!)).to(output.dtype))"
          : "    return nn.functional.mse_loss(output, target)")
    case .softmaxCrossEntropy:
      lines.append("    return nn.functional.cross_entropy(output, target)")
    case .sigmoidBinaryCrossEntropy:
      lines.append(
        "    return nn.functional.binary_cross_entropy_with_logits(output, target.to(output.dtype).reshape(output.shape))")
    case .huber(let delta):
      lines.append(
        classes != nil
          ? "    return nn.functional.huber_loss(output, nn.functional.one_hot(target, \(classes!)).to(output.dtype), delta=\(p(delta)))"
          : "    return nn.functional.huber_loss(output, target, delta=\(p(delta)))")
    }
    let targetType = classes != nil ? ".long()" : ""
    lines += [
      "", "",
      "def planned_steps(count, requested):",
      "    \"\"\"The steps to train: --steps, else up to the session's next limit (max_steps, max_epochs),",
      "    else DEFAULT_STEPS; a session already past its limits trains DEFAULT_STEPS, and says so.\"\"\"",
      "    if requested is not None:",
      "        return requested",
      "    limits = []",
      "    if MAX_STEPS is not None:",
      "        limits.append(MAX_STEPS - STEP)",
      "    if MAX_EPOCHS is not None:",
      "        limits.append((MAX_EPOCHS - EPOCH) * math.ceil(count / BATCH_SIZE))",
      "    if not limits:",
      "        return DEFAULT_STEPS",
      "    if min(limits) <= 0:",
      "        print(f\"at step {STEP} the session is past its limits (max_steps {MAX_STEPS}, max_epochs {MAX_EPOCHS}); \"",
      "              f\"training {DEFAULT_STEPS} more steps (--steps N trains N)\")",
      "        return DEFAULT_STEPS",
      "    return min(limits)",
      "", "",
      "def main():",
      "    parser = argparse.ArgumentParser(prog=SCRIPT_FILE, description=f\"Continue training the SpecBench session {SESSION_NAME!r}.\")",
      "    parser.add_argument(\"--steps\", type=int, help=\"train this many more steps (default: up to the session's limit)\")",
      "    parser.add_argument(\"--save\", help=\"save the trained model's state_dict here (torch.save)\")",
      "    arguments = parser.parse_args()",
      "    tensors = load_file(TENSORS)",
      "    model = build_model()",
      "    model.load_state_dict({name: tensors[\"model/\" + name] for name in EXPECTED}, strict=True)",
      "    optimizer = make_optimizer(model)",
      "    restore_optimizer(optimizer, model, tensors)",
      "    inputs, targets = tensors[\"data/inputs\"], tensors[\"data/targets\"]\(targetType)",
      "    count = inputs.shape[0]",
      "    steps = planned_steps(count, arguments.steps)",
      "    generator = torch.Generator().manual_seed(SEED + EPOCH)",
      "    model.train()",
      "    t, order, position = STEP, None, count",
      "    for _ in range(steps):",
      "        if position >= count:",
      "            order = torch.randperm(count, generator=generator) if SHUFFLE else torch.arange(count)",
      "            position = 0",
      "        batch = order[position:position + BATCH_SIZE]",
      "        position += BATCH_SIZE",
      "        t += 1",
      "        for group in optimizer.param_groups:",
      "            group[\"lr\"] = learning_rate(t)",
    ]
    if case .lbfgs = spec.optimizer {
      lines += [
        "        def closure():",
        "            # One evaluation of L-BFGS's objective on this step's batch.",
        "            optimizer.zero_grad()",
        "            batch_loss = loss_function(model(inputs[batch]), targets[batch])",
        "            batch_loss.backward()",
        "            return batch_loss",
        "        loss = optimizer.step(closure)",
      ]
    } else {
      lines += [
        "        optimizer.zero_grad()",
        "        loss = loss_function(model(inputs[batch]), targets[batch])",
        "        loss.backward()",
        "        optimizer.step()",
      ]
    }
    lines += [
      "        if t % 100 == 0 or t == STEP + steps:",
      "            print(f\"step {t}  loss {loss.item():.6g}  lr {learning_rate(t):.6g}\")",
    ]
    if hasValidation {
      lines += [
        "    model.eval()",
        "    with torch.no_grad():",
        "        val = loss_function(model(tensors[\"data/val_inputs\"]), tensors[\"data/val_targets\"]\(targetType))",
        "    print(f\"validation loss {val.item():.6g}\")",
      ]
    }
    lines += [
      "    if arguments.save:",
      "        torch.save(model.state_dict(), arguments.save)",
      "        print(f\"saved {arguments.save}\")",
      "",
      "",
      "if __name__ == \"__main__\":",
      "    main()",
      "",
    ]
    return lines.joined(separator: "\n")
  }

  var maxSteps: Int? {
    spec.training.stop.compactMap { if case .maxSteps(let steps) = $0 { steps } else { nil } }.min()
  }

  var maxEpochs: Int? {
    spec.training.stop.compactMap { if case .maxEpochs(let epochs) = $0 { epochs } else { nil } }.min()
  }

  var optimizerClass: String {
    switch spec.optimizer {
    case .sgd: "torch.optim.SGD"
    case .adam: "torch.optim.Adam"
    case .adamw: "torch.optim.AdamW"
    case .rmsprop: "torch.optim.RMSprop"
    case .adagrad: "torch.optim.Adagrad"
    case .lbfgs: "torch.optim.LBFGS"
    }
  }

  var optimizerConstructor: String {
    let p = TorchExport.python
    let bool = { (value: Bool) in value ? "True" : "False" }
    switch spec.optimizer {
    case .sgd(let o):
      return
        "torch.optim.SGD(model.parameters(), lr=\(p(o.lr)), momentum=\(p(o.momentum)), dampening=\(p(o.dampening)), nesterov=\(bool(o.nesterov)), weight_decay=\(p(o.weightDecay)))"
    case .adam(let o), .adamw(let o):
      return
        "\(optimizerClass)(model.parameters(), lr=\(p(o.lr)), betas=(\(p(o.beta1)), \(p(o.beta2))), eps=\(p(o.eps)), weight_decay=\(p(o.weightDecay)), amsgrad=\(bool(o.amsgrad)))"
    case .rmsprop(let o):
      return
        "torch.optim.RMSprop(model.parameters(), lr=\(p(o.lr)), alpha=\(p(o.alpha)), eps=\(p(o.eps)), weight_decay=\(p(o.weightDecay)), momentum=\(p(o.momentum)), centered=\(bool(o.centered)))"
    case .adagrad(let o):
      return
        "torch.optim.Adagrad(model.parameters(), lr=\(p(o.lr)), lr_decay=\(p(o.lrDecay)), weight_decay=\(p(o.weightDecay)), initial_accumulator_value=\(p(o.initialAccumulatorValue)), eps=\(p(o.eps)))"
    case .lbfgs(let o):
      let lineSearch = o.lineSearch.map { pyString($0.rawValue) } ?? "None"
      return
        "torch.optim.LBFGS(model.parameters(), lr=\(p(o.lr)), max_iter=\(o.maxIter), max_eval=\(o.maxEval.map(String.init) ?? "None"), tolerance_grad=\(p(o.toleranceGrad)), tolerance_change=\(p(o.toleranceChange)), history_size=\(o.historySize), line_search_fn=\(lineSearch))"
    }
  }

  /// A Python string literal of `text` in printable ASCII alone: quotes and backslashes
  /// escaped, and every other character outside printable ASCII (newlines, NUL, ESC, line and
  /// paragraph separators, any non-ASCII letter) as `\\xNN`, `\\uNNNN` or `\\UNNNNNNNN`. Whatever a
  /// session's names hold, they stay inside the literal.
  func pyString(_ text: String) -> String { TorchExport.pythonLiteral(text) }
}
