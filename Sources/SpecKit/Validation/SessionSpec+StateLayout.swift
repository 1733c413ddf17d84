/// One tensor of a session's state, as named in its `.safetensors` file.
public struct StateTensorInfo: Hashable, Sendable {
  public enum Kind: Hashable, Sendable {
    /// `param/LAYER.weight`
    case parameter
    /// `buffer/LAYER.running_mean`
    case buffer
    /// `opt/LAYER.weight/SLOT`, for the parameter named `parameter` (`LAYER.weight`).
    case optimizerSlot(parameter: String, slot: OptimizerSlot)
    /// `opt/model/NAME`: optimizer state that spans the whole model.
    case optimizerState(name: String)
    /// `posterior/NAME`: a Laplace posterior's curvature.
    case posterior
  }

  /// The name in the safetensors file.
  public var name: String
  public var shape: [Int]
  public var kind: Kind
  /// What a fresh optimizer tensor starts at (0 for parameters and buffers, whose values come
  /// from their initializers).
  public var initialValue: Float = 0
  /// Whether it accumulates squares (never negative in a valid state).
  public var holdsSquares = false
  /// For a growing history: `shape` has 0 rows and a state may hold up to this many.
  public var maxRows: Int?
  /// Whether it is an exact count (`I64`).
  public var isInteger = false

  /// Whether a tensor of `other` shape fits it (see `OptimizerStateTensor.accepts`).
  public func accepts(shape other: [Int]) -> Bool {
    OptimizerStateTensor.fits(other, declared: shape, maxRows: maxRows)
  }

  /// Whether it is the optimizer's (a slot or whole-model state).
  public var isOptimizerState: Bool {
    switch kind {
    case .optimizerSlot, .optimizerState: true
    case .parameter, .buffer, .posterior: false
    }
  }

  /// What a fresh state holds: `initialValue` everywhere, as an exact count when it is one.
  public var freshTensor: StoredTensor {
    isInteger
      ? StoredTensor(shape: shape, integers: Array(repeating: Int64(initialValue), count: shape.reduce(1, *)))
      : StoredTensor(shape: shape, repeating: initialValue)
  }
}

extension SessionSpec {
  /// Every tensor the state of this spec holds, in model order: each layer's parameters and
  /// buffers, then the optimizer's state as its rule declares it (for the built-in rules, each
  /// parameter's slots).
  ///
  /// - Parameter rule: whose state layout to use; the spec's optimizer when nil.
  /// - Throws: `SpecError.invalid` when the model's shapes do not chain.
  public func stateLayout(optimizer rule: (any OptimizerStateLayout)? = nil) throws(SpecError) -> [StateTensorInfo] {
    let tensors = try model.layerShapes().flatMap(\.tensors)
    var layout: [StateTensorInfo] = tensors.map {
      StateTensorInfo(
        name: StateKey($0).name, shape: $0.shape, kind: $0.role == .parameter ? .parameter : .buffer,
        holdsSquares: $0.role == .buffer && $0.name.hasSuffix(".running_var"))
    }
    let parameters = tensors.filter { $0.role == .parameter }.map { ParameterShape(name: $0.name, shape: $0.shape) }
    for declared in (rule ?? optimizer).stateTensors(for: parameters) {
      let kind: StateTensorInfo.Kind =
        switch declared.key {
        case .slot(let parameter, let slot): .optimizerSlot(parameter: parameter, slot: slot)
        default: .optimizerState(name: declared.key.tensor)
        }
      layout.append(
        StateTensorInfo(
          name: declared.key.name, shape: declared.shape, kind: kind, initialValue: declared.initialValue,
          holdsSquares: declared.holdsSquares, maxRows: declared.maxRows, isInteger: declared.isInteger))
    }
    if let posterior, case .success(let covered) = posteriorLayout(posterior.subset) {
      for tensor in covered.tensors(posterior.hessian) {
        layout.append(StateTensorInfo(name: tensor.name, shape: tensor.shape, kind: .posterior, holdsSquares: tensor.nonNegative))
      }
    }
    return layout
  }

