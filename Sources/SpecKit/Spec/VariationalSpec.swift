import Foundation

/// Bayes by Backprop (`model.variational`, format version 5): the dense layers it names keep a
/// Gaussian posterior per weight — the mean is the layer's ordinary weight, `ρ` (σ = softplus(ρ))
/// a parameter beside it (`LAYER.weight_rho`, `LAYER.bias_rho`). See docs/spec-format.md.
public struct VariationalSpec: Hashable, Sendable {
  /// The prior over each variational weight.
  public enum Prior: Hashable, Sendable {
    /// N(0, σ²).
    case gaussian(sigma: Double)
    /// π·N(0, σ1²) + (1 − π)·N(0, σ2²) (Blundell et al.).
    case scaleMixture(pi: Double, sigma1: Double, sigma2: Double)

    public var json: JSONValue {
      switch self {
      case .gaussian(let sigma): .object(["type": .string("gaussian"), "sigma": .double(sigma)])
      case .scaleMixture(let pi, let s1, let s2):
        .object(["type": .string("scale_mixture"), "pi": .double(pi), "sigma1": .double(s1), "sigma2": .double(s2)])
      }
    }

    /// log p(w), in double precision.
    public func logDensity(_ w: Double) -> Double {
      switch self {
      case .gaussian(let s): return Self.logNormal(w, sigma: s)
      case .scaleMixture(let pi, let s1, let s2):
        let a = log(pi) + Self.logNormal(w, sigma: s1), b = log(1 - pi) + Self.logNormal(w, sigma: s2)
        let m = max(a, b)
        return m + log(exp(a - m) + exp(b - m))
      }
    }

    /// d/dw log p(w).
    public func logDensityDerivative(_ w: Double) -> Double {
      switch self {
      case .gaussian(let s): return -w / (s * s)
      case .scaleMixture(let pi, let s1, let s2):
        let a = log(pi) + Self.logNormal(w, sigma: s1), b = log(1 - pi) + Self.logNormal(w, sigma: s2)
        let m = max(a, b)
        let (ea, eb) = (exp(a - m), exp(b - m))
        return (ea * (-w / (s1 * s1)) + eb * (-w / (s2 * s2))) / (ea + eb)
      }
    }

    static func logNormal(_ w: Double, sigma: Double) -> Double {
      -0.5 * log(2 * Double.pi) - log(sigma) - w * w / (2 * sigma * sigma)
    }
  }

  /// The dense layers made variational, in the order given.
  public var layers: [String]
  public var prior: Prior
  /// The KL term's weight; nil means 1/N (N training samples).
  public var klWeight: Double?
  public var rhoInit: Double
  public var trainSamples: Int
  public var predictSamples: Int

  public static let defaultPrior = Prior.gaussian(sigma: 1)
  public static let defaultRhoInit = -5.0
  public static let maxTrainSamples = 64
  public static let maxPredictSamples = 100_000

  public init(
    layers: [String], prior: Prior = defaultPrior, klWeight: Double? = nil, rhoInit: Double = defaultRhoInit, trainSamples: Int = 1,
    predictSamples: Int = 32
  ) {
    (self.layers, self.prior, self.klWeight, self.rhoInit) = (layers, prior, klWeight, rhoInit)
    (self.trainSamples, self.predictSamples) = (trainSamples, predictSamples)
  }

  /// The name of a parameter's ρ (`dense2.weight` → `dense2.weight_rho`).
  public static func rhoName(of parameter: String) -> String { parameter + "_rho" }

  /// The name histograms show σ = softplus(ρ) under, for a ρ's name (`dense2.weight_rho` →
  /// `dense2.weight_sigma`); nil for any other name.
  public static func sigmaName(ofRho name: String) -> String? {
    name.hasSuffix("_rho") ? String(name.dropLast(4)) + "_sigma" : nil
  }

  /// The KL weight for `trainingSamples` samples.
  public func resolvedKLWeight(trainingSamples: Int) -> Double { klWeight ?? 1 / Double(max(trainingSamples, 1)) }

  /// The generator of update `t`'s noise.
  public static func trainingNoise(seed: UInt64, update t: Int) -> SplitMix64 { SplitMix64(seed: seed, stream: "variational/\(t)") }

