import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Backends
@testable import Bayes

/// Double-precision linear algebra for the closed forms.
enum Dense64 {
  /// The inverse and log-determinant of a symmetric positive definite matrix (Gauss–Jordan).
  static func inverse(_ m: [Double], n: Int) -> (inverse: [Double], logDet: Double) {
    var a = m
    var inv = [Double](repeating: 0, count: n * n)
    for i in 0..<n { inv[i * n + i] = 1 }
    var logDet = 0.0
    for col in 0..<n {
      let pivot = (col..<n).max { abs(a[$0 * n + col]) < abs(a[$1 * n + col]) }!
      if pivot != col {
        for k in 0..<n {
          a.swapAt(col * n + k, pivot * n + k)
          inv.swapAt(col * n + k, pivot * n + k)
        }
      }
      let p = a[col * n + col]
      logDet += log(abs(p))
      for k in 0..<n {
        a[col * n + k] /= p
        inv[col * n + k] /= p
      }
      for r in 0..<n where r != col {
        let f = a[r * n + col]
        if f == 0 { continue }
        for k in 0..<n {
          a[r * n + k] -= f * a[col * n + k]
          inv[r * n + k] -= f * inv[col * n + k]
        }
      }
    }
    return (inv, logDet)
  }
}

/// Bayesian linear regression, where the Laplace posterior is the exact posterior.
struct LinearRegressionProblem {
  let n = 40, features = 3
  let noise = 0.3, prior = 2.0
  let x: [Double]
  let y: [Double]

  init() {
    var generator = SplitMix64(seed: 11, stream: "blr")
    let x = (0..<40 * 3).map { _ in Double(generator.nextNormal()) }
    let truth = [0.8, -1.2, 0.4], bias = 0.5
    var y: [Double] = []
    for i in 0..<40 {
      var value = bias
      for j in 0..<3 { value += truth[j] * x[i * 3 + j] }
      y.append(value + 0.3 * Double(generator.nextNormal()))
    }
    (self.x, self.y) = (x, y)
  }

  /// Rows of the design matrix with the bias column last (the flat order: weight, then bias).
  var design: [Double] { (0..<n).flatMap { i in Array(x[i * features..<(i + 1) * features]) + [1] } }

  /// The exact posterior precision X̃ᵀX̃/s² + δI, its covariance, and the mean.
  var exact: (precision: [Double], covariance: [Double], mean: [Double], logDet: Double) {
    let p = features + 1
    var a = [Double](repeating: 0, count: p * p)
    var b = [Double](repeating: 0, count: p)
    let d = design
    for i in 0..<n {
      for j in 0..<p {
        b[j] += d[i * p + j] * y[i] / (noise * noise)
        for k in 0..<p { a[j * p + k] += d[i * p + j] * d[i * p + k] / (noise * noise) }
      }
    }
    for j in 0..<p { a[j * p + j] += prior }
    let (inv, logDet) = Dense64.inverse(a, n: p)
    let mean = (0..<p).map { j in (0..<p).reduce(0) { $0 + inv[j * p + $1] * b[$1] } }
    return (a, inv, mean, logDet)
  }

  /// The direct log evidence: y ~ N(0, s²I + X̃X̃ᵀ/δ).
  var logEvidence: Double {
    let p = features + 1
    let d = design
    var c = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
      for j in 0..<n {
        c[i * n + j] = (0..<p).reduce(0) { $0 + d[i * p + $1] * d[j * p + $1] } / prior + (i == j ? noise * noise : 0)
      }
    }
    let (inv, logDet) = Dense64.inverse(c, n: n)
    var quadratic = 0.0
    for i in 0..<n { for j in 0..<n { quadratic += y[i] * inv[i * n + j] * y[j] } }
    return -0.5 * quadratic - 0.5 * logDet - Double(n) / 2 * log(2 * Double.pi)
  }

  var spec: SessionSpec {
    var spec = makeSpec(input: [3], layers: [dense("out", 1)], loss: .mse, data: .sine(samples: 40, noise: 0.1, seed: 1))
    spec.state = spec.initialStateRecord()
    return spec
  }

  var dataset: Dataset {
    Dataset(
      inputs: Tensor(shape: [n, features], scalars: x.map { Float($0) }),
      targets: .values(Tensor(shape: [n, 1], scalars: y.map { Float($0) })), shape: DataShape(input: [3], target: .values(width: 1)))
  }

  /// The state with the weights at the exact posterior mean (the MAP).
  func tensors() throws -> [String: StoredTensor] {
    var tensors = try spec.initialTensors()
    let mean = exact.mean
    tensors["param/out.weight"] = StoredTensor(shape: [1, 3], scalars: mean[0..<3].map { Float($0) })
    tensors["param/out.bias"] = StoredTensor(shape: [1], scalars: [Float(mean[3])])
    return tensors
  }
}

