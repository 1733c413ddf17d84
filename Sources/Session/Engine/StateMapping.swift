import SpecKit

/// How a training state follows a change of the spec, so that what can be kept is kept.
public enum StateMapping {
  /// The state for `new` after training with `old`'s optimizer, and what happened to its state.
  /// Both layouts are the rules' own declarations (`OptimizerStateLayout`), so a rule that keeps
  /// whole-model tensors maps like one that keeps slots.
  ///
  /// - Same optimizer type: every tensor both declare with the same shape keeps its values and
  ///   the optimizer keeps its update count (changing lr or betas keeps the moments); a tensor
  ///   only the new settings use (momentum or amsgrad switched on) starts fresh.
  /// - adam ↔ adamw: the moments and the update count are kept.
  /// - Any other change: fresh state, and the new optimizer counts its updates from 1.
  public static func optimizerChange(from old: SessionSpec, to new: SessionSpec, state: TrainingState) throws(SpecError) -> (
    TrainingState, detail: String
  ) {
    let (from, to) = (old.optimizer, new.optimizer)
    let compatible = from.name == to.name || Set([from.name, to.name]) == ["adam", "adamw"]
    var result = state
    result.tensors = state.tensors.filter { StateKey(name: $0.key)?.isOptimizerState != true }
    let oldShapes = Dictionary(
      try old.stateLayout().filter(\.isOptimizerState).map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
    var kept: Set<String> = [], fresh: Set<String> = [], all: [String] = []
    for info in try new.stateLayout() where info.isOptimizerState {
      let label = Self.label(info)
      if !all.contains(label) { all.append(label) }
      if compatible, let oldShape = oldShapes[info.name], let tensor = state.tensors[info.name],
        let carried = carried(tensor, declaredAs: oldShape, into: info)
      {
        result.tensors[info.name] = carried
        kept.insert(label)
      } else {
        result.tensors[info.name] = info.freshTensor
        fresh.insert(label)
      }
    }
    if !compatible { result.optimizerSteps = 0 }
    let change = from.name == to.name ? "\(to.name) settings changed" : "\(from.name) -> \(to.name)"
    let keptLabels = kept.subtracting(fresh).sorted()
    let detail: String
    if !compatible {
      detail = "\(change): fresh optimizer state (\(all.isEmpty ? "no slots" : all.joined(separator: ", "))), counting from update 1"
    } else {
      detail =
        "\(change): kept " + (keptLabels.isEmpty ? "the update count" : keptLabels.joined(separator: ", ") + " and the update count")
        + (fresh.isEmpty ? "" : "; fresh " + fresh.sorted().joined(separator: ", "))
    }
    return (result, detail)
  }

  /// `tensor` (declared by the old settings as `oldShape`) as the new settings' `info` keeps
  /// it: unchanged when both declare the same shape and dtype; a growing history (L-BFGS's
  /// pairs) with the same trailing shape keeps its newest rows, as many as the new settings
  /// allow. Nil when it cannot be kept.
  static func carried(_ tensor: StoredTensor, declaredAs oldShape: [Int], into info: StateTensorInfo) -> StoredTensor? {
    guard (tensor.integers != nil) == info.isInteger else { return nil }
    guard let maxRows = info.maxRows else { return oldShape == info.shape ? tensor : nil }
    guard tensor.shape.count == info.shape.count, !tensor.shape.isEmpty, tensor.shape.dropFirst() == info.shape.dropFirst() else {
      return nil
    }
    let rows = tensor.shape[0]
    guard rows > maxRows else { return tensor }
    let width = tensor.shape.dropFirst().reduce(1, *)
    let start = (rows - maxRows) * width
    return StoredTensor(shape: [maxRows] + Array(tensor.shape.dropFirst()), scalars: Array(tensor.scalars[start..<tensor.scalars.count]))
  }

  /// How a mapping names an optimizer tensor: a slot by its slot name (`exp_avg`, for every
  /// parameter at once), whole-model state by its own (`model/old_dirs`).
  static func label(_ info: StateTensorInfo) -> String {
    switch info.kind {
    case .optimizerSlot(_, let slot): slot.rawValue
    case .optimizerState(let name): "model/" + name
    case .parameter, .buffer, .posterior: info.name
    }
  }

  /// The state for a changed model: every tensor whose layer name and shape are unchanged keeps
  /// its values (and its optimizer slots); new or reshaped tensors start from their seeded
  /// initializers (slots from their starting values). Optimizer state that spans the whole
  /// model (`opt/model/…`) describes the old model, so it starts fresh. Returns the parameter
  /// and buffer names that were kept and that are fresh.
  public static func architectureChange(to new: SessionSpec, state: TrainingState) throws(SpecError) -> (
    TrainingState, kept: [String], fresh: [String]
  ) {
    let initial = try new.initialTensors()
    var result = state
    // A backend's own state is its to judge against the new model: kept.
    result.tensors = state.tensors.filter { StateKey(name: $0.key)?.engineBackend != nil }
    var kept: [String] = []
    var fresh: [String] = []
    for info in try new.stateLayout() {
      let spansModel = if case .optimizerState = info.kind { true } else { false }
      if !spansModel, let old = state.tensors[info.name], old.shape == info.shape {
        result.tensors[info.name] = old
        if !info.isOptimizerState { kept.append(info.name) }
      } else {
        result.tensors[info.name] = initial[info.name]
        if !info.isOptimizerState { fresh.append(info.name) }
      }
    }
    return (result, kept, fresh)
  }
}
