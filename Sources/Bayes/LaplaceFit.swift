import Datasets
import Foundation
import SpecKit
import TensorCore

/// Fitting a Laplace posterior: one pass over the training data in evaluation mode that sums the
/// generalised Gauss–Newton matrix of the summed loss (docs/spec-format.md, "posterior").
public enum LaplaceFit {
  /// What a fit is asked for; nil fields take their defaults (a tuned prior precision; for
  /// `mse`, the noise fitted as the training residuals' root mean square).
  public struct Request: Hashable, Sendable {
    public var subset: PosteriorSpec.Subset
    public var hessian: PosteriorSpec.Hessian
    public var priorPrecision: Double?
    public var noiseSigma: Double?
    public var predictive: PosteriorSpec.Predictive
    public var samples: Int

    public init(
      subset: PosteriorSpec.Subset = .lastLayer, hessian: PosteriorSpec.Hessian = .full, priorPrecision: Double? = nil,
      noiseSigma: Double? = nil, predictive: PosteriorSpec.Predictive = .probit, samples: Int = 100
    ) {
      (self.subset, self.hessian, self.priorPrecision, self.noiseSigma) = (subset, hessian, priorPrecision, noiseSigma)
      (self.predictive, self.samples) = (predictive, samples)
    }
  }

  /// A fitted posterior: the spec's section, the tensors to store, and what the fit measured.
  public struct Result: Sendable {
    public var settings: PosteriorSpec
    public var tensors: [String: StoredTensor]
    public var posterior: LaplacePosterior
    /// Σ log p(y | f) over the training data at the weights.
    public var logLikelihood: Double
    /// The Laplace log marginal likelihood at the chosen δ.
    public var logMarginalLikelihood: Double
    /// Whether the stored curvature was used as it is (a new prior precision or predictive for
    /// an existing posterior): no pass over the data for it.
    public var reusedCurvature = false
  }

  /// The posterior `spec` has, with another prior precision (tuned again from the stored
  /// curvature when nil), predictive and sample count: the data term is not computed again; the
  /// training data is read only for the log-likelihood the evidence reports (a forward pass).
  /// Nil when the request changes what the curvature is (the subset, the hessian, mse's noise).
  public static func retune(spec: SessionSpec, tensors: [String: StoredTensor], train: Dataset, request: Request) throws(BayesError)
    -> Result?
  {
    guard var settings = spec.posterior, settings.subset == request.subset, settings.hessian == request.hessian,
      request.noiseSigma == nil || request.noiseSigma == settings.noiseSigma
    else { return nil }
    var posterior = try LaplacePosterior(spec: spec, tensors: tensors)
    settings.priorPrecision = request.priorPrecision ?? posterior.tunedPriorPrecision()
    settings.priorTuning = request.priorPrecision == nil ? .marglik : .fixed
    (settings.predictive, settings.samples) = (request.predictive, request.samples)
    posterior = posterior.with(priorPrecision: settings.priorPrecision, predictive: settings.predictive, samples: settings.samples)
    let network: NetworkPass
    do { network = try NetworkPass(spec: spec, tensors: tensors) } catch { throw BayesError(error.description, path: "model") }
    guard let likelihood = Likelihood(spec.loss, noiseSigma: settings.noiseSigma) else {
      throw BayesError("no likelihood", path: "loss.type")
    }
    var logLikelihood = 0.0
    for start in stride(from: 0, to: train.count, by: chunk) {
      let batch = train.subset(start..<min(start + chunk, train.count))
      logLikelihood += likelihood.logLikelihood(outputs: network.forward(batch.inputs.materialized()).output, targets: batch.targets)
    }
    let stored = tensors.filter { StateKey(name: $0.key)?.isPosterior == true }
    var result = Result(
      settings: settings, tensors: stored, posterior: posterior, logLikelihood: logLikelihood,
      logMarginalLikelihood: logLikelihood + posterior.logEvidenceTerms(priorPrecision: settings.priorPrecision))
    result.reusedCurvature = true
    return result
  }

  /// Samples per chunk of the pass.
  static let chunk = 256

