import Foundation

/// A Laplace posterior of a session's weights (`posterior`, format version 5): a Gaussian
/// around the state's parameters with precision H + δI, H the summed loss's generalised
/// Gauss–Newton matrix over the training data (its data term kept in the state under
/// `posterior/…`). See docs/spec-format.md and docs/bayes.md.
public struct PosteriorSpec: Hashable, Sendable {
  public enum Subset: String, CaseIterable, Hashable, Sendable {
    case lastLayer = "last_layer"
    case all
  }

  public enum Hessian: String, CaseIterable, Hashable, Sendable {
    case full, diag, kron
  }

  public enum Tuning: String, CaseIterable, Hashable, Sendable {
    case fixed, marglik
  }

  public enum Predictive: String, CaseIterable, Hashable, Sendable {
    case probit, mc
  }

  public var subset: Subset
  public var hessian: Hessian
  public var priorPrecision: Double
  public var priorTuning: Tuning
  /// For `mse`: the Gaussian likelihood's noise standard deviation.
  public var noiseSigma: Double?
  public var predictive: Predictive
  public var samples: Int
  /// The state's step the posterior was fitted at.
  public var step: Int
  /// The training samples the curvature summed over.
  public var dataCount: Int

  /// The most values a `full` matrix's subset may hold.
  public static let fullLimit = 4096
  public static let maxSamples = 100_000

  public init(
    subset: Subset = .lastLayer, hessian: Hessian = .full, priorPrecision: Double, priorTuning: Tuning = .fixed, noiseSigma: Double? = nil,
    predictive: Predictive = .probit, samples: Int = 100, step: Int, dataCount: Int
  ) {
    (self.subset, self.hessian, self.priorPrecision, self.priorTuning) = (subset, hessian, priorPrecision, priorTuning)
    (self.noiseSigma, self.predictive, self.samples, self.step, self.dataCount) = (noiseSigma, predictive, samples, step, dataCount)
  }

  public var json: JSONValue {
    .object([
      "method": .string("laplace"), "subset": .string(subset.rawValue), "hessian": .string(hessian.rawValue),
      "prior_precision": .double(priorPrecision), "prior_tuning": .string(priorTuning.rawValue),
      "noise_sigma": noiseSigma.map { .double($0) } ?? .null, "predictive": .string(predictive.rawValue), "samples": .int(samples),
      "step": .int(step), "data_count": .int(dataCount),
    ])
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> PosteriorSpec? {
    guard var r = ObjectReader(value, at: path, log: log, what: "a posterior object such as {\"method\": \"laplace\", …}, or null") else {
      return nil
    }
    defer { r.finish() }
    _ = r.choice("method", [("laplace", 0)], what: "posterior method")
    var spec = PosteriorSpec(priorPrecision: 1, step: 0, dataCount: 1)
    spec.subset = r.choice("subset", default: .lastLayer, Subset.allCases.map { ($0.rawValue, $0) }, what: "subset") ?? .lastLayer
    spec.hessian = r.choice("hessian", default: .full, Hessian.allCases.map { ($0.rawValue, $0) }, what: "hessian") ?? .full
    spec.priorPrecision = r.number("prior_precision", .positiveFloat32)
    spec.priorTuning = r.choice("prior_tuning", default: .fixed, Tuning.allCases.map { ($0.rawValue, $0) }, what: "prior tuning") ?? .fixed
    if let raw = r.raw("noise_sigma"), !raw.isNull {
      if let sigma = raw.numberValue?.double, sigma >= Double(Float.leastNormalMagnitude), sigma <= 1e18 {
        spec.noiseSigma = sigma
      } else {
        r.wrong("noise_sigma", raw, expected: "a positive number (the noise's standard deviation), or null")
      }
    }
    spec.predictive = r.choice("predictive", default: .probit, Predictive.allCases.map { ($0.rawValue, $0) }, what: "predictive") ?? .probit
    spec.samples = r.integer("samples", default: 100, Rule("an integer from 1 to \(maxSamples)") { $0 >= 1 && $0 <= maxSamples })
    spec.step = r.integer("step", StateSpec.countRule)
    spec.dataCount = r.integer("data_count", .positive)
    return spec
  }

  /// The generator of the `mc` predictive's draws.
  public static func predictiveNoise(seed: UInt64) -> SplitMix64 { SplitMix64(seed: seed, stream: "posterior/predict") }
}

/// What the curvature covers: the subset's parameters in flat order, and the dense layers whose
/// blocks `kron` factors.
public struct PosteriorLayout: Hashable, Sendable {
  /// The subset's parameters, in the model's parameter order.
  public var parameters: [ParameterShape]
  /// For `kron`: each dense layer of the subset with its weight and bias names, inputs and units.
  public var kronLayers: [KronLayer]

