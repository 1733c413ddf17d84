import SpecKit

/// How a training state follows a change of the spec, so that what can be kept is kept.
public enum StateMapping {
  /// The state for `new` after training with `old`'s optimizer, and what happened to the slots.
  ///
  /// - Same optimizer type: every slot both use keeps its values and the optimizer keeps its
  ///   update count (changing lr or betas keeps the moments); a slot only the new settings use
  ///   (momentum or amsgrad switched on) starts fresh.
  /// - adam ↔ adamw: the moments and the update count are kept.
  /// - Any other change: fresh slots, and the new optimizer counts its updates from 1.
  public static func optimizerChange(from old: SessionSpec, to new: SessionSpec, state: TrainingState) throws(SpecError) -> (
    TrainingState, detail: String
  ) {
    let (from, to) = (old.optimizer, new.optimizer)
    let compatible = from.name == to.name || Set([from.name, to.name]) == ["adam", "adamw"]
    var result = state
    result.tensors = state.tensors.filter { StateKey(name: $0.key)?.isOptimizerSlot != true }
    let kept = compatible ? Set(from.slots.map(\.slot)) : []
    var fresh: Set<OptimizerSlot> = []
    for info in try new.stateLayout() {
      guard case .optimizerSlot(_, let slot) = info.kind else { continue }
      if kept.contains(slot), let tensor = state.tensors[info.name] {
        result.tensors[info.name] = tensor
      } else {
        let start = to.slots.first { $0.slot == slot }?.initialValue ?? 0
        result.tensors[info.name] = StoredTensor(shape: info.shape, repeating: start)
        fresh.insert(slot)
      }
    }
    if !compatible { result.optimizerSteps = 0 }
    let change = from.name == to.name ? "\(to.name) settings changed" : "\(from.name) -> \(to.name)"
    let keptSlots = Set(to.slots.map(\.slot)).subtracting(fresh).map(\.rawValue).sorted()
    let detail: String
    if !compatible {
      detail =
        "\(change): fresh optimizer state (\(to.slots.isEmpty ? "no slots" : to.slots.map(\.slot.rawValue).joined(separator: ", "))), counting from update 1"
    } else {
      detail =
        "\(change): kept " + (keptSlots.isEmpty ? "the update count" : keptSlots.joined(separator: ", ") + " and the update count")
        + (fresh.isEmpty ? "" : "; fresh " + fresh.map(\.rawValue).sorted().joined(separator: ", "))
    }
    return (result, detail)
  }

  /// The state for a changed model: every tensor whose layer name and shape are unchanged keeps
  /// its values (and its optimizer slots); new or reshaped tensors start from their seeded
  /// initializers (slots from their starting values). Returns the parameter and buffer names
  /// that were kept and that are fresh.
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
      if let old = state.tensors[info.name], old.shape == info.shape {
        result.tensors[info.name] = old
        if case .optimizerSlot = info.kind {} else { kept.append(info.name) }
      } else {
        result.tensors[info.name] = initial[info.name]
        if case .optimizerSlot = info.kind {} else { fresh.append(info.name) }
      }
    }
    return (result, kept, fresh)
  }
}
