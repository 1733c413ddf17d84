import Datasets
import Foundation
import SpecKit
import TensorCore

/// A session as PyTorch sees it: the `torch.nn.Sequential` its layers become, the `state_dict`
/// names of its tensors, and a self-contained training script.
public enum TorchExport {
  /// One module of the `nn.Sequential`: its Python constructor, the layer it comes from, and
  /// its tensors as (SpecBench state name, PyTorch name, shape).
  struct Module {
    var constructor: String
    var layer: String
    /// `state` is the tensor's name in the session's state, nil for BatchNorm's
    /// `num_batches_tracked` (the step count; the session keeps no tensor for it).
    var tensors: [(state: StateKey?, torch: String, shape: [Int])]
  }

  /// The modules, in order; a dense layer with an activation is two (Linear, then the
  /// activation), so indices do not follow layer numbers.
  static func modules(_ spec: SessionSpec) throws(InterchangeError) -> [Module] {
    let shapes: [LayerShape]
    do { shapes = try spec.model.layerShapes() } catch {
      throw .cannotExport(format: "pytorch", reason: "the model's shapes do not chain: \(error.issues.first?.message ?? "\(error)")")
    }
    var modules: [Module] = []
    func add(_ constructor: String, _ layer: String, _ tensors: [(StateKey?, String, [Int])] = []) {
      let index = modules.count
      modules.append(Module(constructor: constructor, layer: layer, tensors: tensors.map { ($0.0, "\(index).\($0.1)", $0.2) }))
    }
    for shape in shapes {
      let name = shape.layer.name
      func tensor(_ suffix: String) -> (StateKey?, String, [Int]) {
        let layerTensor = shape.tensors.first { $0.name == "\(name).\(suffix)" }
        return (layerTensor.map(StateKey.init), suffix, layerTensor?.shape ?? [])
      }
      switch shape.layer.kind {
      case .dense(let dense):
        let inputs = shape.inputShape[0]
        add(
          "nn.Linear(\(inputs), \(dense.units), bias=\(dense.useBias ? "True" : "False"))", name,
          [tensor("weight")] + (dense.useBias ? [tensor("bias")] : []))
        if dense.activation != .identity { add(activationModule(dense.activation), name) }
      case .activation(let function):
        add(function == .identity ? "nn.Identity()" : activationModule(function), name)
      case .dropout(let rate):
        add("nn.Dropout(p=\(python(rate)))", name)
      case .flatten:
        add("nn.Flatten()", name)
      case .layerNorm(let eps):
        add("nn.LayerNorm(\(shape.inputShape.last!), eps=\(python(eps)))", name, [tensor("weight"), tensor("bias")])
      case .batchNorm(let eps, let momentum):
        // PyTorch's kind by the sample's rank: [C] and [C, L] are 1d, [C, H, W] 2d, [C, D, H, W] 3d.
        let kind = shape.inputShape.count <= 2 ? "1d" : shape.inputShape.count == 3 ? "2d" : "3d"
        add(
          "nn.BatchNorm\(kind)(\(shape.inputShape[0]), eps=\(python(eps)), momentum=\(python(momentum)))", name,
          [
            tensor("weight"), tensor("bias"), tensor("running_mean"), tensor("running_var"),
            (nil, "num_batches_tracked", []),
          ])
      case .conv2d(let conv):
        let w = conv.window
        let padding: String
        switch w.padding {
        case .same: padding = "'same'"
        case .explicit(let pair): padding = "(\(pair.height), \(pair.width))"
        }
        add(
          "nn.Conv2d(\(shape.inputShape[0]), \(conv.filters), kernel_size=\(tuple(w.kernel)), stride=\(tuple(w.stride)), padding=\(padding), dilation=\(tuple(w.dilation)), groups=\(conv.groups), bias=\(conv.useBias ? "True" : "False"))",
          name, [tensor("weight")] + (conv.useBias ? [tensor("bias")] : []))
        if conv.activation != .identity { add(activationModule(conv.activation), name) }
      case .maxPool2d(let pool):
        add(
          "nn.MaxPool2d(kernel_size=\(tuple(pool.window.kernel)), stride=\(tuple(pool.window.stride)), padding=\(tuple(pool.window.padBefore)))",
          name)
      case .avgPool2d(let pool):
        add(
          "nn.AvgPool2d(kernel_size=\(tuple(pool.window.kernel)), stride=\(tuple(pool.window.stride)), padding=\(tuple(pool.window.padBefore)))",
          name)
      case .globalAvgPool:
        add("nn.AdaptiveAvgPool2d(1)", name)
        add("nn.Flatten()", name)
      case .reshape:
        if shape.inputShape.count != 1 { add("nn.Flatten()", name) }
        add("nn.Unflatten(1, (\(shape.outputShape.map(String.init).joined(separator: ", ")),))", name)
      }
    }
    return modules
  }

