import Foundation
import SpecKit
import TensorCore

/// Bayes by Backprop's objective (docs/spec-format.md, `model.variational`): from the network's
/// objective over weights, the objective over the spec's parameters, where a variational
/// layer's `weight` is the mean μ and `weight_rho` its ρ. Each evaluation runs the network at
/// wₛ = μ + softplus(ρ)·εₛ for the update's draws εₛ (fixed for the update: a rule that evaluates
/// again sees the same noise), averages the losses and the reparameterised gradients, and adds
/// `kl_weight`·KL(q‖p). One implementation for every trainer that runs it.
struct VariationalObjective {
  /// A variational tensor: its mean's name, its ρ's name and its size.
  struct Pair {
    let mean: String
    let rho: String
    let count: Int
  }

  let spec: VariationalSpec
  /// In model order: each layer's weight, then its bias.
  let pairs: [Pair]
  let klWeight: Double
  let seed: UInt64

  /// The variational part of `spec`, or nil when its model has none.
  init?(spec: SessionSpec, trainingSamples: Int) {
    guard let variational = spec.model.variational, let shapes = try? spec.model.layerShapes() else { return nil }
    self.spec = variational
    var pairs: [Pair] = []
    for shape in shapes where variational.layers.contains(shape.layer.name) {
      for tensor in shape.tensors where !tensor.name.hasSuffix("_rho") {
        pairs.append(Pair(mean: tensor.name, rho: VariationalSpec.rhoName(of: tensor.name), count: tensor.count))
      }
    }
    self.pairs = pairs
    klWeight = variational.resolvedKLWeight(trainingSamples: trainingSamples)
    seed = spec.training.seed
  }

  /// The draws of update `t`: for each of `train_samples`, each pair's standard normals.
  func noise(update t: Int) -> [[[Float]]] {
    var generator = VariationalSpec.trainingNoise(seed: seed, update: t)
    return (0..<spec.trainSamples).map { _ in pairs.map { pair in (0..<pair.count).map { _ in generator.nextNormal() } } }
  }

  /// The objective a trainer hands its rule for update `t`: `network`'s, through Bayes by
  /// Backprop's when the model has variational layers, with the first evaluation's gradients
  /// (the step's, for `gradientNorms`) given to `recordFirst`. Both trainers build theirs here.
  static func step(
    _ network: @escaping Objective, _ variational: VariationalObjective?, update t: Int,
    recordFirst: @escaping ([String: Tensor]) -> Void
  ) -> Objective {
    let objective = variational.map { $0.wrap(network, update: t) } ?? network
    var first = true
    return { (parameters: [String: Tensor]) throws(BackendError) in
      let result = try objective(parameters)
      if first {
        first = false
        recordFirst(result.gradients)
      }
      return result
    }
  }

  /// The objective of update `t` over the spec's parameters, from `network`'s over weights.
  func wrap(_ network: @escaping Objective, update t: Int) -> Objective {
    let draws = noise(update: t)
    return { (parameters: [String: Tensor]) throws(BackendError) in
      try evaluate(parameters, draws: draws, update: t, network: network)
    }
  }

  /// The loss and gradients at `parameters` for the given draws.
  func evaluate(_ parameters: [String: Tensor], draws: [[[Float]]], update t: Int, network: Objective) throws(BackendError) -> (
    loss: Float, gradients: [String: Tensor]
  ) {
    let samples = Float(draws.count)
    var sigmas: [[Float]] = [], slopes: [[Float]] = []
    for pair in pairs {
      let rho = parameters[pair.rho]!.scalars
      sigmas.append(rho.map(VariationalSpec.softplus))
      slopes.append(rho.map(VariationalSpec.sigmoid))
    }
    var lossSum: Float = 0
    var gradients: [String: Tensor] = [:]
    for eps in draws {
      var weights = parameters
      for (p, pair) in pairs.enumerated() {
        let mean = parameters[pair.mean]!
        var w = mean.scalars
        for j in 0..<w.count { w[j] += sigmas[p][j] * eps[p][j] }
        weights[pair.mean] = Tensor(shape: mean.shape, scalars: w)
      }
      let (loss, networkGradients) = try network(weights)
      lossSum += loss
      for (name, gradient) in networkGradients where !name.hasSuffix("_rho") {
        accumulate(&gradients, name, gradient.shape, gradient.scalars, scale: 1 / samples)
      }
      for (p, pair) in pairs.enumerated() {
        let gw = networkGradients[pair.mean]!.scalars
        var gRho = [Float](repeating: 0, count: pair.count)
        for j in 0..<pair.count { gRho[j] = gw[j] * eps[p][j] * slopes[p][j] }
        accumulate(&gradients, pair.rho, parameters[pair.rho]!.shape, gRho, scale: 1 / samples)
      }
    }
    // The KL term and its gradients, in double precision per weight.
    var kl = 0.0
    for (p, pair) in pairs.enumerated() {
      let mu = parameters[pair.mean]!.scalars
      var gMu = [Float](repeating: 0, count: pair.count), gRho = gMu
      for j in 0..<pair.count {
        let (m, s) = (Double(mu[j]), Double(sigmas[p][j]))
        var dMu = 0.0, dSigma = 0.0
        switch spec.prior {
        case .gaussian(let prior):
          kl += log(prior / s) + (s * s + m * m) / (2 * prior * prior) - 0.5
          dMu = m / (prior * prior)
          dSigma = -1 / s + s / (prior * prior)
        case .scaleMixture:
          // Blundell's estimate over the update's draws: log q(w) − log p(w) at w = μ + σε.
          for eps in draws {
            let e = Double(eps[p][j])
            let w = Double(Float(m) + Float(s) * Float(e))
            kl += (-0.5 * log(2 * Double.pi) - log(s) - e * e / 2 - spec.prior.logDensity(w)) / Double(samples)
            let slope = spec.prior.logDensityDerivative(w)
            dMu -= slope / Double(samples)
            dSigma += (-1 / s - slope * e) / Double(samples)
          }
        }
        gMu[j] = Float(klWeight * dMu)
        gRho[j] = Float(klWeight * dSigma) * slopes[p][j]
      }
      accumulate(&gradients, pair.mean, parameters[pair.mean]!.shape, gMu, scale: 1)
      accumulate(&gradients, pair.rho, parameters[pair.rho]!.shape, gRho, scale: 1)
    }
    let loss = lossSum / samples + Float(klWeight * kl)
    guard loss.isFinite else { throw .diverged(step: t, loss: loss, reason: "the variational loss is \(loss)") }
    return (loss, gradients)
  }

  private func accumulate(_ gradients: inout [String: Tensor], _ name: String, _ shape: [Int], _ values: [Float], scale: Float) {
    if gradients[name] == nil { gradients[name] = Tensor(shape: shape, repeating: 0) }
    gradients[name]!.scalars.withUnsafeMutableBufferPointer { g in
      for j in 0..<values.count { g[j] += scale * values[j] }
    }
  }
}