@Suite("Bayes: Laplace posterior, predictive, calibration, Bayes by Backprop")
struct BayesTests {
  @Test(arguments: PosteriorSpec.Hessian.allCases)
  func laplaceOfLinearRegressionIsTheExactPosterior(hessian: PosteriorSpec.Hessian) throws {
    let problem = LinearRegressionProblem()
    let fit = try LaplaceFit.fit(
      spec: problem.spec, tensors: try problem.tensors(), train: problem.dataset,
      request: .init(subset: .all, hessian: hessian, priorPrecision: problem.prior, noiseSigma: problem.noise))
    let p = 4
    let exact = problem.exact
    // Σ's entries through the quadratic forms: eᵢ gives Σᵢᵢ, eᵢ + eⱼ gives Σᵢᵢ + Σⱼⱼ + 2Σᵢⱼ.
    var vectors: [Double] = []
    for i in 0..<p { vectors += (0..<p).map { $0 == i ? 1 : 0 } }
    for i in 0..<p { for j in (i + 1)..<p { vectors += (0..<p).map { $0 == i || $0 == j ? 1 : 0 } } }
    let forms = fit.posterior.quadraticForms(vectors, rows: vectors.count / p)
    if hessian == .diag {
      // The diagonal approximation keeps the precision's diagonal: Σᵢᵢ = 1/Aᵢᵢ.
      for i in 0..<p { #expect(abs(forms[i] * exact.precision[i * p + i] - 1) < 1e-5, "\(i)") }
      return
    }
    for i in 0..<p { #expect(abs(forms[i] / exact.covariance[i * p + i] - 1) < 1e-5, "Σ[\(i),\(i)]") }
    var row = p
    for i in 0..<p {
      for j in (i + 1)..<p {
        let cross = (forms[row] - forms[i] - forms[j]) / 2
        #expect(abs(cross - exact.covariance[i * p + j]) < 1e-5 * max(abs(exact.covariance[i * p + j]), 1e-3), "Σ[\(i),\(j)]")
        row += 1
      }
    }
    // The marginal likelihood against the direct Gaussian evidence.
    #expect(abs(fit.logMarginalLikelihood - problem.logEvidence) < 1e-3, "\(fit.logMarginalLikelihood) vs \(problem.logEvidence)")
  }

  @Test func theTunedPriorPrecisionMaximisesTheDirectEvidence() throws {
    let problem = LinearRegressionProblem()
    let fit = try LaplaceFit.fit(
      spec: problem.spec, tensors: try problem.tensors(), train: problem.dataset,
      request: .init(subset: .all, hessian: .full, priorPrecision: nil, noiseSigma: problem.noise))
    #expect(fit.settings.priorTuning == .marglik)
    let tuned = fit.settings.priorPrecision
    // The Laplace evidence terms peak at the tuned value: 1 % either side is lower.
    let posterior = fit.posterior
    let best = posterior.logEvidenceTerms(priorPrecision: tuned)
    #expect(posterior.logEvidenceTerms(priorPrecision: tuned * 1.01) < best)
    #expect(posterior.logEvidenceTerms(priorPrecision: tuned / 1.01) < best)
  }

  @Test func theEigenSolversAgree() {
    var generator = SplitMix64(seed: 5, stream: "eigen")
    let n = 9
    var m = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
      for j in i..<n {
        let v = Double(generator.nextNormal())
        (m[i * n + j], m[j * n + i]) = (v, v)
      }
    }
    let lapack = SymmetricEigen(m, n: n), jacobi = SymmetricEigen.jacobi(m, n: n)
    for k in 0..<n { #expect(abs(lapack.values[k] - jacobi.values[k]) < 1e-10) }
    // Each is an eigenpair: M v = λ v.
    for eigen in [lapack, jacobi] {
      for k in 0..<n {
        for i in 0..<n {
          let mv = (0..<n).reduce(0) { $0 + m[i * n + $1] * eigen.vectors[k * n + $1] }
          #expect(abs(mv - eigen.values[k] * eigen.vectors[k * n + i]) < 1e-9)
        }
      }
    }
  }

  @Test func thePredictiveStandardDeviationIsTheExactOne() throws {
    let problem = LinearRegressionProblem()
    var spec = problem.spec
    let fit = try LaplaceFit.fit(
      spec: spec, tensors: try problem.tensors(), train: problem.dataset,
      request: .init(subset: .all, hessian: .full, priorPrecision: problem.prior, noiseSigma: problem.noise))
    spec.posterior = fit.settings
    let tensors = try problem.tensors().merging(fit.tensors) { _, new in new }
    let predictor = try Predictor(spec: spec, tensors: tensors, method: .laplace, train: problem.dataset)
    let point: [Float] = [0.3, -2.0, 1.5]
    let prediction = predictor.predict(Tensor(shape: [1, 3], scalars: point))
    let x = point.map(Double.init) + [1]
    let exact = problem.exact
    var variance = 0.0, mean = 0.0
    for i in 0..<4 {
      mean += x[i] * exact.mean[i]
      for j in 0..<4 { variance += x[i] * exact.covariance[i * 4 + j] * x[j] }
    }
    #expect(abs(prediction.mean[0] - mean) < 1e-5)
    #expect(abs(prediction.std[0] - (variance + problem.noise * problem.noise).squareRoot()) < 1e-5)
  }
}

@Suite("Bayes by Backprop")
struct VariationalTests {
  /// spirals through a variational output layer, with a Gaussian or a scale-mixture prior.
  static func spec(_ prior: VariationalSpec.Prior, samples: Int = 2, optimizer: OptimizerSpec = .adam(.init(lr: 0.01, weightDecay: 0)))
    -> SessionSpec
  {
    var spec = makeSpec(
      layers: [dense("d1", 6, .tanh), dense("d2", 3)], optimizer: optimizer, data: .spirals(samples: 30, classes: 3, noise: 0.1, seed: 1),
      validationFraction: 0.2)
    spec.model.variational = VariationalSpec(layers: ["d2", "d1"], prior: prior, rhoInit: -2, trainSamples: samples)
    return spec
  }

  static let priors: [VariationalSpec.Prior] = [.gaussian(sigma: 0.7), .scaleMixture(pi: 0.3, sigma1: 1.5, sigma2: 0.1)]

  @Test func theStateHoldsEachVariationalWeightsRhoWithItsSlots() throws {
    let spec = Self.spec(.gaussian(sigma: 1))
    let names = try spec.parameterShapes().map(\.name)
    #expect(names == ["d1.weight", "d1.bias", "d1.weight_rho", "d1.bias_rho", "d2.weight", "d2.bias", "d2.weight_rho", "d2.bias_rho"])
    let tensors = try spec.initialTensors()
    #expect(tensors["param/d2.weight_rho"]!.scalars.allSatisfy { $0 == -2 })
    #expect(tensors["opt/d2.bias_rho/exp_avg"] != nil)
  }

  @Test(arguments: priors)
  func theVariationalGradientMatchesFiniteDifferencesAtFixedNoise(prior: VariationalSpec.Prior) throws {
    let spec = Self.spec(prior, samples: 3)
    let trainer = try makeTrainer(spec)
    let variational = try #require(VariationalObjective(spec: spec, trainingSamples: trainer.train.count))
    let draws = variational.noise(update: 4)
    let batch = trainer.train
    // The network in evaluation mode (no dropout in this model), so each evaluation is a function.
    let network: Objective = { parameters throws(BackendError) in
      var pass: SequentialTrainer<PlainKernels>.StepPass?
      let (loss, gradients, _) = trainer.lossAndGradients(batch.inputs.materialized(), batch.targets, parameters: parameters, pass: &pass)
      return (loss, gradients)
    }
    var parameters = trainer.parameters
    // Spread the ρ's so that softplus's slope varies.
    for name in ["d1.weight_rho", "d2.bias_rho"] {
      parameters[name]!.scalars = parameters[name]!.scalars.enumerated().map { Float(-3 + 0.37 * Double($0.offset % 9)) }
    }
    let (_, analytic) = try variational.evaluate(parameters, draws: draws, update: 4, network: network)
    for name in parameters.keys.sorted() {
      let check = GradientCheck(step: 1e-2, absoluteTolerance: 2e-3, relativeTolerance: 2e-2)
      let worst = check.worst(analytic: analytic[name]!.scalars, at: parameters[name]!.scalars) { point in
        var moved = parameters
        moved[name]!.scalars = point
        return (try? variational.evaluate(moved, draws: draws, update: 4, network: network).loss) ?? .nan
      }
      #expect(worst.ratio <= 1, "\(prior) \(name)[\(worst.index)]: analytic \(worst.analytic), numeric \(worst.numeric)")
    }
  }

  /// Bayesian linear regression through one variational dense layer: with the mean loss and
  /// kl_weight = 1/N, the objective is mean-field VI for a Gaussian likelihood of variance ½, whose
  /// optimum is known: μ the exact posterior mean, σᵢ² = 1/Aᵢᵢ with A = 2X̃ᵀX̃ + I/σp².
  @Test func sigmaConvergesToTheMeanFieldOptimum() throws {
    let problem = LinearRegressionProblem()
    let priorSigma = 1.0
    var spec = makeSpec(
      input: [3], layers: [dense("out", 1)], loss: .mse, optimizer: .adam(.init(lr: 0.02, weightDecay: 0)),
      data: .sine(samples: 40, noise: 0.1, seed: 1), batchSize: 40, schedule: .cosine(tMax: 4000, etaMin: 0))
    spec.model.variational = VariationalSpec(layers: ["out"], prior: .gaussian(sigma: priorSigma), rhoInit: -3, trainSamples: 16)
    let trainer = try ReferenceTrainer(spec: spec, state: spec.initialTrainingState(), train: problem.dataset, kernels: PlainKernels())
    for _ in 0..<4000 { _ = try trainer.trainStep() }
    // The optimum, in double precision.
    let d = problem.design
    var a = [Double](repeating: 0, count: 16), b = [Double](repeating: 0, count: 4)
    for i in 0..<problem.n {
      for j in 0..<4 {
        b[j] += 2 * d[i * 4 + j] * problem.y[i]
        for k in 0..<4 { a[j * 4 + k] += 2 * d[i * 4 + j] * d[i * 4 + k] }
      }
    }
    for j in 0..<4 { a[j * 4 + j] += 1 / (priorSigma * priorSigma) }
    let inverse = Dense64.inverse(a, n: 4).inverse
    let mean = (0..<4).map { j in (0..<4).reduce(0.0) { $0 + inverse[j * 4 + $1] * b[$1] } }
    let optimum = (0..<4).map { 1 / a[$0 * 4 + $0].squareRoot() }
    let mu: [Float] = trainer.parameters["out.weight"]!.scalars + trainer.parameters["out.bias"]!.scalars
    let rho: [Float] = trainer.parameters["out.weight_rho"]!.scalars + trainer.parameters["out.bias_rho"]!.scalars
    let sigma = rho.map { Double(VariationalSpec.softplus($0)) }
    for j in 0..<4 {
      // Stated tolerance: σ within 3 % of the optimum (0.8 % measured), μ within a tenth of the optimum's σ.
      #expect(abs(sigma[j] / optimum[j] - 1) < 0.03, "σ[\(j)] = \(sigma[j]), optimum \(optimum[j])")
      #expect(abs(Double(mu[j]) - mean[j]) < 0.1 * optimum[j], "μ[\(j)] = \(mu[j]), optimum \(mean[j])")
    }
  }

  @Test(arguments: ["reference", "fast"])
  func trainSaveLoadTrainIsBitIdentical(backendName: String) throws {
    let spec = Self.spec(.scaleMixture(pi: 0.5, sigma1: 1, sigma2: 0.05))
    let backend = try BackendRegistry.builtIn.named(backendName)
    let (straight, _) = try train(SessionBundle(spec: spec), steps: 13, on: backend)
    let (half, _) = try train(SessionBundle(spec: spec), steps: 6, on: backend)
    let folder = temporaryFolder()
    try SessionFile.save(half, to: folder + "/half")
    let (resumed, _) = try train(try SessionFile.load(folder + "/half.json"), steps: 7, on: backend)
    let (a, b) = (try straight.trainingState(), try resumed.trainingState())
    #expect(a.step == 13 && b.step == 13)
    #expect(Set(a.tensors.keys) == Set(b.tensors.keys))
    #expect(a.tensors.keys.contains("opt/d2.weight_rho/exp_avg_sq"))
    for (name, tensor) in a.tensors {
      #expect(tensor.scalars.map(\.bitPattern) == b.tensors[name]!.scalars.map(\.bitPattern), "\(backendName): \(name)")
    }
  }

  @Test func fastAgreesWithReference() throws {
    let spec = Self.spec(.gaussian(sigma: 1), samples: 2)
    let (reference, _) = try train(SessionBundle(spec: spec), steps: 20, on: ReferenceBackend())
    let (fast, _) = try train(SessionBundle(spec: spec), steps: 20, on: try BackendRegistry.builtIn.named("fast"))
    let (a, b) = (try reference.trainingState(), try fast.trainingState())
    for (name, tensor) in a.tensors where name.hasPrefix("param/") {
      let other = b.tensors[name]!.scalars
      let worst = zip(tensor.scalars, other).map { abs($0 - $1) / max(1, abs($0)) }.max() ?? 0
      #expect(worst < 1e-4, "\(name): \(worst)")
    }
    // Training moved the ρ's (their gradients reach the optimizer).
    #expect(a.tensors["param/d2.weight_rho"]!.scalars.contains { $0 != -2 })
  }
}

@Suite("Laplace curvature of a network")
struct CurvatureTests {
  /// A small network with every layer the curvature passes through, its state moved off its
  /// initial values (batch_norm's running statistics too), and seven samples.
  static func problem() throws -> (SessionSpec, [String: StoredTensor], Dataset) {
    var spec = makeSpec(
      layers: [
        dense("d1", 5, .tanh), LayerSpec(name: "bn", kind: .batchNorm(eps: 1e-5, momentum: 0.1)),
        LayerSpec(name: "act", kind: .activation(function: .sigmoid)), LayerSpec(name: "ln", kind: .layerNorm(eps: 1e-5)),
        LayerSpec(name: "drop", kind: .dropout(rate: 0.3)), dense("d2", 3),
      ])
    spec.state = spec.initialStateRecord()
    var tensors = try spec.initialTensors()
    var generator = SplitMix64(seed: 3, stream: "curvature")
    for (name, tensor) in tensors where name.hasPrefix("param/") || name.hasPrefix("buffer/") {
      let moved = tensor.scalars.map { $0 + 0.3 * generator.nextNormal() }
      tensors[name] = StoredTensor(shape: tensor.shape, scalars: name.hasSuffix("running_var") ? moved.map { abs($0) + 0.2 } : moved)
    }
    let inputs = (0..<14).map { _ in generator.nextNormal() }
    let data = Dataset(
      inputs: Tensor(shape: [7, 2], scalars: inputs), targets: .classes([0, 1, 2, 1, 0, 2, 2]),
      shape: DataShape(input: [2], target: .classes(3)))
    return (spec, tensors, data)
  }

  /// The GGN Σₙ Jₙᵀ Λₙ Jₙ with Jₙ by central differences of the network's outputs.
  static func directGGN(_ spec: SessionSpec, _ tensors: [String: StoredTensor], _ data: Dataset, names: [String]) throws -> [Double] {
    let network = try NetworkPass(spec: spec, tensors: tensors)
    let flat = names.flatMap { network.parameters[$0]!.scalars }
    let p = flat.count
    func outputs(_ values: [Float]) -> [Double] {
      var replaced: [String: Tensor] = [:]
      var offset = 0
      for name in names {
        let tensor = network.parameters[name]!
        replaced[name] = Tensor(shape: tensor.shape, scalars: Array(values[offset..<offset + tensor.count]))
        offset += tensor.count
      }
      return network.with(replaced).forward(data.inputs.materialized()).output.scalars.map(Double.init)
    }
    let f = outputs(flat)
    let (n, c) = (data.count, 3)
    var jacobian = [Double](repeating: 0, count: n * c * p)  // [n, c, p]
    // Central differences at steps h and h/2, extrapolated (Richardson): the h² error term
    // cancels, leaving float32 rounding (about 1e-5 of an output) as the reference's error.
    func central(_ k: Int, _ h: Float) -> [Double] {
      var plus = flat, minus = flat
      plus[k] += h
      minus[k] -= h
      return zip(outputs(plus), outputs(minus)).map { ($0 - $1) / Double(2 * h) }
    }
    let h: Float = 2e-2
    for k in 0..<p {
      let (wide, narrow) = (central(k, h), central(k, h / 2))
      for i in 0..<n * c { jacobian[i * p + k] = (4 * narrow[i] - wide[i]) / 3 }
    }
    var ggn = [Double](repeating: 0, count: p * p)
    for s in 0..<n {
      let probabilities = Likelihood.softmax(f[s * c..<(s + 1) * c].map { Float($0) })
      for a in 0..<c {
        for b in 0..<c {
          let lambda = (a == b ? probabilities[a] : 0) - probabilities[a] * probabilities[b]
          for i in 0..<p {
            let ji = jacobian[(s * c + a) * p + i] * lambda
            if ji == 0 { continue }
            for j in 0..<p { ggn[i * p + j] += ji * jacobian[(s * c + b) * p + j] }
          }
        }
      }
    }
    return ggn
  }

  /// The entry of `stored` farthest from `direct`, as a multiple of 2e-3 + 2 % of the direct
  /// value, with both values: a failure names the entry and what it was.
  static func worstEntry(_ stored: [Float], _ direct: [Double]) -> (scaled: Double, message: String) {
    guard !direct.isEmpty, stored.count == direct.count else {
      return (.infinity, "\(stored.count) entries stored, \(direct.count) direct")
    }
    var (worst, at) = (0.0, 0)
    for i in 0..<direct.count {
      let scaled = abs(Double(stored[i]) - direct[i]) / (2e-3 + 2e-2 * abs(direct[i]))
      if scaled > worst { (worst, at) = (scaled, i) }
    }
    let side = Int(Double(direct.count).squareRoot())
    return (
      worst, "worst scaled difference \(worst) at [\(at / max(side, 1)), \(at % max(side, 1))]: stored \(stored[at]), direct \(direct[at])"
    )
  }

  @Test func theFullGGNMatchesFiniteDifferenceJacobians() throws {
    let (spec, tensors, data) = try Self.problem()
    let fit = try LaplaceFit.fit(spec: spec, tensors: tensors, train: data, request: .init(subset: .all, hessian: .full, priorPrecision: 1))
    let names = try spec.parameterShapes().map(\.name)
    let direct = try Self.directGGN(spec, tensors, data, names: names)
    let stored = fit.tensors["posterior/ggn"]!.scalars
    #expect(stored.count == direct.count)
    let worst = Self.worstEntry(stored, direct)
    #expect(worst.scaled <= 1, "\(worst.message)")
  }

  /// The image layers in the curvature: a max pool first (no parameter moves its choice), two
  /// convolutions, an average and a global pool, on seven `[1, 3, 4]` images.
  @Test func theFullGGNOfAnImageNetworkMatchesFiniteDifferenceJacobians() throws {
    var spec = makeSpec(
      input: [12],
      layers: [
        reshape("image", [1, 3, 4]), maxPool("p1", Pair(2), stride: Pair(1), padding: Pair(1)), conv("c1", 3, kernel: Pair(2), .tanh),
        avgPool("p2", Pair(2), stride: Pair(1)), conv("c2", 2, kernel: Pair(1)), LayerSpec(name: "gap", kind: .globalAvgPool),
        dense("d", 3),
      ])
    spec.state = spec.initialStateRecord()
    let tensors = try spec.initialTensors()
    var generator = SplitMix64(seed: 4, stream: "image curvature")
    let data = Dataset(
      inputs: Tensor(shape: [7, 12], scalars: (0..<84).map { _ in generator.nextNormal() }), targets: .classes([0, 1, 2, 1, 0, 2, 2]),
      shape: DataShape(input: [12], target: .classes(3)))
    let fit = try LaplaceFit.fit(spec: spec, tensors: tensors, train: data, request: .init(subset: .all, hessian: .full, priorPrecision: 1))
    let names = try spec.parameterShapes().map(\.name)
    let direct = try Self.directGGN(spec, tensors, data, names: names)
    let stored = fit.tensors["posterior/ggn"]!.scalars
    #expect(stored.count == direct.count && names.contains("c1.weight"))
    let worst = Self.worstEntry(stored, direct)
    #expect(worst.scaled <= 1, "\(worst.message)")
  }

  @Test func diagonalAndKroneckerAgreeWithTheFullMatrixWhereTheyAreExact() throws {
    let (spec, tensors, data) = try Self.problem()
    let full = try LaplaceFit.fit(
      spec: spec, tensors: tensors, train: data, request: .init(subset: .all, hessian: .full, priorPrecision: 1))
    let diag = try LaplaceFit.fit(
      spec: spec, tensors: tensors, train: data, request: .init(subset: .all, hessian: .diag, priorPrecision: 1))
    let ggn = full.tensors["posterior/ggn"]!.scalars
    let p = Int(Double(ggn.count).squareRoot())
    let diagonal = try spec.parameterShapes().flatMap { diag.tensors["posterior/ggn_diag/" + $0.name]!.scalars }
    for i in 0..<p { #expect(abs(diagonal[i] - ggn[i * p + i]) <= 1e-5 * max(1, abs(ggn[i * p + i])), "\(i)") }
    // With one sample, A ⊗ G is the dense block exactly.
    let one = data.subset([4])
    let fullOne = try LaplaceFit.fit(
      spec: spec, tensors: tensors, train: one, request: .init(subset: .lastLayer, hessian: .full, priorPrecision: 1))
    let kronOne = try LaplaceFit.fit(
      spec: spec, tensors: tensors, train: one, request: .init(subset: .lastLayer, hessian: .kron, priorPrecision: 1))
    let block = fullOne.tensors["posterior/ggn"]!.scalars
    let a = kronOne.tensors["posterior/kron/d2/A"]!.scalars, g = kronOne.tensors["posterior/kron/d2/G"]!.scalars
    // Flat order: weight [3, 5] row-major, then bias [3]; the block's (o, i) with the bias as input 5.
    func flatIndex(_ o: Int, _ i: Int) -> Int { i < 5 ? o * 5 + i : 15 + o }
    for o in 0..<3 {
      for i in 0..<6 {
        for o2 in 0..<3 {
          for i2 in 0..<6 {
            let kron = g[o * 3 + o2] * a[i * 6 + i2]
            let exact = block[flatIndex(o, i) * 18 + flatIndex(o2, i2)]
            #expect(abs(kron - exact) <= 1e-5 * max(1, abs(exact)), "(\(o),\(i)),(\(o2),\(i2))")
          }
        }
      }
    }
  }

  /// The Kronecker predictive's rank-one shortcut gives the quadratic forms of the flat Jacobians.
  @Test func theKroneckerShortcutEqualsTheFlatQuadraticForms() throws {
    let (spec, tensors, data) = try Self.problem()
    let fit = try LaplaceFit.fit(
      spec: spec, tensors: tensors, train: data, request: .init(subset: .all, hessian: .kron, priorPrecision: 0.3))
    let network = try NetworkPass(spec: spec, tensors: tensors)
    let (f, caches) = network.forward(data.inputs.materialized())
    let posterior = fit.posterior
    for c in 0..<3 {
      var seed = [Float](repeating: 0, count: f.count)
      for n in 0..<f.rows { seed[n * 3 + c] = 1 }
      let samples = network.perSampleGradients(Tensor(shape: f.shape, scalars: seed), caches: caches, from: 0)
      let p = posterior.parameterCount
      var flat = [Double](repeating: 0, count: f.rows * p)
      LaplaceFit.scatter(samples, names: posterior.layout.parameters.map(\.name), offsets: posterior.offsets, width: p, rows: f.rows) {
        flat[$0 * p + $1] = Double($2)
      }
      let slow = posterior.quadraticForms(flat, rows: f.rows)
      let fast = try #require(posterior.kronQuadraticForms(samples, rows: f.rows))
      for n in 0..<f.rows {  // (The flat path forms g·a in float32: 1e-6 relative.)
        #expect(abs(slow[n] - fast[n]) <= 1e-6 * max(1, abs(slow[n])), "class \(c), sample \(n): \(slow[n]) vs \(fast[n])")
      }
    }
  }
}

/// The posterior against laplace-torch (`Tests/Python/laplace_peer.py`) on the same weights and
/// data: its posterior precision, marginal likelihood and probit predictive, and the prior
/// precision its own optimisation of the evidence finds. One Python process for the three cases.
@Suite("Laplace against laplace-torch")
struct LaplaceTorchTests {
  static let cases: [(subset: PosteriorSpec.Subset, hessian: PosteriorSpec.Hessian)] = [(.lastLayer, .full), (.all, .full), (.all, .diag)]

  @Test(
    .enabled(if: LaplacePeer.isAvailable, "skipped: torch and laplace-torch are not installed (SPECBENCH_WITH_TORCH=1 scripts/setup.sh)"))
  func agreesWithLaplaceTorch() throws {
    var spec = makeSpec(layers: [dense("dense1", 6, .tanh), dense("dense2", 5, .tanh), dense("dense3", 3)])
    spec.state = spec.initialStateRecord()
    var tensors = try spec.initialTensors()
    var generator = SplitMix64(seed: 8, stream: "laplace-torch")
    for (name, tensor) in tensors where name.hasPrefix("param/") {
      tensors[name] = StoredTensor(shape: tensor.shape, scalars: tensor.scalars.map { 1.5 * $0 + 0.2 * generator.nextNormal() })
    }
    let data = SyntheticData.spirals(samples: 60, classes: 3, noise: 0.2, seed: 4)
    let queries = Tensor(shape: [4, 2], scalars: [0.1, 0.2, -1.5, 0.7, 3, -3, 0, 0])
    let prior = 0.8

    let folder = temporaryFolder()
    let parameters = tensors.filter { $0.key.hasPrefix("param/") }
    try Data(SafeTensors.encode(.init(tensors: parameters))).write(to: URL(fileURLWithPath: folder + "/state.safetensors"))
    guard case .classes(let labels) = data.targets else { throw TestFailure("spirals has classes") }
    let peerData: [String: StoredTensor] = [
      "inputs": data.inputs.materialized(), "labels": StoredTensor(shape: [labels.count], scalars: labels.map { Float($0) }),
      "queries": queries,
    ]
    try Data(SafeTensors.encode(.init(tensors: peerData))).write(to: URL(fileURLWithPath: folder + "/data.safetensors"))
    let jobs = Self.cases.enumerated().map { index, c -> JSONValue in
      .object([
        "state": .string(folder + "/state.safetensors"), "data": .string(folder + "/data.safetensors"),
        "subset": .string(c.subset.rawValue),
        "hessian": .string(c.hessian.rawValue), "prior": .double(prior), "out": .string(folder + "/out\(index).json"),
      ])
    }
    try JSONWriter.compact(.array(jobs)).write(toFile: folder + "/jobs.json", atomically: true, encoding: .utf8)
    let script = try String(contentsOfFile: repositoryPath("Tests/Python/laplace_peer.py"), encoding: .utf8)
    let result = try LaplacePeer.run(script, [folder + "/jobs.json"])
    #expect(result.status == 0, "\(result.stderr)")

    for (index, c) in Self.cases.enumerated() {
      let label = "\(c.subset.rawValue) \(c.hessian.rawValue)"
      let request = LaplaceFit.Request(subset: c.subset, hessian: c.hessian, priorPrecision: prior)
      let fit = try LaplaceFit.fit(spec: spec, tensors: tensors, train: data, request: request)
      var ours = spec
      ours.posterior = fit.settings
      let predictor = try Predictor(spec: ours, tensors: tensors.merging(fit.tensors) { _, new in new }, method: .laplace, train: data)
      let prediction = predictor.predict(queries)
      let peer = try #require(
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/out\(index).json"))) as? [String: Any])

      // The posterior precision: laplace-torch's H + δI against our stored H plus δ.
      let p = fit.posterior.parameterCount
      var worst = 0.0
      if c.hessian == .full {
        let theirs = try #require(peer["precision"] as? [[Double]])
        let h = fit.tensors["posterior/ggn"]!.scalars
        for i in 0..<p {
          for j in 0..<p {
            let mine = Double(h[i * p + j]) + (i == j ? prior : 0)
            worst = max(worst, abs(mine - theirs[i][j]) / (1e-4 + 1e-4 * abs(theirs[i][j])))
          }
        }
      } else {
        let theirs = try #require(peer["precision"] as? [Double])
        let h = try spec.parameterShapes().flatMap { fit.tensors["posterior/ggn_diag/" + $0.name]!.scalars }
        for i in 0..<p { worst = max(worst, abs(Double(h[i]) + prior - theirs[i]) / (1e-4 + 1e-4 * abs(theirs[i]))) }
      }
      #expect(worst <= 1, "\(label): the precision differs by \(worst) tolerances")
      // The marginal likelihood at δ.
      let marglik = try #require(peer["marglik"] as? Double)
      #expect(
        abs(fit.logMarginalLikelihood - marglik) <= 1e-5 * max(1, abs(marglik)), "\(label): \(fit.logMarginalLikelihood) vs \(marglik)")
      // The probit predictive.
      let probit = try #require(peer["probit"] as? [[Double]])
      for n in 0..<4 {
        for k in 0..<3 { #expect(abs(prediction.probabilities[n * 3 + k] - probit[n][k]) < 1e-6, "\(label): query \(n) class \(k)") }
      }
      // The tuned prior precision: laplace-torch maximises the same evidence by gradient steps.
      let tuned = try #require(peer["tuned"] as? Double)
      let ownTuned = try LaplaceFit.fit(spec: spec, tensors: tensors, train: data, request: .init(subset: c.subset, hessian: c.hessian))
      #expect(abs(ownTuned.settings.priorPrecision / tuned - 1) < 1e-4, "\(label): \(ownTuned.settings.priorPrecision) vs \(tuned)")
    }
  }
}