  /// `(h, w)` for a constructor's pair argument.
  static func tuple(_ pair: Pair) -> String { "(\(pair.height), \(pair.width))" }

  static func activationModule(_ function: Activation) -> String {
    switch function {
    case .identity: "nn.Identity()"
    case .relu: "nn.ReLU()"
    case .leakyReLU(let alpha): "nn.LeakyReLU(negative_slope=\(python(alpha)))"
    case .sigmoid: "nn.Sigmoid()"
    case .tanh: "nn.Tanh()"
    case .gelu: "nn.GELU()"
    case .silu: "nn.SiLU()"
    case .softplus: "nn.Softplus()"
    case .elu: "nn.ELU(alpha=1.0)"
    case .softmax: "nn.Softmax(dim=-1)"
    }
  }

  /// The parameters and buffers under their `state_dict` names (`0.weight`, `2.running_mean`;
  /// BatchNorm's `num_batches_tracked` as a float32 scalar, which `load_state_dict` converts).
  static func stateDict(spec: SessionSpec, state: TrainingState) throws(InterchangeError) -> (SafeTensors.Contents, [String]) {
    var tensors: [String: StoredTensor] = [:]
    for module in try modules(spec) {
      for tensor in module.tensors {
        guard let name = tensor.state else {
          tensors[tensor.torch] = StoredTensor(shape: [], scalars: [Float(state.step)])
          continue
        }
        guard let stored = state.tensors[name] else {
          throw .cannotExport(format: "safetensors", reason: "the state has no tensor \(name.name)")
        }
        tensors[tensor.torch] = stored
      }
    }
    let metadata = ["format": "pt", "specbench.session": spec.name, "specbench.step": String(state.step)]
    return (
      SafeTensors.Contents(tensors: tensors, metadata: metadata),
      [
        "the optimizer state, schedule, data and stop rules (the pytorch format carries them)",
        "the model's structure beyond the names (the pytorch format's script builds it)",
      ]
    )
  }

