import Backends
import Interchange
import SpecKit

/// Tab-completion candidates for the command language, from the line before the cursor: command
/// names, subcommands, layer types, activations, optimizer and schedule names and fields,
/// layer and tensor names, backend names. Nil means "complete a file path".
public enum Completion {
  public static func candidates(
    before line: String, spec: SessionSpec, backends: [String] = BackendRegistry.builtIn.names, runs: [String] = []
  ) -> [String]? {
    let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
    let typingNewWord = line.isEmpty || line.hasSuffix(" ")
    let done = typingNewWord ? words : Array(words.dropLast())
    let current = typingNewWord ? "" : words.last ?? ""
    guard let command = done.first else { return filter(CommandTable.names + ["exit"], current) }
    let position = done.count  // 1 = first argument
    let layerNames = spec.model.layers.map(\.name)

    // key=value: complete the value of a known key.
    if let equals = current.firstIndex(of: "="), command != "sweep" {
      let key = String(current[..<equals])
      let values: [String] =
        switch key {
        case "activation", "function": Activation.names
        case "nesterov", "amsgrad", "centered", "use_bias", "shuffle", "header", "normalize": ["true", "false"]
        case "task": ["classification", "regression"]
        case "line_search": ["strong_wolfe", "null"]
        case "subset": ["last_layer", "all"]
        case "hessian": ["full", "diag", "kron"]
        case "predictive": ["probit", "mc"]
        case "prior" where command == "posterior": ["tune"]
        case "prior" where command == "variational": ["gaussian", "scale_mixture"]
        case "name" where command == "data": Array(DataSource.builtinCatalog.keys)
        default: []
        }
      return filter(values.map { "\(key)=\($0)" }, current)
    }
    func typed(_ types: [String], fields: (String) -> [String]) -> [String] {
      position == 1 ? filter(types, current) : filter(fields(done[1]).map { $0 + "=" }, current)
    }
    switch command {
    case "help": return position == 1 ? filter(CommandTable.names, current) : []
    case "add", "insert":
      let offset = command == "insert" ? 1 : 0
      if position == 1 + offset { return filter(LayerSpec.typeNames, current) }
      if position == 3 + offset, done[1 + offset] == "dense" { return filter(Activation.names, current) }
      if position == 2 + offset, done[1 + offset] == "activation" { return filter(Activation.names, current) }
      return filter(layerFields(done.count > 1 + offset ? done[1 + offset] : "").map { $0 + "=" }, current)
    case "remove": return position == 1 ? filter(layerNames, current) : []
    case "set":
      if position == 1 { return filter(layerNames, current) }
      let type = spec.model.layers.first { $0.name == done[1] }?.kind.typeName ?? ""
      return filter(layerFields(type).map { $0 + "=" }, current)
    case "optimizer":
      if position == 1 && !current.contains("=") {
        return filter(OptimizerSpec.names + optimizerFields(spec.optimizer.name).map { $0 + "=" }, current)
      }
      let type = OptimizerSpec.names.contains(done.count > 1 ? done[1] : "") ? done[1] : spec.optimizer.name
      return filter(optimizerFields(type).map { $0 + "=" }, current)
    case "loss": return typed(LossSpec.names) { $0 == "huber" ? ["delta"] : [] }
    case "schedule": return typed(ScheduleSpec.names) { scheduleFields($0) }
    case "data": return typed(DataSource.names) { dataFields($0) }
    case "stop": return filter(StopRule.names, current)
    case "show": return position == 1 ? filter(["model", "optimizer", "data", "training", "spec"], current) : []
    case "plot": return position == 1 ? filter(["loss", "lr"], current) : filter(["--log", "--smooth"], current)
    case "train": return filter(["--wait"], current)
    case "hist":
      guard position == 1, let tensors = try? spec.model.layerShapes().flatMap(\.tensors).map(\.name) else { return [] }
      return filter(tensors, current)
    case "filters":
      guard position == 1 else { return [] }
      return filter(spec.model.layers.filter { if case .conv2d = $0.kind { true } else { false } }.map(\.name), current)
    case "backend": return position == 1 ? filter(backends, current) : []
    case "posterior":
      return filter((position == 1 ? ["off"] : []) + ["subset=", "hessian=", "prior=", "noise=", "predictive=", "samples="], current)
    case "calibration": return position == 1 ? filter(["train", "validation"], current) : []
    case "variational":
      if position == 1 {
        let dense = spec.model.layers.filter { if case .dense = $0.kind { true } else { false } }.map(\.name)
        return filter(dense + ["off"], current)
      }
      return filter(
        ["prior=", "sigma=", "pi=", "sigma1=", "sigma2=", "kl_weight=", "rho_init=", "train_samples=", "predict_samples="], current)
    case "switch": return position == 1 ? filter(runs, current) : []
    case "drop": return position == 1 ? filter(runs, current) : filter(["--force"], current)
    case "compare":
      if done.last == "--by" { return filter(CompareAxis.allCases.map(\.rawValue), current) }
      return filter(runs.filter { !done.contains($0) } + ["--by"], current)
    case "fork": return position == 1 ? [] : filter(["--from-step"], current)
    case "sweep":
      guard !current.contains("=") else { return [] }
      return filter(sweepFields(spec).map { $0 + "=" } + ["--force"], current)
    case "save", "load": return nil
    case "export":
      return position == 1 ? filter(ExportFormat.allCases.map(\.rawValue), current) : position == 2 ? nil : filter(["--softmax"], current)
    default: return []
    }
  }