  /// Fits the posterior of `spec`'s weights (`tensors`, the state's) on `train`.
  ///
  /// - Throws: `BayesError` naming the field when the spec has no such posterior (a huber
  ///   loss, a variational model, a last layer that is not dense, a full matrix too large).
  public static func fit(spec: SessionSpec, tensors: [String: StoredTensor], train: Dataset, request: Request) throws(BayesError) -> Result
  {
    guard let state = spec.state else { throw BayesError("the session has no trained weights yet; train first", path: "state") }
    guard train.count > 0 else { throw BayesError("the training data has no samples", path: "data") }
    let network: NetworkPass
    do { network = try NetworkPass(spec: spec, tensors: tensors) } catch { throw BayesError(error.description, path: "model") }
    var settings = PosteriorSpec(
      subset: request.subset, hessian: request.hessian, priorPrecision: request.priorPrecision ?? 1,
      priorTuning: request.priorPrecision == nil ? .marglik : .fixed, noiseSigma: nil, predictive: request.predictive,
      samples: request.samples, step: state.step, dataCount: train.count)
    if case .mse = spec.loss {
      if let given = request.noiseSigma { settings.noiseSigma = given } else { settings.noiseSigma = try residualSigma(network, train) }
    } else if request.noiseSigma != nil {
      throw BayesError("noise_sigma is for mse; \(spec.loss.name) has no noise", path: "posterior.noise_sigma")
    }
    if let problem = spec.posteriorProblem(settings) { throw BayesError(problem.message, path: problem.path) }
    guard case .success(let layout) = spec.posteriorLayout(settings.subset),
      let likelihood = Likelihood(spec.loss, noiseSigma: settings.noiseSigma)
    else { throw BayesError("no posterior for this model") }
    let first = network.firstLayer(of: layout)
    let outsideKron = layout.outsideKron.map(\.name)
    let p = layout.count
    let names = layout.parameters.map(\.name)
    var offsets: [String: Int] = [:]
    var offset = 0
    for parameter in layout.parameters {
      offsets[parameter.name] = offset
      offset += parameter.shape.reduce(1, *)
    }
    var full = settings.hessian == .full ? GramAccumulator(width: p) : nil
    var diagonal = [Double](repeating: 0, count: p)
    var aFactors = Dictionary(uniqueKeysWithValues: layout.kronLayers.map { ($0.layer, GramAccumulator(width: $0.side)) })
    var gFactors = Dictionary(uniqueKeysWithValues: layout.kronLayers.map { ($0.layer, GramAccumulator(width: $0.units)) })
    let kronLayers = Dictionary(uniqueKeysWithValues: layout.kronLayers.map { ($0.layer, $0) })
    var logLikelihood = 0.0
    for start in stride(from: 0, to: train.count, by: chunk) {
      let batch = train.subset(start..<min(start + chunk, train.count))
      let rows = batch.count
      let (output, caches) = network.forward(batch.inputs.materialized())
      logLikelihood += likelihood.logLikelihood(outputs: output, targets: batch.targets)
      for k in 0..<likelihood.rootColumns(outputs: output.rowWidth) {
        let samples = network.perSampleGradients(likelihood.rootColumn(k, outputs: output), caches: caches, from: first)
        switch settings.hessian {
        case .full:
          var matrix = [Float](repeating: 0, count: rows * p)
          scatter(samples, names: names, offsets: offsets, width: p, rows: rows) { row, index, value in matrix[row * p + index] = value }
          full!.add(matrix, rows: rows)
        case .diag:
          // A dense layer's squares in one product: Σₙ gₙ² ⊗ ãₙ² (the weight's, then the bias's Σ g²).
          for layer in layout.kronLayers {
            guard case .dense(let inputs, let gradients)? = samples[layer.layer] else { continue }
            let squaredInputs = augmented(inputs, bias: layer.bias != nil).map { $0 * $0 }
            let squares = network.kernels.matmulTransposedA(
              gradients.scalars.map { $0 * $0 }, squaredInputs, m: rows, k: layer.units, n: layer.side)
            let (weight, bias) = (offsets[layer.weight]!, layer.bias.map { offsets[$0]! })
            for o in 0..<layer.units {
              for i in 0..<layer.inputs { diagonal[weight + o * layer.inputs + i] += Double(squares[o * layer.side + i]) }
              if let bias { diagonal[bias + o] += Double(squares[o * layer.side + layer.inputs]) }
            }
          }
          scatter(samples, names: outsideKron, offsets: offsets, width: p, rows: rows) { _, index, value in
            diagonal[index] += Double(value) * Double(value)
          }
        case .kron:
          for (layer, kron) in kronLayers {
            guard case .dense(let inputs, let gradients)? = samples[layer] else { continue }
            gFactors[layer]!.add(gradients.scalars, rows: rows)
            if k == 0 { aFactors[layer]!.add(augmented(inputs, bias: kron.bias != nil), rows: rows) }
          }
          scatter(samples, names: outsideKron, offsets: offsets, width: p, rows: rows) { _, index, value in
            diagonal[index] += Double(value) * Double(value)
          }
        }
      }
    }
    var stored: [String: StoredTensor] = [:]
    switch settings.hessian {
    case .full:
      stored[StateKey.posterior("ggn").name] = StoredTensor(shape: [p, p], scalars: full!.symmetric.map { Float($0) })
    case .diag:
      for parameter in layout.parameters {
        let start = offsets[parameter.name]!
        stored[StateKey.posterior("ggn_diag/" + parameter.name).name] = StoredTensor(
          shape: parameter.shape, scalars: diagonal[start..<start + parameter.shape.reduce(1, *)].map { Float($0) })
      }
    case .kron:
      for layer in layout.kronLayers {
        let n = Double(train.count)
        stored[StateKey.posterior("kron/\(layer.layer)/A").name] = StoredTensor(
          shape: [layer.side, layer.side], scalars: aFactors[layer.layer]!.symmetric.map { Float($0 / n) })
        stored[StateKey.posterior("kron/\(layer.layer)/G").name] = StoredTensor(
          shape: [layer.units, layer.units], scalars: gFactors[layer.layer]!.symmetric.map { Float($0) })
      }
      for parameter in layout.outsideKron {
        let start = offsets[parameter.name]!
        stored[StateKey.posterior("ggn_diag/" + parameter.name).name] = StoredTensor(
          shape: parameter.shape, scalars: diagonal[start..<start + parameter.shape.reduce(1, *)].map { Float($0) })
      }
    }
    var posterior = try LaplacePosterior(spec: spec, settings: settings, tensors: tensors.merging(stored) { _, new in new })
    if request.priorPrecision == nil {
      let tuned = posterior.tunedPriorPrecision()
      settings.priorPrecision = tuned
      posterior = posterior.with(priorPrecision: tuned)
    }
    let evidence = logLikelihood + posterior.logEvidenceTerms(priorPrecision: settings.priorPrecision)
    return Result(settings: settings, tensors: stored, posterior: posterior, logLikelihood: logLikelihood, logMarginalLikelihood: evidence)
  }

