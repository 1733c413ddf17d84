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
  /// For a history that grows (L-BFGS's pairs): `shape` is the fresh tensor's, with 0 rows, and
  /// a state may hold up to this many rows (the first dimension) of the same trailing shape.
  public var maxRows: Int?
  /// Whether it is an exact count, `I64` in the file (`StoredTensor.integers`).
  public var isInteger: Bool

  public init(
    key: StateKey, shape: [Int], initialValue: Float = 0, holdsSquares: Bool = false, maxRows: Int? = nil, isInteger: Bool = false
  ) {
    (self.key, self.shape, self.initialValue, self.holdsSquares, self.maxRows, self.isInteger) = (
      key, shape, initialValue, holdsSquares, maxRows, isInteger
    )
  }

  /// Whether `shape` is one this tensor may have: `self.shape`, or for a growing history the
  /// same trailing shape with at most `maxRows` rows.
  public func accepts(shape other: [Int]) -> Bool { Self.fits(other, declared: shape, maxRows: maxRows) }

  /// Whether `shape` is `declared`, or with `maxRows` the same trailing shape with at most
  /// that many rows.
  static func fits(_ shape: [Int], declared: [Int], maxRows: Int?) -> Bool {
    guard let maxRows else { return shape == declared }
    return shape.count == declared.count && !shape.isEmpty && shape[0] <= maxRows && shape.dropFirst() == declared.dropFirst()
  }
}

/// A trainable parameter as an optimizer rule sees it when it declares its state.
public struct ParameterShape: Hashable, Sendable {
  /// `dense1.weight`
  public var name: String
  public var shape: [Int]

  public init(name: String, shape: [Int]) { (self.name, self.shape) = (name, shape) }

  /// Its element count.
  public var count: Int { shape.reduce(1, *) }
}

/// What an optimizer keeps between updates: the one description that the state layout
/// (`SessionSpec.stateLayout`), the initial state, loading and saving, and a hot-swap's
/// `StateMapping` read — so a rule may keep any shapes, not only parameter-shaped slots.
public protocol OptimizerStateLayout: Sendable {
  /// The rule's state tensors for these parameters (in model order), in a fixed order.
  func stateTensors(for parameters: [ParameterShape]) -> [OptimizerStateTensor]

  /// What is wrong with a state whose every tensor already has a declared name, dtype and
  /// shape, beyond each tensor on its own (histories of different lengths, a count below zero).
  func stateProblems(_ tensors: [String: StoredTensor], parameters: [ParameterShape]) -> [String]
}

extension OptimizerStateLayout {
  public func stateProblems(_ tensors: [String: StoredTensor], parameters: [ParameterShape]) -> [String] { [] }
}

extension OptimizerSpec: OptimizerStateLayout {
  /// The five built-in rules are elementwise: each parameter has the slots `slots` lists, of
  /// its own shape; nothing spans the model.
  public func stateTensors(for parameters: [ParameterShape]) -> [OptimizerStateTensor] {
    if case .lbfgs(let o) = self { return LBFGSState.tensors(parameterCount: parameters.map(\.count).reduce(0, +), settings: o) }
    return parameters.flatMap { parameter in
      slots.map { slot, start in
        OptimizerStateTensor(
          key: .slot(parameter: parameter.name, slot), shape: parameter.shape, initialValue: start, holdsSquares: slot.holdsSquares)
      }
    }
  }
}

extension OptimizerSpec {
  public func stateProblems(_ tensors: [String: StoredTensor], parameters: [ParameterShape]) -> [String] {
    guard case .lbfgs(let o) = self else { return [] }
    return LBFGSState.problems(tensors, settings: o)
  }
}

