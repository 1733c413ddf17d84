/// One tensor of a session's state, as named in its `.safetensors` file.
public struct StateTensorInfo: Hashable, Sendable {
  public enum Kind: Hashable, Sendable {
    /// `param/LAYER.weight`
    case parameter
    /// `buffer/LAYER.running_mean`
    case buffer
    /// `opt/LAYER.weight/SLOT`, for the parameter named `parameter` (`LAYER.weight`).
    case optimizerSlot(parameter: String, slot: OptimizerSlot)
  }

  /// The name in the safetensors file.
  public var name: String
  public var shape: [Int]
  public var kind: Kind
}

extension SessionSpec {
  /// Every tensor the state of this spec holds, in model order: each layer's parameters and
  /// buffers, then each parameter's optimizer slots.
  ///
  /// - Throws: `SpecError.invalid` when the model's shapes do not chain.
  public func stateLayout() throws(SpecError) -> [StateTensorInfo] {
    let tensors = try model.layerShapes().flatMap(\.tensors)
    var layout: [StateTensorInfo] = tensors.map {
      StateTensorInfo(name: StateKey($0).name, shape: $0.shape, kind: $0.role == .parameter ? .parameter : .buffer)
    }
    for tensor in tensors where tensor.role == .parameter {
      for (slot, _) in optimizer.slots {
        layout.append(
          StateTensorInfo(
            name: StateKey.slot(parameter: tensor.name, slot).name, shape: tensor.shape,
            kind: .optimizerSlot(parameter: tensor.name, slot: slot)))
      }
    }
    return layout
  }

  /// The state before any training: parameters and buffers from their seeded initializers,
  /// optimizer slots at their starting values (zeros; Adagrad's `sum` at
  /// `initial_accumulator_value`).
  public func initialTensors() throws(SpecError) -> [String: StoredTensor] {
    var result: [String: StoredTensor] = [:]
    for tensor in try model.layerShapes().flatMap(\.tensors) {
      let values = tensor.initializer.values(
        count: tensor.count, fanIn: tensor.fanIn, fanOut: tensor.fanOut, seed: training.seed, tensorName: tensor.name)
      result[StateKey(tensor)] = StoredTensor(shape: tensor.shape, scalars: values)
      if tensor.role == .parameter {
        for (slot, start) in optimizer.slots {
          result[StateKey.slot(parameter: tensor.name, slot)] = StoredTensor(shape: tensor.shape, repeating: start)
        }
      }
    }
    return result
  }

  /// Slots and buffers that hold sums or averages of squares (variances): a negative value in
  /// one would make the next update take the square root of a negative number.
  static func holdsSquares(_ info: StateTensorInfo) -> Bool {
    switch info.kind {
    case .optimizerSlot(_, let slot): slot.holdsSquares
    case .buffer: info.name.hasSuffix(".running_var")
    case .parameter: false
    }
  }

  /// A state at step 0 with the generators at their seeded starting positions; the file name
  /// and hash are filled in when the session is saved.
  public func initialStateRecord() -> StateSpec {
    StateSpec(
      step: 0, epoch: 0, tensors: "", sha256: "", epochOrderSeed: SeedStreams.initialEpochOrderSeed(trainingSeed: training.seed), index: 0,
      dropoutRNG: SeedStreams.initialDropoutState(trainingSeed: training.seed))
  }

  /// Every way `tensors` differs from this spec's layout: missing and unexpected names, wrong
  /// shapes, non-finite values. Empty when they belong together.
  public func stateProblems(_ tensors: [String: StoredTensor]) -> [String] {
    guard let layout = try? stateLayout() else { return ["the model's shapes do not chain, so no state can match it"] }
    var problems: [String] = []
    let expected = Dictionary(layout.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
    for info in layout {
      guard let tensor = tensors[info.name] else {
        problems.append("missing tensor \(info.name) of shape \(info.shape)")
        continue
      }
      if tensor.shape != info.shape {
        problems.append("\(info.name) has shape \(tensor.shape), but the model needs \(info.shape)")
      } else if let bad = tensor.scalars.firstIndex(where: { !$0.isFinite }) {
        problems.append("\(info.name) holds a non-finite value (\(tensor.scalars[bad])) at flat index \(bad)")
      } else if Self.holdsSquares(info), let bad = tensor.scalars.firstIndex(where: { $0 < 0 }) {
        problems.append(
          "\(info.name) holds a negative value (\(tensor.scalars[bad])) at flat index \(bad); it accumulates squares, which are never negative"
        )
      }
    }
    // A backend's own state (`engine/BACKEND/NAME`) is not the model's: any shape, but finite.
    for (name, tensor) in tensors.sorted(by: { $0.key < $1.key }) where StateKey(name: name)?.engineBackend != nil {
      if let bad = tensor.scalars.firstIndex(where: { !$0.isFinite }) {
        problems.append("\(TextExcerpt.short(name, limit: 64)) holds a non-finite value (\(tensor.scalars[bad])) at flat index \(bad)")
      }
    }
    let unexpected = tensors.keys.sorted().filter { expected[$0] == nil && StateKey(name: $0)?.engineBackend == nil }
    for name in unexpected.prefix(20) {
      problems.append("unexpected tensor \(TextExcerpt.short(name, limit: 64)): the model and optimizer have no such tensor")
    }
    if unexpected.count > 20 { problems.append("and \(unexpected.count - 20) more unexpected tensors") }
    return problems
  }
}
