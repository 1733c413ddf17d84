/// One tensor of an optimizer rule's state, as the rule declares it: per-parameter slots
/// (`opt/LAYER.weight/SLOT`, the parameter's shape) or state of the whole model
/// (`opt/model/NAME`, any shape — a history across all parameters, a scalar).
public struct OptimizerStateTensor: Hashable, Sendable {
  /// `.slot(parameter:_:)` or `.optimizer(_:)`.
  public var key: StateKey
  public var shape: [Int]
  /// What a fresh tensor holds everywhere.
  public var initialValue: Float
  /// Whether it accumulates squares (never negative in a valid state; loading checks it).
  public var holdsSquares: Bool

  public init(key: StateKey, shape: [Int], initialValue: Float = 0, holdsSquares: Bool = false) {
    (self.key, self.shape, self.initialValue, self.holdsSquares) = (key, shape, initialValue, holdsSquares)
  }
}

/// A trainable parameter as an optimizer rule sees it when it declares its state.
public struct ParameterShape: Hashable, Sendable {
  /// `dense1.weight`
  public var name: String
  public var shape: [Int]

  public init(name: String, shape: [Int]) { (self.name, self.shape) = (name, shape) }
}

/// What an optimizer keeps between updates: the one description that the state layout
/// (`SessionSpec.stateLayout`), the initial state, loading and saving, and a hot-swap's
/// `StateMapping` read — so a rule may keep any shapes, not only parameter-shaped slots.
public protocol OptimizerStateLayout: Sendable {
  /// The rule's state tensors for these parameters (in model order), in a fixed order.
  func stateTensors(for parameters: [ParameterShape]) -> [OptimizerStateTensor]
}

extension OptimizerSpec: OptimizerStateLayout {
  /// The five built-in rules are elementwise: each parameter has the slots `slots` lists, of
  /// its own shape; nothing spans the model.
  public func stateTensors(for parameters: [ParameterShape]) -> [OptimizerStateTensor] {
    parameters.flatMap { parameter in
      slots.map { slot, start in
        OptimizerStateTensor(
          key: .slot(parameter: parameter.name, slot), shape: parameter.shape, initialValue: start, holdsSquares: slot.holdsSquares)
      }
    }
  }
}
