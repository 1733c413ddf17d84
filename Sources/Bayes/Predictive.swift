import Datasets
import Foundation
import SpecKit
import TensorCore

/// What a model answers for samples, with its uncertainty.
public struct Prediction: Sendable {
  public enum Kind: Sendable { case classes, values }
  public var kind: Kind
  public var count: Int
  /// Classes per sample (2 for one sigmoid logit), or values per sample.
  public var width: Int
  /// Classes: the (predictive mean) probabilities `[count, width]`.
  public var probabilities: [Double] = []
  /// Values: the predictive mean and standard deviation `[count, width]`.
  public var mean: [Double] = []
  public var std: [Double] = []
  /// Classes, sampled predictives: each probability's standard deviation over the draws.
  public var probabilityStd: [Double]?
  /// Classes, the linearised predictive: each logit's standard deviation.
  public var logitStd: [Double]?

  /// The predicted class of sample n.
  public func predictedClass(_ n: Int) -> Int {
    var best = 0
    for c in 1..<max(width, 1) where probabilities[n * width + c] > probabilities[n * width + best] { best = c }
    return best
  }

  /// The predictive entropy of sample n, in nats.
  public func entropy(_ n: Int) -> Double {
    (0..<width).reduce(0) { s, c in
      let p = probabilities[n * width + c]
      return p > 0 ? s - p * log(p) : s
    }
  }
}

/// The predictives of a session: its point network, its Laplace posterior, or its variational
/// layers (docs/bayes.md).
public struct Predictor: Sendable {
  public enum Method: Sendable, Equatable {
    /// The network at its weights (for `mse`, the noise the residuals measure).
    case point
    /// The Laplace posterior's predictive.
    case laplace
    /// The variational layers' predictive (`predict_samples` draws).
    case variational
  }

  public let method: Method
  let spec: SessionSpec
  let network: NetworkPass
  let posterior: LaplacePosterior?
  /// For `mse`: the likelihood's noise standard deviation.
  public let noiseSigma: Double?
  let trainingSamples: Int

  /// The predictive `method` of the session `spec` with state `tensors`; `train` gives what the
  /// point and variational predictives measure on it (the noise of `mse`, the KL weight's N).
  public init(spec: SessionSpec, tensors: [String: StoredTensor], method: Method, train: Dataset) throws(BayesError) {
    self.spec = spec
    self.method = method
    trainingSamples = train.count
    do { network = try NetworkPass(spec: spec, tensors: tensors) } catch { throw BayesError(error.description, path: "model") }
    switch method {
    case .laplace:
      let posterior = try LaplacePosterior(spec: spec, tensors: tensors)
      self.posterior = posterior
      noiseSigma = posterior.settings.noiseSigma
    case .variational:
      guard let variational = spec.model.variational else {
        throw BayesError("the model has no variational layers", path: "model.variational")
      }
      posterior = nil
      // The objective's implied Gaussian noise: kl_weight = 2s²/N.
      noiseSigma =
        spec.loss == .mse ? (variational.resolvedKLWeight(trainingSamples: train.count) * Double(train.count) / 2).squareRoot() : nil
    case .point:
      posterior = nil
      noiseSigma = spec.loss == .mse ? try LaplaceFit.residualSigma(network, train) : nil
    }
    if case .huber = spec.loss {
      throw BayesError("huber is not a likelihood; calibration needs mse or a classification loss", path: "loss.type")
    }
  }

  /// The predictive for `inputs` (`[N, sample shape…]`), in chunks of 256 samples.
  public func predict(_ inputs: Tensor) -> Prediction {
    let count = inputs.rows
    let outputs = network.layers.last?.outputShape.reduce(1, *) ?? inputs.rowWidth
    let classes = spec.loss == .sigmoidBinaryCrossEntropy ? 2 : outputs
    var prediction = Prediction(kind: spec.loss == .mse ? .values : .classes, count: count, width: spec.loss == .mse ? outputs : classes)
    for start in stride(from: 0, to: count, by: LaplaceFit.chunk) {
      let chunk = inputs.gatherRows(start..<min(start + LaplaceFit.chunk, count))
      let part = predictChunk(chunk)
      prediction.probabilities += part.probabilities
      prediction.mean += part.mean
      prediction.std += part.std
      if let s = part.probabilityStd { prediction.probabilityStd = (prediction.probabilityStd ?? []) + s }
      if let s = part.logitStd { prediction.logitStd = (prediction.logitStd ?? []) + s }
    }
    return prediction
  }