/// The state of `torch.optim.LBFGS` under SpecBench's names (docs/spec-format.md, "L-BFGS
/// state"): one owner of the names, shapes and fresh values, for the rule and for loading.
public enum LBFGSState {
  /// `opt/model/d`, `[P]`.
  public static let direction = StateKey.optimizer("d")
  /// `opt/model/t`, `[]`.
  public static let stepSize = StateKey.optimizer("t")
  /// `opt/model/old_dirs`, `[k, P]`: the pairs' y (PyTorch's name).
  public static let oldDirs = StateKey.optimizer("old_dirs")
  /// `opt/model/old_stps`, `[k, P]`: the pairs' s.
  public static let oldSteps = StateKey.optimizer("old_stps")
  /// `opt/model/ro`, `[k]`.
  public static let ro = StateKey.optimizer("ro")
  /// `opt/model/H_diag`, `[]`.
  public static let hDiag = StateKey.optimizer("H_diag")
  /// `opt/model/prev_flat_grad`, `[P]`.
  public static let previousGradient = StateKey.optimizer("prev_flat_grad")
  /// `opt/model/prev_loss`, `[]`.
  public static let previousLoss = StateKey.optimizer("prev_loss")
  /// `opt/model/n_iter`, `I64 []`.
  public static let iterations = StateKey.optimizer("n_iter")
  /// `opt/model/func_evals`, `I64 []`.
  public static let evaluations = StateKey.optimizer("func_evals")

  /// The state file metadata key of the flat layout.
  public static let layoutMetadataKey = "lbfgs_flat_layout"

  /// The declared tensors, in the format's order, with their fresh values.
  public static func tensors(parameterCount p: Int, settings: OptimizerSpec.LBFGS) -> [OptimizerStateTensor] {
    [
      OptimizerStateTensor(key: direction, shape: [p]),
      OptimizerStateTensor(key: stepSize, shape: []),
      OptimizerStateTensor(key: oldDirs, shape: [0, p], maxRows: settings.historySize),
      OptimizerStateTensor(key: oldSteps, shape: [0, p], maxRows: settings.historySize),
      OptimizerStateTensor(key: ro, shape: [0], maxRows: settings.historySize),
      OptimizerStateTensor(key: hDiag, shape: [], initialValue: 1),
      OptimizerStateTensor(key: previousGradient, shape: [p]),
      OptimizerStateTensor(key: previousLoss, shape: []),
      OptimizerStateTensor(key: iterations, shape: [], isInteger: true),
      OptimizerStateTensor(key: evaluations, shape: [], isInteger: true),
    ]
  }

  /// The flat layout's text: `NAME:COUNT` in flat order, joined by `,`.
  public static func layoutText(_ parameters: [ParameterShape]) -> String {
    parameters.map { "\($0.name):\($0.count)" }.joined(separator: ",")
  }

  /// The problems of a state whose tensors each have their declared shape and dtype.
  static func problems(_ tensors: [String: StoredTensor], settings: OptimizerSpec.LBFGS) -> [String] {
    guard let dirs = tensors[oldDirs], let steps = tensors[oldSteps], let ros = tensors[ro], let h = tensors[hDiag],
      let n = tensors[iterations]?.integers, let evals = tensors[evaluations]?.integers
    else { return [] }
    var problems: [String] = []
    let k = ros.shape[0]
    if dirs.shape[0] != k || steps.shape[0] != k {
      problems.append(
        "the L-BFGS history is inconsistent: \(oldDirs.name) has \(dirs.shape[0]) rows, \(oldSteps.name) \(steps.shape[0]) and \(ro.name) \(k); all three hold the same pairs"
      )
    }
    if let bad = ros.scalars.firstIndex(where: { !($0 > 0) }) {
      problems.append(
        "\(ro.name) holds \(ros.scalars[bad]) at flat index \(bad); each is 1/(y·s) of a pair kept because y·s > 1e-10, so it is positive")
    }
    if let value = h.scalars.first, !(value > 0) {
      problems.append("\(hDiag.name) is \(value); it is y·s / y·y of a kept pair (or 1), so it is positive")
    }
    if let count = n.first, count < 0 { problems.append("\(iterations.name) is \(count); a count is never negative") }
    if let count = evals.first, count < 0 { problems.append("\(evaluations.name) is \(count); a count is never negative") }
    return problems
  }
}