  /// The root mean square of the training residuals: the Gaussian noise's maximum-likelihood
  /// standard deviation at the weights.
  static func residualSigma(_ network: NetworkPass, _ train: Dataset) throws(BayesError) -> Double {
    guard case .values(let values) = train.targets else { throw BayesError("mse needs regression targets", path: "loss.type") }
    var sum = 0.0
    for start in stride(from: 0, to: train.count, by: chunk) {
      let range = start..<min(start + chunk, train.count)
      let output = network.forward(train.inputs.gatherRows(range)).output
      let width = output.rowWidth
      for (i, f) in output.scalars.enumerated() {
        let r = Double(values.scalars[start * width + i]) - Double(f)
        sum += r * r
      }
    }
    let sigma = (sum / Double(train.count * max(values.rowWidth, 1))).squareRoot()
    // A perfect fit has no noise to measure: a floor keeps the likelihood proper.
    return max(sigma, 1e-6)
  }

  /// The rows of `inputs` with a 1 appended when the layer has a bias.
  static func augmented(_ inputs: Tensor, bias: Bool) -> [Float] {
    guard bias else { return inputs.scalars }
    let (rows, width) = (inputs.rows, inputs.rowWidth)
    var out = [Float](repeating: 1, count: rows * (width + 1))
    for r in 0..<rows {
      for i in 0..<width { out[r * (width + 1) + i] = inputs.scalars[r * width + i] }
    }
    return out
  }

  /// Calls `write(row, flatIndex, value)` for each sample's gradient of each of `names`.
  static func scatter(
    _ samples: [String: NetworkPass.Samples], names: [String], offsets: [String: Int], width: Int, rows: Int,
    _ write: (Int, Int, Float) -> Void
  ) {
    for name in names {
      let dot = name.lastIndex(of: ".")!
      let (layer, field) = (String(name[..<dot]), String(name[name.index(after: dot)...]))
      let base = offsets[name]!
      switch samples[layer] {
      case .dense(let inputs, let gradients)?:
        let (units, width) = (gradients.rowWidth, inputs.rowWidth)
        for r in 0..<rows {
          for o in 0..<units {
            let g = gradients.scalars[r * units + o]
            if field == "weight" {
              for i in 0..<width { write(r, base + o * width + i, g * inputs.scalars[r * width + i]) }
            } else {
              write(r, base + o, g)
            }
          }
        }
      case .affine(let weight, let bias)?:
        let values = field == "weight" ? weight : bias
        let features = values.rowWidth
        for r in 0..<rows { for j in 0..<features { write(r, base + j, values.scalars[r * features + j]) } }
      case nil:
        continue
      }
    }
  }
}