  /// The generator of the predictive's draws.
  public static func predictiveNoise(seed: UInt64) -> SplitMix64 { SplitMix64(seed: seed, stream: "variational/predict") }

  /// softplus(ρ) = max(ρ, 0) + log1p(exp(−|ρ|)), in float32.
  @inline(__always)
  public static func softplus(_ rho: Float) -> Float { max(rho, 0) + log1p(exp(-abs(rho))) }

  /// d softplus / dρ = sigmoid(ρ).
  @inline(__always)
  public static func sigmoid(_ rho: Float) -> Float { 1 / (1 + exp(-rho)) }

  /// One line: the prior and the settings.
  public var summary: String {
    let prior =
      switch prior {
      case .gaussian(let sigma): "prior N(0, \(sigma)²)"
      case .scaleMixture(let pi, let s1, let s2): "prior \(pi)·N(0, \(s1)²) + \(1 - pi)·N(0, \(s2)²)"
      }
    return
      "\(prior), kl_weight \(klWeight.map { "\($0)" } ?? "1/N"), rho_init \(rhoInit), \(trainSamples) draw\(trainSamples == 1 ? "" : "s") a step, \(predictSamples) to predict"
  }

  public var json: JSONValue {
    .object([
      "layers": .array(layers.map { .string($0) }), "prior": prior.json, "kl_weight": klWeight.map { .double($0) } ?? .null,
      "rho_init": .double(rhoInit), "train_samples": .int(trainSamples), "predict_samples": .int(predictSamples),
    ])
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> VariationalSpec? {
    guard
      var r = ObjectReader(
        value, at: path, log: log, what: "an object such as {\"layers\": [\"dense2\"]}, or null for a model of point weights")
    else { return nil }
    defer { r.finish() }
    var spec = VariationalSpec(layers: [])
    spec.layers = r.array("layers") { element, elementPath -> String? in
      guard let name = element.stringValue, LayerSpec.isValidName(name) else {
        log.report(elementPath, "must be the name of a dense layer, got \(element.excerpt())", at: element.location)
        return nil
      }
      return name
    }
    if let raw = r.raw("layers"), spec.layers.isEmpty, raw.arrayValue?.isEmpty == true {
      log.report(path + "layers", "must name at least one dense layer", at: raw.location)
    }
    if let raw = r.raw("prior") { spec.prior = readPrior(raw, at: path + "prior", log: log) ?? defaultPrior }
    if let raw = r.raw("kl_weight"), !raw.isNull {
      if let weight = raw.numberValue?.double, weight >= 0, weight <= Double(Float.greatestFiniteMagnitude) {
        spec.klWeight = weight
      } else {
        r.wrong("kl_weight", raw, expected: "a number ≥ 0, or null for 1/N (N training samples)")
      }
    }
    spec.rhoInit = r.number("rho_init", default: defaultRhoInit, Rule("a number from -30 to 30") { $0 >= -30 && $0 <= 30 })
    spec.trainSamples = r.integer(
      "train_samples", default: 1, Rule("an integer from 1 to \(maxTrainSamples)") { $0 >= 1 && $0 <= maxTrainSamples })
    spec.predictSamples = r.integer(
      "predict_samples", default: 32, Rule("an integer from 1 to \(maxPredictSamples)") { $0 >= 1 && $0 <= maxPredictSamples })
    return spec
  }

  static func readPrior(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> Prior? {
    guard var r = ObjectReader(value, at: path, log: log, what: "a prior such as {\"type\": \"gaussian\", \"sigma\": 1.0}") else {
      return nil
    }
    guard let type = r.choice("type", [("gaussian", 0), ("scale_mixture", 1)], what: "prior type") else { return nil }
    defer { r.finish() }
    if type == 0 { return .gaussian(sigma: r.number("sigma", default: 1, .positiveFloat32)) }
    return .scaleMixture(
      pi: r.number("pi", default: 0.5, .open(0, 1)), sigma1: r.number("sigma1", default: 1, .positiveFloat32),
      sigma2: r.number("sigma2", default: exp(-6), .positiveFloat32))
  }
}