  /// The script and its tensors: `model/NAME` (the state_dict), `optimizer/NAME/SLOT` (or for
  /// L-BFGS `optimizer/lbfgs/NAME`, PyTorch's `state` names), and the
  /// training data (`data/inputs`, `data/targets`, and `data/val_*` with a validation split).
  static func script(bundle: SessionBundle, state: TrainingState, scriptFile: String, tensorsFile: String, folder: String) throws -> (
    script: String, tensors: SafeTensors.Contents, leftOut: [String]
  ) {
    let spec = bundle.spec
    let modules = try modules(spec)
    var tensors: [String: StoredTensor] = [:]
    let (stateDict, _) = try stateDict(spec: spec, state: state)
    for (name, tensor) in stateDict.tensors { tensors["model/" + name] = tensor }
    // Optimizer slots under the parameter's PyTorch name.
    for module in modules {
      for tensor in module.tensors {
        guard case .parameter(let parameter)? = tensor.state else { continue }
        for (slot, _) in spec.optimizer.slots {
          let key = StateKey.slot(parameter: parameter, slot)
          guard let stored = state.tensors[key] else {
            throw InterchangeError.cannotExport(format: "pytorch", reason: "the state has no \(key.name)")
          }
          tensors["optimizer/\(tensor.torch)/\(slot.rawValue)"] = stored
        }
      }
    }
    // L-BFGS's whole-model state under PyTorch's `state` names (the counts stay I64).
    if case .lbfgs(let settings) = spec.optimizer {
      let parameters = try spec.parameterShapes()
      for declared in LBFGSState.tensors(parameterCount: parameters.map(\.count).reduce(0, +), settings: settings) {
        guard let stored = state.tensors[declared.key] else {
          throw InterchangeError.cannotExport(format: "pytorch", reason: "the state has no \(declared.key.name)")
        }
        tensors["optimizer/lbfgs/" + declared.key.tensor] = stored
      }
    }
    let split = try DataSplit.of(spec, relativeTo: folder).split
    func store(_ data: Dataset, _ prefix: String) throws {
      // (The data goes into the export's one file; a mapped file's rows must fit in memory.)
      tensors[prefix + "inputs"] = try data.inputs.materialized(for: "the pytorch export")
      switch data.targets {
      case .classes(let labels): tensors[prefix + "targets"] = StoredTensor(shape: [labels.count], scalars: labels.map(Float.init))
      case .values(let values): tensors[prefix + "targets"] = StoredTensor(shape: values.shape, scalars: values.scalars)
      }
    }
    try store(split.train, "data/")
    if let validation = split.validation { try store(validation, "data/val_") }
    let classes: Int? = if case .classes = split.train.targets { spec.model.outputShape.last } else { nil }
    let script = TorchScript(
      spec: spec, state: state, modules: modules, tensorsFile: tensorsFile, scriptFile: scriptFile, classes: classes,
      hasValidation: split.validation != nil, standardization: split.standardization
    ).text
    let metadata = ["specbench.session": spec.name, "specbench.step": String(state.step)]
    var leftOut = [
      "SpecBench's shuffle and dropout draws (the script uses torch's generator, seeded with training.seed)"
    ]
    let rules = spec.training.stop.filter {
      if case .maxSteps = $0 { return false }
      if case .maxEpochs = $0 { return false }
      return true
    }
    if !rules.isEmpty {
      leftOut.append("the stop rules " + rules.map(\.summary).joined(separator: ", ") + " (the script stops at max_steps and max_epochs)")
    }
    let past = spec.training.stop.contains { rule in
      switch rule {
      case .maxSteps(let steps): steps <= state.step
      case .maxEpochs(let epochs): epochs <= state.epoch
      default: false
      }
    }
    if past {
      leftOut.append(
        "the session's limits (it is at step \(state.step), past them): the script trains 1000 more steps unless --steps says otherwise")
    }
    return (script, SafeTensors.Contents(tensors: tensors, metadata: metadata), leftOut)
  }

  /// A Double as Python writes it.
  /// A Python string literal of `text` in printable ASCII alone (see `TorchScript.pyString`).
  static func pythonLiteral(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      switch scalar.value {
      case 0x5C: out += "\\\\"
      case 0x22: out += "\\\""
      case 0x20...0x7E: out.unicodeScalars.append(scalar)
      case 0...0xFF: out += "\\x" + hex(scalar.value, digits: 2)
      case 0x100...0xFFFF: out += "\\u" + hex(scalar.value, digits: 4)
      default: out += "\\U" + hex(scalar.value, digits: 8)
      }
    }
    return out + "\""
  }

  private static func hex(_ value: UInt32, digits: Int) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: max(0, digits - text.count)) + text
  }

  static func python(_ value: Double) -> String {
    if value == value.rounded() && abs(value) < 1e15 { return String(format: "%.1f", value) }
    return "\(value)"
  }
}

extension ModelSpec {
  /// The shape of one sample's output (the input's when there are no layers).
  var outputShape: [Int] { ((try? layerShapes()) ?? []).last?.outputShape ?? input }
}
