/// The optimizer: PyTorch's `torch.optim` update rules, exactly, with every field.
public enum OptimizerSpec: Hashable, Sendable {
  case sgd(SGD)
  case adam(Adam)
  /// Adam with decoupled weight decay (`p ← p − lr·wd·p` before the Adam step).
  case adamw(Adam)
  case rmsprop(RMSprop)
  case adagrad(Adagrad)
  /// `torch.optim.LBFGS` (format version 4): whole-model state, several evaluations a step.
  case lbfgs(LBFGS)

  public static let names = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "lbfgs"]

  /// `torch.optim.SGD`.
  public struct SGD: Hashable, Sendable {
    public var lr: Double
    public var momentum = 0.0
    public var dampening = 0.0
    public var nesterov = false
    public var weightDecay = 0.0

    public init(lr: Double, momentum: Double = 0, dampening: Double = 0, nesterov: Bool = false, weightDecay: Double = 0) {
      (self.lr, self.momentum, self.dampening, self.nesterov, self.weightDecay) = (lr, momentum, dampening, nesterov, weightDecay)
    }
  }

  /// `torch.optim.Adam` and `AdamW` (which differ in how `weightDecay` applies and its default).
  public struct Adam: Hashable, Sendable {
    public var lr = 0.001
    public var beta1 = 0.9
    public var beta2 = 0.999
    public var eps = 1e-8
    public var weightDecay: Double
    public var amsgrad = false

    public init(
      lr: Double = 0.001, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double, amsgrad: Bool = false
    ) {
      (self.lr, self.beta1, self.beta2, self.eps, self.weightDecay, self.amsgrad) = (lr, beta1, beta2, eps, weightDecay, amsgrad)
    }
  }

  /// `torch.optim.RMSprop`.
  public struct RMSprop: Hashable, Sendable {
    public var lr = 0.01
    public var alpha = 0.99
    public var eps = 1e-8
    public var momentum = 0.0
    public var centered = false
    public var weightDecay = 0.0

    public init(
      lr: Double = 0.01, alpha: Double = 0.99, eps: Double = 1e-8, momentum: Double = 0, centered: Bool = false, weightDecay: Double = 0
    ) {
      (self.lr, self.alpha, self.eps, self.momentum, self.centered, self.weightDecay) = (lr, alpha, eps, momentum, centered, weightDecay)
    }
  }

  /// `torch.optim.Adagrad`.
  public struct Adagrad: Hashable, Sendable {
    public var lr = 0.01
    public var lrDecay = 0.0
    public var eps = 1e-10
    public var initialAccumulatorValue = 0.0
    public var weightDecay = 0.0

    public init(lr: Double = 0.01, lrDecay: Double = 0, eps: Double = 1e-10, initialAccumulatorValue: Double = 0, weightDecay: Double = 0) {
      (self.lr, self.lrDecay, self.eps, self.initialAccumulatorValue, self.weightDecay) = (
        lr, lrDecay, eps, initialAccumulatorValue, weightDecay
      )
    }
  }

  /// `torch.optim.LBFGS`, with its fields and defaults (docs/training.md, "L-BFGS").
  public struct LBFGS: Hashable, Sendable {
    /// PyTorch's `line_search_fn`.
    public enum LineSearch: String, Hashable, Sendable, CaseIterable {
      case strongWolfe = "strong_wolfe"
    }

    /// The largest integer field: 2³¹ − 1.
    public static let integerLimit = Int(Int32.max)

    public var lr = 1.0
    public var maxIter = 20
    /// PyTorch's `max_eval`; nil means `maxIter * 5 / 4` (at least 1), as PyTorch's `None`.
    public var maxEval: Int?
    public var toleranceGrad = 1e-7
    public var toleranceChange = 1e-9
    public var historySize = 100
    /// nil: a fixed step `t` (PyTorch's `line_search_fn=None`).
    public var lineSearch: LineSearch?

    public init(
      lr: Double = 1, maxIter: Int = 20, maxEval: Int? = nil, toleranceGrad: Double = 1e-7, toleranceChange: Double = 1e-9,
      historySize: Int = 100, lineSearch: LineSearch? = nil
    ) {
      (self.lr, self.maxIter, self.maxEval, self.toleranceGrad, self.toleranceChange, self.historySize, self.lineSearch) = (
        lr, maxIter, maxEval, toleranceGrad, toleranceChange, historySize, lineSearch
      )
    }

    /// The evaluation budget a step checks after each iteration: `max_eval`, or PyTorch's
    /// default `max_iter * 5 // 4` — at least 1, so that a step may always evaluate once.
    public var evaluationBudget: Int { maxEval ?? max(1, maxIter * 5 / 4) }
  }

  public var name: String {
    switch self {
    case .sgd: "sgd"
    case .adam: "adam"
    case .adamw: "adamw"
    case .rmsprop: "rmsprop"
    case .adagrad: "adagrad"
    case .lbfgs: "lbfgs"
    }
  }

  /// The base learning rate (before the schedule).
  public var learningRate: Double {
    get {
      switch self {
      case .sgd(let o): o.lr
      case .adam(let o), .adamw(let o): o.lr
      case .rmsprop(let o): o.lr
      case .adagrad(let o): o.lr
      case .lbfgs(let o): o.lr
      }
    }
    set {
      switch self {
      case .sgd(var o):
        o.lr = newValue
        self = .sgd(o)
      case .adam(var o):
        o.lr = newValue
        self = .adam(o)
      case .adamw(var o):
        o.lr = newValue
        self = .adamw(o)
      case .rmsprop(var o):
        o.lr = newValue
        self = .rmsprop(o)
      case .adagrad(var o):
        o.lr = newValue
        self = .adagrad(o)
      case .lbfgs(var o):
        o.lr = newValue
        self = .lbfgs(o)
      }
    }
  }

  /// The per-parameter state slots this optimizer keeps, in the format's names, with the value a
  /// fresh slot starts at. Slots that only some settings use appear only when used.
  public var slots: [(slot: OptimizerSlot, initialValue: Float)] {
    switch self {
    case .sgd(let o): o.momentum > 0 ? [(.momentumBuffer, 0)] : []
    case .adam(let o), .adamw(let o): [(.expAvg, 0), (.expAvgSq, 0)] + (o.amsgrad ? [(.maxExpAvgSq, 0)] : [])
    case .rmsprop(let o):
      [(.squareAvg, 0)] + (o.momentum > 0 ? [(.momentumBuffer, 0)] : []) + (o.centered ? [(.gradAvg, 0)] : [])
    case .adagrad(let o): [(.sum, Float(o.initialAccumulatorValue))]
    case .lbfgs: []
    }
  }

  public var json: JSONValue {
    func object(_ pairs: [(String, JSONValue)]) -> JSONValue {
      .object([JSONObject.Member(key: "type", value: .string(name))] + pairs.map { JSONObject.Member(key: $0.0, value: $0.1) })
    }
    switch self {
    case .sgd(let o):
      return object([
        ("lr", .double(o.lr)), ("momentum", .double(o.momentum)), ("dampening", .double(o.dampening)),
        ("nesterov", .bool(o.nesterov)), ("weight_decay", .double(o.weightDecay)),
      ])
    case .adam(let o), .adamw(let o):
      return object([
        ("lr", .double(o.lr)), ("beta1", .double(o.beta1)), ("beta2", .double(o.beta2)), ("eps", .double(o.eps)),
        ("weight_decay", .double(o.weightDecay)), ("amsgrad", .bool(o.amsgrad)),
      ])
    case .rmsprop(let o):
      return object([
        ("lr", .double(o.lr)), ("alpha", .double(o.alpha)), ("eps", .double(o.eps)), ("momentum", .double(o.momentum)),
        ("centered", .bool(o.centered)), ("weight_decay", .double(o.weightDecay)),
      ])
    case .adagrad(let o):
      return object([
        ("lr", .double(o.lr)), ("lr_decay", .double(o.lrDecay)), ("eps", .double(o.eps)),
        ("initial_accumulator_value", .double(o.initialAccumulatorValue)), ("weight_decay", .double(o.weightDecay)),
      ])
    case .lbfgs(let o):
      return object([
        ("lr", .double(o.lr)), ("max_iter", .int(o.maxIter)), ("max_eval", o.maxEval.map { .int($0) } ?? .null),
        ("tolerance_grad", .double(o.toleranceGrad)), ("tolerance_change", .double(o.toleranceChange)),
        ("history_size", .int(o.historySize)), ("line_search", o.lineSearch.map { .string($0.rawValue) } ?? .null),
      ])
    }
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> OptimizerSpec? {
    guard var r = ObjectReader(value, at: path, log: log, what: "an optimizer object such as {\"type\": \"adam\", \"lr\": 0.001}") else {
      return nil
    }
    defer { r.finish() }
    guard let type = r.choice("type", names.map { ($0, $0) }, what: "optimizer") else { return nil }
    switch type {
    case "sgd":
      let o = SGD(
        lr: r.number("lr", .positive), momentum: r.number("momentum", default: 0, .nonNegative),
        dampening: r.number("dampening", default: 0, .closed(0, 1)), nesterov: r.boolean("nesterov", default: false),
        weightDecay: r.number("weight_decay", default: 0, .nonNegative))
      if o.nesterov && (o.momentum <= 0 || o.dampening != 0) {
        log.report(
          path + "nesterov", "needs momentum > 0 and dampening 0 (as in PyTorch), got momentum \(o.momentum) and dampening \(o.dampening)",
          at: r.raw("nesterov")?.location)
      }
      return .sgd(o)
    case "adam", "adamw":
      let o = Adam(
        lr: r.number("lr", default: 0.001, .positive), beta1: r.number("beta1", default: 0.9, .halfOpen(0, 1)),
        beta2: r.number("beta2", default: 0.999, .halfOpen(0, 1)), eps: r.number("eps", default: 1e-8, .nonNegative),
        weightDecay: r.number("weight_decay", default: type == "adam" ? 0 : 0.01, .nonNegative),
        amsgrad: r.boolean("amsgrad", default: false))
      return type == "adam" ? .adam(o) : .adamw(o)
    case "rmsprop":
      return .rmsprop(
        RMSprop(
          lr: r.number("lr", default: 0.01, .positive), alpha: r.number("alpha", default: 0.99, .closed(0, 1)),
          eps: r.number("eps", default: 1e-8, .nonNegative), momentum: r.number("momentum", default: 0, .nonNegative),
          centered: r.boolean("centered", default: false), weightDecay: r.number("weight_decay", default: 0, .nonNegative)))
    case "lbfgs":
      let limit = Rule<Int>("an integer from 1 to \(LBFGS.integerLimit)") { $0 >= 1 && $0 <= LBFGS.integerLimit }
      var o = LBFGS(
        lr: r.number("lr", default: 1, .positive), maxIter: r.integer("max_iter", default: 20, limit),
        toleranceGrad: r.number("tolerance_grad", default: 1e-7, .nonNegative),
        toleranceChange: r.number("tolerance_change", default: 1e-9, .nonNegative),
        historySize: r.integer("history_size", default: 100, limit))
      if let value = r.raw("max_eval"), !value.isNull {
        if let number = value.numberValue?.int, limit.accepts(number) {
          o.maxEval = number
        } else {
          r.wrong("max_eval", value, expected: "null (max_iter·5 div 4) or " + limit.expected)
        }
      }
      if let value = r.raw("line_search"), !value.isNull {
        let options = LBFGS.LineSearch.allCases.map { ($0.rawValue, $0) }
        o.lineSearch = ObjectReader.choice(value, at: path + "line_search", options, what: "line search (or null for none)", log: log)
      }
      return .lbfgs(o)
    default:
      return .adagrad(
        Adagrad(
          lr: r.number("lr", default: 0.01, .positive), lrDecay: r.number("lr_decay", default: 0, .nonNegative),
          eps: r.number("eps", default: 1e-10, .nonNegative),
          initialAccumulatorValue: r.number("initial_accumulator_value", default: 0, .nonNegative),
          weightDecay: r.number("weight_decay", default: 0, .nonNegative)))
    }
  }
}
