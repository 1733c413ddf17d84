/// The per-parameter slots an optimizer keeps, in the format's names (`opt/LAYER.weight/SLOT`).
public enum OptimizerSlot: String, CaseIterable, Hashable, Sendable {
  case momentumBuffer = "momentum_buffer"
  case expAvg = "exp_avg"
  case expAvgSq = "exp_avg_sq"
  case maxExpAvgSq = "max_exp_avg_sq"
  case squareAvg = "square_avg"
  case gradAvg = "grad_avg"
  case sum

  /// Whether it accumulates squares (never negative in a valid state).
  public var holdsSquares: Bool { [.expAvgSq, .maxExpAvgSq, .squareAvg, .sum].contains(self) }
}

/// The name of one tensor in a session's state file — the one owner of the `param/…`,
/// `buffer/…` and `opt/…/…` names, so that nobody writes them by hand.
///
/// ```
/// StateKey.parameter("dense1.weight").name                    // "param/dense1.weight"
/// StateKey.slot(parameter: "dense1.weight", .expAvg).name     // "opt/dense1.weight/exp_avg"
/// StateKey.optimizer("old_dirs").name                          // "opt/model/old_dirs"
/// StateKey(name: "buffer/bn.running_var")                      // .buffer("bn.running_var")
/// ```
public enum StateKey: Hashable, Sendable, CustomStringConvertible {
  /// A trainable parameter: `param/LAYER.weight`.
  case parameter(String)
  /// A non-trainable buffer (batch_norm's running statistics): `buffer/LAYER.running_mean`.
  case buffer(String)
  /// An optimizer slot of a parameter: `opt/LAYER.weight/SLOT`.
  case slot(parameter: String, OptimizerSlot)
  /// Optimizer state that spans the whole model (any shape, scalars too), as the optimizer's
  /// rule declares it: `opt/model/NAME`. (`model` has no `.`, so it is never a parameter.)
  case optimizer(String)
  /// State a backend keeps for itself (`engine/BACKEND/NAME`, any shape): kept through save
  /// and load, given back to that backend, dropped (with an event) when another one trains.
  case engine(backend: String, name: String)
  /// A Laplace posterior's curvature (format version 5): `posterior/NAME` (`NAME` may hold `/`).
  case posterior(String)

  /// The name in the safetensors file.
  public var name: String {
    switch self {
    case .parameter(let tensor): "param/" + tensor
    case .buffer(let tensor): "buffer/" + tensor
    case .slot(let parameter, let slot): "opt/" + parameter + "/" + slot.rawValue
    case .optimizer(let name): "opt/model/" + name
    case .engine(let backend, let name): "engine/" + backend + "/" + name
    case .posterior(let name): "posterior/" + name
    }
  }

  public var description: String { name }

  /// The layer tensor it belongs to (`dense1.weight`), a slot's parameter for a slot.
  public var tensor: String {
    switch self {
    case .parameter(let tensor), .buffer(let tensor): tensor
    case .slot(let parameter, _): parameter
    case .optimizer(let name), .engine(_, let name), .posterior(let name): name
    }
  }

  /// The key of a layer's tensor: a parameter or a buffer, by its role.
  public init(_ tensor: LayerTensor) {
    self = tensor.role == .parameter ? .parameter(tensor.name) : .buffer(tensor.name)
  }

  /// The key a file name stands for, or nil when it is none of the format's names.
  public init?(name: String) {
    if name.hasPrefix("param/"), name.count > 6 {
      self = .parameter(String(name.dropFirst(6)))
    } else if name.hasPrefix("buffer/"), name.count > 7 {
      self = .buffer(String(name.dropFirst(7)))
    } else if name.hasPrefix("opt/model/"), name.count > 10 {
      self = .optimizer(String(name.dropFirst(10)))
    } else if name.hasPrefix("opt/"), let slash = name.lastIndex(of: "/"), slash > name.index(name.startIndex, offsetBy: 4),
      let slot = OptimizerSlot(rawValue: String(name[name.index(after: slash)...]))
    {
      self = .slot(parameter: String(name[name.index(name.startIndex, offsetBy: 4)..<slash]), slot)
    } else if name.hasPrefix("posterior/"), name.count > 10 {
      self = .posterior(String(name.dropFirst(10)))
    } else if name.hasPrefix("engine/") {
      let rest = name.dropFirst(7)
      guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex, rest.index(after: slash) != rest.endIndex else { return nil }
      self = .engine(backend: String(rest[..<slash]), name: String(rest[rest.index(after: slash)...]))
    } else {
      return nil
    }
  }

  /// Whether it is an optimizer slot.
  public var isOptimizerSlot: Bool { if case .slot = self { true } else { false } }

  /// Whether it is the optimizer's: a slot of a parameter or state of the whole model.
  public var isOptimizerState: Bool {
    switch self {
    case .slot, .optimizer: true
    default: false
    }
  }

  /// Whether it is a posterior's curvature.
  public var isPosterior: Bool { if case .posterior = self { true } else { false } }

  /// The backend that keeps it, for `engine/…` state.
  public var engineBackend: String? { if case .engine(let backend, _) = self { backend } else { nil } }
}

extension [String: StoredTensor] {
  /// The tensor under `key`.
  public subscript(key: StateKey) -> StoredTensor? {
    get { self[key.name] }
    set { self[key.name] = newValue }
  }
}