  private func predictChunk(_ inputs: Tensor) -> Prediction {
    switch method {
    case .point:
      let f = network.forward(inputs).output
      return fromOutputs([f.scalars.map(Double.init)], rows: f.rows, width: f.rowWidth, variance: nil)
    case .laplace:
      let posterior = posterior!
      if posterior.settings.predictive == .mc {
        var generator = PosteriorSpec.predictiveNoise(seed: spec.training.seed)
        var draws: [[Double]] = []
        for _ in 0..<posterior.settings.samples {
          let eps = (0..<posterior.parameterCount).map { _ in Double(generator.nextNormal()) }
          let f = network.with(posterior.parameters(at: posterior.draw(eps))).forward(inputs).output
          draws.append(f.scalars.map(Double.init))
        }
        return fromOutputs(draws, rows: inputs.rows, width: draws[0].count / max(inputs.rows, 1), variance: nil)
      }
      let (f, variance) = linearisedVariance(inputs, posterior)
      return fromOutputs([f.scalars.map(Double.init)], rows: f.rows, width: f.rowWidth, variance: variance)
    case .variational:
      let variational = spec.model.variational!
      var generator = VariationalSpec.predictiveNoise(seed: spec.training.seed)
      var draws: [[Double]] = []
      let pairs = network.layers.filter { variational.layers.contains($0.layer.name) }.flatMap { shape in
        shape.tensors.filter { !$0.name.hasSuffix("_rho") }.map(\.name)
      }
      for _ in 0..<variational.predictSamples {
        var weights: [String: Tensor] = [:]
        for name in pairs {
          let mean = network.parameters[name]!, rho = network.parameters[VariationalSpec.rhoName(of: name)]!
          var w = mean.scalars
          for j in 0..<w.count { w[j] += VariationalSpec.softplus(rho.scalars[j]) * generator.nextNormal() }
          weights[name] = Tensor(shape: mean.shape, scalars: w)
        }
        draws.append(network.with(weights).forward(inputs).output.scalars.map(Double.init))
      }
      return fromOutputs(draws, rows: inputs.rows, width: draws[0].count / max(inputs.rows, 1), variance: nil)
    }
  }

  /// The outputs and diag(J Σ Jᵀ) per sample and output, from a backward pass per output.
  func linearisedVariance(_ inputs: Tensor, _ posterior: LaplacePosterior) -> (Tensor, [Double]) {
    let (f, caches) = network.forward(inputs)
    let (rows, width) = (f.rows, f.rowWidth)
    let first =
      network.layers.firstIndex { shape in posterior.layout.parameters.contains { $0.name.hasPrefix(shape.layer.name + ".") } } ?? 0
    let names = posterior.layout.parameters.map(\.name)
    var variance = [Double](repeating: 0, count: rows * width)
    for c in 0..<width {
      var seed = [Float](repeating: 0, count: rows * width)
      for n in 0..<rows { seed[n * width + c] = 1 }
      let samples = network.perSampleGradients(Tensor(shape: [rows, width], scalars: seed), caches: caches, from: first)
      if let forms = posterior.kronQuadraticForms(samples, rows: rows) {
        for n in 0..<rows { variance[n * width + c] = forms[n] }
        continue
      }
      let p = posterior.parameterCount
      var jacobian = [Double](repeating: 0, count: rows * p)
      LaplaceFit.scatter(samples, names: names, offsets: posterior.offsets, width: p, rows: rows) { row, index, value in
        jacobian[row * p + index] = Double(value)
      }
      let forms = posterior.quadraticForms(jacobian, rows: rows)
      for n in 0..<rows { variance[n * width + c] = forms[n] }
    }
    return (f, variance)
  }

  /// Probabilities or means and deviations from the outputs of one or more networks (draws),
  /// or of one with the linearised variance per output.
  private func fromOutputs(_ draws: [[Double]], rows: Int, width: Int, variance: [Double]?) -> Prediction {
    let isValues = spec.loss == .mse
    let classes = spec.loss == .sigmoidBinaryCrossEntropy ? 2 : width
    var out = Prediction(kind: isValues ? .values : .classes, count: rows, width: isValues ? width : classes)
    let s = Double(draws.count)
    if isValues {
      let noise = (noiseSigma ?? 0) * (noiseSigma ?? 0)
      for i in 0..<rows * width {
        let mean = draws.reduce(0) { $0 + $1[i] } / s
        let spread = draws.reduce(0) { $0 + ($1[i] - mean) * ($1[i] - mean) } / s
        out.mean.append(mean)
        out.std.append((spread + (variance?[i] ?? 0) + noise).squareRoot())
      }
      return out
    }
    var sums = [Double](repeating: 0, count: rows * classes), squares = sums
    for draw in draws {
      for n in 0..<rows {
        var logits = Array(draw[n * width..<(n + 1) * width])
        if let variance {
          for c in 0..<width { logits[c] /= (1 + Double.pi / 8 * variance[n * width + c]).squareRoot() }
        }
        let p: [Double] =
          spec.loss == .sigmoidBinaryCrossEntropy
          ? {
            let q = Likelihood.sigmoid(logits[0])
            return [1 - q, q]
          }() : Likelihood.softmax(doubles: logits)
        for c in 0..<classes {
          sums[n * classes + c] += p[c]
          squares[n * classes + c] += p[c] * p[c]
        }
      }
    }
    out.probabilities = sums.map { $0 / s }
    if draws.count > 1 {
      out.probabilityStd = zip(sums, squares).map { sum, square in max(square / s - (sum / s) * (sum / s), 0).squareRoot() }
    }
    if let variance { out.logitStd = variance.map { max($0, 0).squareRoot() } }
    return out
  }
}
