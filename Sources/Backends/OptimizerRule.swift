import SpecKit
import TensorCore

/// Recomputes the loss and every parameter's gradient at `parameters`, on the step's batch.
///
/// Within one step every call sees the same batch, the same dropout masks (drawn at the first
/// call) and batch_norm's batch statistics of its own forward pass; the running statistics are
/// committed once, from the first call (at the step's starting parameters), when the step
/// commits. A loss or gradient that is not finite throws `BackendError.diverged`.
public typealias Objective = (_ parameters: [String: Tensor]) throws(BackendError) -> (loss: Float, gradients: [String: Tensor])

/// What a rule knows about the update it makes.
public struct UpdateContext: Sendable {
  /// The optimizer's own update count including this one (t ≥ 1).
  public var step: Int
  /// The scheduled learning rate for this update.
  public var learningRate: Double
  /// The parameters' names in model order: the order a rule that flattens them uses
  /// (docs/spec-format.md, "L-BFGS state").
  public var parameterOrder: [String]

  public init(step: Int, learningRate: Double, parameterOrder: [String]) {
    (self.step, self.learningRate, self.parameterOrder) = (step, learningRate, parameterOrder)
  }
}

/// What a rule that iterates within a step says about it (L-BFGS): shown in each step's event
/// and the dashboard's optimizer pane.
public struct OptimizerReport: Hashable, Sendable {
  /// Iterations this step made (PyTorch's local `n_iter`).
  public var iterations: Int
  /// Evaluations of the objective this step made, the first included.
  public var evaluations: Int
  /// Evaluations after the first: the line search's, or the re-evaluations after each move.
  public var lineSearchEvaluations: Int
  /// The last step size `t`.
  public var stepSize: Float

  public init(iterations: Int, evaluations: Int, lineSearchEvaluations: Int, stepSize: Float) {
    (self.iterations, self.evaluations, self.lineSearchEvaluations, self.stepSize) = (
      iterations, evaluations, lineSearchEvaluations, stepSize
    )
  }
}

/// What one update gives back: the step's loss (the objective at the starting parameters) and,
/// for a rule that iterates, its report.
public struct UpdateOutcome: Hashable, Sendable {
  public var loss: Float
  public var report: OptimizerReport?

  public init(loss: Float, report: OptimizerReport? = nil) { (self.loss, self.report) = (loss, report) }
}

/// An optimizer at whole-model granularity: it receives every parameter, its own state, and an
/// objective it may evaluate as often as it needs (a line search, L-BFGS's re-evaluations), and
/// declares its state's layout — any shapes, per parameter or across the whole model — which
/// the state layout, save and load, and a hot-swap's mapping read (`OptimizerStateLayout`).
///
/// A rule calls `objective` before it changes anything; when the first call throws, the step
/// failed and nothing changed. A rule that throws after changing parameters or state leaves
/// them spoilt, and the trainer puts the step's starting values back.
public protocol OptimizerRule: OptimizerStateLayout {
  /// For the elementwise rules (each parameter updated element by element from its gradient and
  /// its own slots, after one evaluation), their spec: engines may then run their own fused
  /// form of `OptimizerMath`'s arithmetic, which gives the same bits. Nil for other rules.
  var elementwise: OptimizerSpec? { get }

  /// Makes one update.
  ///
  /// - Parameters:
  ///   - parameters: every trainable parameter by name (`dense1.weight`), updated in place.
  ///   - state: the rule's state tensors by their state-file names (`opt/…`), updated in place.
  ///   - objective: the loss and gradients on this step's batch at any parameter values.
  ///   - context: the update count and the learning rate.
  /// - Returns: the step's loss (the objective at the starting parameters) and, for a rule
  ///   that iterates, what the step did.
  func update(
    parameters: inout [String: Tensor], state: inout [String: StoredTensor], objective: Objective, context: UpdateContext
  ) throws(BackendError) -> UpdateOutcome
}

extension OptimizerRule {
  /// The tensors this rule declares for `parameters` (in model order), taken from `state`: each
  /// present, with a shape and dtype its declaration accepts (a history may hold fewer rows).
  func declaredState(in state: TrainingState, for parameters: [ParameterShape]) throws(BackendError) -> [String: StoredTensor] {
    var tensors: [String: StoredTensor] = [:]
    for tensor in stateTensors(for: parameters) {
      guard let values = state.tensors[tensor.key.name], tensor.accepts(shape: values.shape), (values.integers != nil) == tensor.isInteger
      else {
        throw .invalidState(["the optimizer's state needs \(tensor.key.name) of shape \(tensor.shape)\(tensor.isInteger ? " (I64)" : "")"])
      }
      tensors[tensor.key.name] = values
    }
    return tensors
  }
}

/// The five elementwise rules (SGD, Adam, AdamW, RMSprop, Adagrad) under the whole-model seam: one
/// evaluation, then `OptimizerMath.update` on each parameter with its slots — the arithmetic of
/// `torch.optim`, bit for bit as before the seam existed.
public struct ElementwiseRule: OptimizerRule {
  public let spec: OptimizerSpec

  public init(_ spec: OptimizerSpec) { self.spec = spec }

  public var elementwise: OptimizerSpec? { spec }

  public func stateTensors(for parameters: [ParameterShape]) -> [OptimizerStateTensor] { spec.stateTensors(for: parameters) }

  public func update(
    parameters: inout [String: Tensor], state: inout [String: StoredTensor], objective: Objective, context: UpdateContext
  ) throws(BackendError) -> UpdateOutcome {
    let (loss, gradients) = try objective(parameters)
    let slots = spec.slots.map(\.slot)
    for (name, gradient) in gradients {
      // Each slot is taken out of the state while it is written, so it is changed in place.
      var own: [String: [Float]] = [:]
      for slot in slots {
        own[slot.rawValue] = state.removeValue(forKey: StateKey.slot(parameter: name, slot).name)!.scalars
      }
      OptimizerMath.update(
        spec, param: &parameters[name]!.scalars, grad: gradient.scalars, slots: &own, step: context.step, learningRate: context.learningRate
      )
      for slot in slots {
        state[StateKey.slot(parameter: name, slot).name] = StoredTensor(
          shape: gradient.shape, scalars: own.removeValue(forKey: slot.rawValue)!)
      }
    }
    return UpdateOutcome(loss: loss)
  }
}

/// The rule for a spec's optimizer: `LBFGSRule` for `lbfgs`, `ElementwiseRule` for the others.
public enum OptimizerRules {
  public static func rule(for optimizer: OptimizerSpec) -> any OptimizerRule {
    if case .lbfgs(let settings) = optimizer { return LBFGSRule(settings) }
    return ElementwiseRule(optimizer)
  }
}