  /// The options that start with `prefix`. A name holding a control character (from a hostile
  /// file) is never offered: readline would print it to the terminal as it is, and it cannot be
  /// typed anyway.
  static func filter(_ options: [String], _ prefix: String) -> [String] {
    options.filter { $0.hasPrefix(prefix) && !$0.unicodeScalars.contains(where: TextExcerpt.isControl) }.sorted()
  }

  /// The fields a sweep can set, as its paths: the optimizer's, the schedule's and training's
  /// plain values, and each layer's (`layers[1].units`).
  static func sweepFields(_ spec: SessionSpec) -> [String] {
    var fields: [String] = []
    func plain(_ value: JSONValue, _ prefix: String) {
      for member in value.objectValue?.members ?? [] where member.key != "type" && member.key != "name" {
        if member.value.objectValue == nil { fields.append(prefix + member.key) }
      }
    }
    let json = spec.json
    for part in ["optimizer", "schedule", "training"] { json.objectValue?[part].map { plain($0, part + ".") } }
    for (i, layer) in (json.objectValue?["model"]?.objectValue?["layers"]?.arrayValue ?? []).enumerated() { plain(layer, "layers[\(i)].") }
    return fields
  }

  static func layerFields(_ type: String) -> [String] {
    switch type {
    case "dense": ["units", "activation", "use_bias", "name"]
    case "activation": ["function", "name"]
    case "dropout": ["rate", "name"]
    case "layer_norm": ["eps", "name"]
    case "batch_norm": ["eps", "momentum", "name"]
    case "conv2d": ["filters", "kernel", "stride", "padding", "dilation", "groups", "activation", "use_bias", "name"]
    case "max_pool2d", "avg_pool2d": ["kernel", "stride", "padding", "name"]
    case "reshape": ["shape", "name"]
    default: ["name"]
    }
  }

  static func optimizerFields(_ type: String) -> [String] {
    switch type {
    case "sgd": ["lr", "momentum", "dampening", "nesterov", "weight_decay"]
    case "adam", "adamw": ["lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"]
    case "rmsprop": ["lr", "alpha", "eps", "momentum", "centered", "weight_decay"]
    case "adagrad": ["lr", "lr_decay", "eps", "initial_accumulator_value", "weight_decay"]
    case "lbfgs": ["lr", "max_iter", "max_eval", "tolerance_grad", "tolerance_change", "history_size", "line_search"]
    default: []
    }
  }

  static func scheduleFields(_ type: String) -> [String] {
    switch type {
    case "step": ["step_size", "gamma"]
    case "exponential": ["gamma"]
    case "cosine": ["t_max", "eta_min"]
    case "warmup_cosine": ["warmup_steps", "t_max", "eta_min"]
    default: []
    }
  }

  static func dataFields(_ type: String) -> [String] {
    let common = ["validation_fraction"]
    switch type {
    case "spirals": return ["samples", "classes", "noise", "seed"] + common
    case "moons", "xor", "sine": return ["samples", "noise", "seed"] + common
    case "circles": return ["samples", "noise", "factor", "seed"] + common
    case "blobs": return ["samples", "centers", "features", "std", "seed"] + common
    case "csv": return ["path", "target", "header", "delimiter", "task", "normalize"] + common
    case "idx": return ["images", "labels"] + common
    case "npy": return ["inputs", "targets", "task", "scale"] + common
    case "npz": return ["path", "inputs", "targets", "task", "scale"] + common
    case "builtin": return ["name"] + common
    default: return common
    }
  }
}
