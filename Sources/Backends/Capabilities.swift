import SpecKit

/// What a backend can train, by the format's names: layer types, activations, losses,
/// optimizers and schedules.
public struct Capabilities: Hashable, Sendable {
  public var layers: Set<String>
  public var activations: Set<String>
  public var losses: Set<String>
  public var optimizers: Set<String>
  public var schedules: Set<String>
  /// Whether it trains variational layers (`model.variational`, Bayes by Backprop).
  public var variational: Bool

  public init(
    layers: Set<String>, activations: Set<String>, losses: Set<String>, optimizers: Set<String>, schedules: Set<String>,
    variational: Bool = true
  ) {
    (self.layers, self.activations, self.losses, self.optimizers, self.schedules) = (layers, activations, losses, optimizers, schedules)
    self.variational = variational
  }

  /// Everything the format defines.
  public static let everything = Capabilities(
    layers: Set(LayerSpec.typeNames), activations: Set(Activation.names), losses: Set(LossSpec.names),
    optimizers: Set(OptimizerSpec.names), schedules: Set(ScheduleSpec.names))

  /// Every field of `spec` outside these capabilities, by its JSON path.
  public func unsupported(in spec: SessionSpec) -> [SpecIssue] {
    var issues: [SpecIssue] = []
    func need(_ set: Set<String>, _ name: String, _ path: JSONPath, _ what: String) {
      if !set.contains(name) { issues.append(SpecIssue(path: path, message: "\(what) \"\(name)\" is not supported by this backend")) }
    }
    for (i, layer) in spec.model.layers.enumerated() {
      let path = JSONPath("model.layers") + i
      need(layers, layer.kind.typeName, path + "type", "layer type")
      switch layer.kind {
      case .dense(let dense): need(activations, dense.activation.name, path + "activation", "activation")
      case .activation(let function): need(activations, function.name, path + "function", "activation")
      case .conv2d(let conv): need(activations, conv.activation.name, path + "activation", "activation")
      default: break
      }
    }
    need(losses, spec.loss.name, "loss.type", "loss")
    need(optimizers, spec.optimizer.name, "optimizer.type", "optimizer")
    need(schedules, spec.schedule.name, "schedule.type", "schedule")
    if spec.model.variational != nil, !variational {
      issues.append(
        SpecIssue(path: "model.variational", message: "variational layers (Bayes by Backprop) are not supported by this backend"))
    }
    return issues
  }
}
