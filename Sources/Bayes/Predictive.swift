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
  public func predict(_ inputs: Tensor) -> Prediction { predict(SampleInputs(inputs)) }

  /// The predictive for a dataset's inputs (in memory or mapped), gathered in chunks of 256.
  public func predict(_ inputs: SampleInputs) -> Prediction {
    let count = inputs.rows
    let outputs = network.layers.last?.outputShape.reduce(1, *) ?? inputs.rowWidth
    var sums = Accumulator(spec.loss, count: count, outputs: outputs)
    let chunks = stride(from: 0, to: count, by: LaplaceFit.chunk).map { $0..<min($0 + LaplaceFit.chunk, count) }
    if let draws = sampledNetworks() {
      // One network at a time, each over every chunk: nothing of a draw is kept but its sums.
      for next in draws {
        let network = next()
        for rows in chunks { sums.add(network.forward(inputs.gatherRows(rows)).output.scalars, from: rows.lowerBound) }
      }
    } else {
      for rows in chunks {
        let chunk = inputs.gatherRows(rows)
        if method == .laplace, let posterior {
          let (f, variance) = linearisedVariance(chunk, posterior)
          sums.add(f.scalars, from: rows.lowerBound, variance: variance)
        } else {
          sums.add(network.forward(chunk).output.scalars, from: rows.lowerBound)
        }
      }
    }
    return sums.prediction(noiseSigma: noiseSigma)
  }

  /// The networks a sampled predictive averages, made one at a time in the order of their
  /// seeded draws: the Laplace posterior's `mc` draws, or the variational layers'
  /// `predict_samples`; nil for the others.
  private func sampledNetworks() -> [() -> NetworkPass]? {
    switch method {
    case .point: return nil
    case .laplace:
      guard let posterior, posterior.settings.predictive == .mc else { return nil }
      let generator = Box(PosteriorSpec.predictiveNoise(seed: spec.training.seed))
      return (0..<posterior.settings.samples).map { _ in
        {
          let eps = (0..<posterior.parameterCount).map { _ in Double(generator.value.nextNormal()) }
          return network.with(posterior.parameters(at: posterior.draw(eps)))
        }
      }
    case .variational:
      let variational = spec.model.variational!
      let generator = Box(VariationalSpec.predictiveNoise(seed: spec.training.seed))
      let means = network.layers.filter { variational.layers.contains($0.layer.name) }.flatMap { shape in
        shape.tensors.filter { !$0.name.hasSuffix("_rho") }.map(\.name)
      }
      return (0..<variational.predictSamples).map { _ in
        {
          var weights: [String: Tensor] = [:]
          for name in means {
            let mean = network.parameters[name]!, rho = network.parameters[VariationalSpec.rhoName(of: name)]!
            var w = mean.scalars
            for j in 0..<w.count { w[j] += VariationalSpec.softplus(rho.scalars[j]) * generator.value.nextNormal() }
            weights[name] = Tensor(shape: mean.shape, scalars: w)
          }
          return network.with(weights)
        }
      }
    }
  }

  /// The outputs and diag(J Σ Jᵀ) per sample and output, from a backward pass per output.
  func linearisedVariance(_ inputs: Tensor, _ posterior: LaplacePosterior) -> (Tensor, [Double]) {
    let (f, caches) = network.forward(inputs)
    let (rows, width) = (f.rows, f.rowWidth)
    let first = network.firstLayer(of: posterior.layout)
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

}

/// The generator a predictive's draws share, drawn from in the order the networks are made.
private final class Box {
  var value: SplitMix64
  init(_ value: SplitMix64) { self.value = value }
}

/// A predictive's sums over its networks (one, or the draws), sample by sample: probabilities
/// (with the probit scaling when a linearised variance is given) and their squares, or for
/// values a running mean and sum of squared deviations (Welford's).
struct Accumulator {
  let loss: LossSpec
  let count: Int
  let outputs: Int
  let classes: Int
  private(set) var draws = 0
  private var seenAt: [Int]
  private var sums: [Double]
  private var squares: [Double]
  private var variance: [Double]?

  init(_ loss: LossSpec, count: Int, outputs: Int) {
    (self.loss, self.count, self.outputs) = (loss, count, outputs)
    classes = loss == .mse ? outputs : loss == .sigmoidBinaryCrossEntropy ? 2 : outputs
    seenAt = Array(repeating: 0, count: count)
    sums = Array(repeating: 0, count: count * classes)
    squares = sums
  }

  /// A network's outputs for the samples from `first` on (`[rows, outputs]`), with the
  /// linearised variance of each output for the probit predictive.
  mutating func add(_ f: [Float], from first: Int, variance linearised: [Double]? = nil) {
    let rows = f.count / max(outputs, 1)
    if let linearised {
      if variance == nil { variance = Array(repeating: 0, count: count * outputs) }
      for i in 0..<linearised.count { variance![first * outputs + i] = linearised[i] }
    }
    for r in 0..<rows {
      let n = first + r
      seenAt[n] += 1
      if first == 0 && r == 0 { draws += 1 }
      let base = n * classes
      if loss == .mse {
        // Welford: the running mean in `sums`, the sum of squared deviations in `squares`.
        let k = Double(seenAt[n])
        for c in 0..<outputs {
          let x = Double(f[r * outputs + c])
          let delta = x - sums[base + c]
          sums[base + c] += delta / k
          squares[base + c] += delta * (x - sums[base + c])
        }
        continue
      }
      var logits = (0..<outputs).map { Double(f[r * outputs + $0]) }
      if let linearised {
        for c in 0..<outputs { logits[c] /= (1 + Double.pi / 8 * linearised[r * outputs + c]).squareRoot() }
      }
      let p: [Double]
      if loss == .sigmoidBinaryCrossEntropy {
        let q = Likelihood.sigmoid(logits[0])
        p = [1 - q, q]
      } else {
        p = Likelihood.softmax(doubles: logits)
      }
      for c in 0..<classes {
        sums[base + c] += p[c]
        squares[base + c] += p[c] * p[c]
      }
    }
  }

  /// The predictive: the mean probabilities (and their spread over several draws, the logits'
  /// linearised deviations), or each value's mean and deviation with the noise `noiseSigma`.
  func prediction(noiseSigma: Double?) -> Prediction {
    let s = Double(max(draws, 1))
    var out = Prediction(kind: loss == .mse ? .values : .classes, count: count, width: classes)
    if loss == .mse {
      let noise = (noiseSigma ?? 0) * (noiseSigma ?? 0)
      out.mean = sums
      out.std = (0..<sums.count).map { (squares[$0] / s + (variance?[$0] ?? 0) + noise).squareRoot() }
      return out
    }
    out.probabilities = sums.map { $0 / s }
    if draws > 1 {
      out.probabilityStd = zip(sums, squares).map { sum, square in max(square / s - (sum / s) * (sum / s), 0).squareRoot() }
    }
    if let variance { out.logitStd = variance.map { max($0, 0).squareRoot() } }
    return out
  }
}