  /// The state before any training: parameters and buffers from their seeded initializers,
  /// the optimizer's state at its starting values (for the built-in rules: zeros; Adagrad's
  /// `sum` at `initial_accumulator_value`).
  ///
  /// - Parameter rule: whose state layout to use; the spec's optimizer when nil.
  public func initialTensors(optimizer rule: (any OptimizerStateLayout)? = nil) throws(SpecError) -> [String: StoredTensor] {
    var result: [String: StoredTensor] = [:]
    for tensor in try model.layerShapes().flatMap(\.tensors) {
      let values = tensor.initializer.values(
        count: tensor.count, fanIn: tensor.fanIn, fanOut: tensor.fanOut, seed: training.seed, tensorName: tensor.name)
      result[StateKey(tensor)] = StoredTensor(shape: tensor.shape, scalars: values)
    }
    for info in try stateLayout(optimizer: rule) where info.isOptimizerState {
      result[info.name] = info.freshTensor
    }
    return result
  }

  /// The parameters as an optimizer rule sees them, in model order (the flat layout's order).
  public func parameterShapes() throws(SpecError) -> [ParameterShape] {
    try model.layerShapes().flatMap(\.tensors).filter { $0.role == .parameter }.map { ParameterShape(name: $0.name, shape: $0.shape) }
  }

  /// The L-BFGS flat layout's text (`LBFGSState.layoutText`) when the optimizer is `lbfgs`.
  public var lbfgsLayoutText: String? {
    guard case .lbfgs = optimizer, let parameters = try? parameterShapes() else { return nil }
    return LBFGSState.layoutText(parameters)
  }

  /// A state at step 0 with the generators at their seeded starting positions; the file name
  /// and hash are filled in when the session is saved.
  public func initialStateRecord() -> StateSpec {
    StateSpec(
      step: 0, epoch: 0, tensors: "", sha256: "", epochOrderSeed: SeedStreams.initialEpochOrderSeed(trainingSeed: training.seed), index: 0,
      dropoutRNG: SeedStreams.initialDropoutState(trainingSeed: training.seed))
  }

  /// Every way `tensors` differs from this spec's layout: missing and unexpected names, wrong
  /// shapes, non-finite values, negative values in tensors that hold squares (slots and buffers
  /// of sums or averages of squares: a negative one would make the next update take the square
  /// root of a negative number). Empty when they belong together.
  ///
  /// - Parameter rule: whose state layout to check against; the spec's optimizer when nil.
  public func stateProblems(_ tensors: [String: StoredTensor], optimizer rule: (any OptimizerStateLayout)? = nil) -> [String] {
    guard let layout = try? stateLayout(optimizer: rule) else { return ["the model's shapes do not chain, so no state can match it"] }
    var problems: [String] = []
    let expected = Dictionary(layout.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
    for info in layout {
      guard let tensor = tensors[info.name] else {
        problems.append("missing tensor \(info.name) of shape \(info.shape)")
        continue
      }
      if !info.accepts(shape: tensor.shape) {
        let needed = info.maxRows.map { "[k\(info.shape.dropFirst().map { ", \($0)" }.joined())] with k ≤ \($0)" } ?? "\(info.shape)"
        problems.append("\(info.name) has shape \(tensor.shape), but the model needs \(needed)")
      } else if (tensor.integers != nil) != info.isInteger {
        problems.append(
          info.isInteger
            ? "\(info.name) is F32, but it is an exact count stored as I64" : "\(info.name) is I64, but it holds values stored as F32")
      } else if let bad = tensor.scalars.firstIndex(where: { !$0.isFinite }) {
        problems.append("\(info.name) holds a non-finite value (\(tensor.scalars[bad])) at flat index \(bad)")
      } else if info.holdsSquares, let bad = tensor.scalars.firstIndex(where: { $0 < 0 }) {
        problems.append(
          "\(info.name) holds a negative value (\(tensor.scalars[bad])) at flat index \(bad); it accumulates squares, which are never negative"
        )
      }
    }
    if problems.isEmpty, let parameters = try? parameterShapes() {
      problems += (rule ?? optimizer).stateProblems(tensors, parameters: parameters)
    }
    // A backend's own state (`engine/BACKEND/NAME`) is not the model's: any shape, but finite.
    for (name, tensor) in tensors.sorted(by: { $0.key < $1.key }) where StateKey(name: name)?.engineBackend != nil {
      if tensor.integers != nil {
        problems.append("\(TextExcerpt.short(name, limit: 64)) is I64; a backend's own state is F32")
      } else if let bad = tensor.scalars.firstIndex(where: { !$0.isFinite }) {
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