  public struct KronLayer: Hashable, Sendable {
    public var layer: String
    public var weight: String
    public var bias: String?
    public var inputs: Int
    public var units: Int
    /// A's side: the inputs, plus one for the bias.
    public var side: Int { inputs + (bias == nil ? 0 : 1) }
  }

  public var count: Int { parameters.reduce(0) { $0 + $1.shape.reduce(1, *) } }

  /// The parameters `kron` keeps diagonal: those of the subset's layers that are not dense.
  public var outsideKron: [ParameterShape] {
    let covered = Set(kronLayers.flatMap { [$0.weight] + ($0.bias.map { [$0] } ?? []) })
    return parameters.filter { !covered.contains($0.name) }
  }

  /// The tensors the state holds for `hessian`: names and shapes, in order.
  public func tensors(_ hessian: PosteriorSpec.Hessian) -> [(name: String, shape: [Int], nonNegative: Bool)] {
    switch hessian {
    case .full: return [(StateKey.posterior("ggn").name, [count, count], false)]
    case .diag: return parameters.map { (StateKey.posterior("ggn_diag/" + $0.name).name, $0.shape, true) }
    case .kron:
      var result: [(name: String, shape: [Int], nonNegative: Bool)] = []
      for layer in kronLayers {
        result.append((StateKey.posterior("kron/\(layer.layer)/A").name, [layer.side, layer.side], false))
        result.append((StateKey.posterior("kron/\(layer.layer)/G").name, [layer.units, layer.units], false))
      }
      for parameter in outsideKron {
        result.append((StateKey.posterior("ggn_diag/" + parameter.name).name, parameter.shape, true))
      }
      return result
    }
  }
}

extension SessionSpec {
  /// The parameters a posterior over `subset` covers, or a message saying why it cannot be had.
  public func posteriorLayout(_ subset: PosteriorSpec.Subset) -> Result<PosteriorLayout, PosteriorProblem> {
    guard let shapes = try? model.layerShapes() else { return .failure(.init("the model's shapes do not chain")) }
    var chosen = shapes.filter { $0.parameterCount > 0 }
    if subset == .lastLayer {
      guard let last = chosen.last else { return .failure(.init("the model has no parameters")) }
      guard case .dense = last.layer.kind else {
        return .failure(
          .init("the last layer with parameters, \(last.layer.name), is \(last.layer.kind.typeName), not dense; use subset=all"))
      }
      chosen = [last]
    }
    var layout = PosteriorLayout(parameters: [], kronLayers: [])
    for shape in chosen {
      for tensor in shape.tensors where tensor.role == .parameter {
        layout.parameters.append(ParameterShape(name: tensor.name, shape: tensor.shape))
      }
      if case .dense(let dense) = shape.layer.kind {
        layout.kronLayers.append(
          .init(
            layer: shape.layer.name, weight: shape.layer.name + ".weight", bias: dense.useBias ? shape.layer.name + ".bias" : nil,
            inputs: shape.inputShape.reduce(1, *), units: dense.units))
      }
    }
    return .success(layout)
  }

  /// Why the spec's posterior (or one of these settings) does not fit the spec, or nil.
  public func posteriorProblem(_ posterior: PosteriorSpec) -> PosteriorProblem? {
    if model.variational != nil {
      return .init(
        "the model is variational (model.variational), a posterior of its own; a Laplace posterior needs point weights",
        path: "model.variational")
    }
    switch loss {
    case .mse:
      if posterior.noiseSigma == nil { return .init("mse's Gaussian likelihood needs noise_sigma", path: "posterior.noise_sigma") }
    case .softmaxCrossEntropy, .sigmoidBinaryCrossEntropy:
      if posterior.noiseSigma != nil { return .init("noise_sigma is for mse; \(loss.name) has no noise", path: "posterior.noise_sigma") }
    case .huber:
      return .init("huber is not the negative log-likelihood of a distribution, so it has no Laplace posterior; use mse", path: "loss.type")
    }
    switch posteriorLayout(posterior.subset) {
    case .failure(let problem): return PosteriorProblem(problem.message, path: "posterior.subset")
    case .success(let layout):
      if posterior.hessian == .full, layout.count > PosteriorSpec.fullLimit {
        return .init(
          "the \(posterior.subset.rawValue) subset has \(layout.count) parameters, more than the \(PosteriorSpec.fullLimit) a full matrix may cover; use hessian=kron or hessian=diag",
          path: "posterior.hessian")
      }
    }
    return nil
  }
}

/// Why a posterior cannot be had, with the field to change.
public struct PosteriorProblem: Error, Hashable, Sendable, CustomStringConvertible {
  public var message: String
  public var path: JSONPath
  public init(_ message: String, path: JSONPath = "posterior") { (self.message, self.path) = (message, path) }
  public var description: String { message }
}
