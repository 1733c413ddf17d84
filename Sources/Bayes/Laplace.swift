import CFastKernels
import Datasets
import Foundation
import SpecKit
import TensorCore

/// Why a posterior, a predictive or a calibration could not be had: what and what to do.
public struct BayesError: Error, Hashable, Sendable, CustomStringConvertible {
  public var message: String
  /// The spec field it concerns, when one does.
  public var path: JSONPath?
  public init(_ message: String, path: JSONPath? = nil) { (self.message, self.path) = (message, path) }
  public var description: String { path.map { "\($0): \(message)" } ?? message }
}

/// A Laplace posterior over a session's weights (docs/spec-format.md, "posterior"; docs/bayes.md):
/// the curvature's data term as stored, decomposed once, and what it gives — the marginal
/// likelihood of a prior precision, the covariance's products and draws.
public struct LaplacePosterior: Sendable {
  public internal(set) var settings: PosteriorSpec
  public let layout: PosteriorLayout
  /// The subset's weights in flat order (the posterior's mean).
  let theta: [Double]
  let curvature: Curvature
  /// Offsets of each subset parameter in the flat order.
  let offsets: [String: Int]

  enum Curvature: Sendable {
    case full(SymmetricEigen)
    /// H's diagonal, in flat order.
    case diag([Double])
    /// Kronecker blocks per dense layer, and H's diagonal at the flat indices of the other
    /// parameters (those of the layers that are not dense).
    case kron([KronBlock], outside: [(index: Int, h: Double)])
  }

  struct KronBlock: Sendable {
    let layer: PosteriorLayout.KronLayer
    let a: SymmetricEigen
    let g: SymmetricEigen
    /// Where the weight and the bias start in the flat order.
    let weightOffset: Int
    let biasOffset: Int?
  }

  public var parameterCount: Int { theta.count }

  /// The posterior the spec's `posterior` and the state's `posterior/…` tensors describe.
  public init(spec: SessionSpec, tensors: [String: StoredTensor]) throws(BayesError) {
    guard let settings = spec.posterior else { throw BayesError("the session has no posterior; fit one with posterior") }
    try self.init(spec: spec, settings: settings, tensors: tensors)
  }

  init(spec: SessionSpec, settings: PosteriorSpec, tensors: [String: StoredTensor]) throws(BayesError) {
    if let problem = spec.posteriorProblem(settings) { throw BayesError(problem.message, path: problem.path) }
    guard case .success(let layout) = spec.posteriorLayout(settings.subset) else { throw BayesError("no posterior layout") }
    self.settings = settings
    self.layout = layout
    var offsets: [String: Int] = [:], theta: [Double] = []
    for parameter in layout.parameters {
      offsets[parameter.name] = theta.count
      guard let values = tensors[StateKey.parameter(parameter.name)] else { throw BayesError("the state has no \(parameter.name)") }
      theta += values.scalars.map(Double.init)
    }
    (self.offsets, self.theta) = (offsets, theta)
    func stored(_ name: String) throws(BayesError) -> [Double] {
      guard let tensor = tensors[StateKey.posterior(name)] else { throw BayesError("the state has no posterior/\(name)") }
      return tensor.scalars.map(Double.init)
    }
    switch settings.hessian {
    case .full:
      curvature = .full(SymmetricEigen(Self.symmetrised(try stored("ggn"), n: theta.count), n: theta.count))
    case .diag:
      var diagonal: [Double] = []
      for parameter in layout.parameters { diagonal += try stored("ggn_diag/" + parameter.name) }
      curvature = .diag(diagonal)
    case .kron:
      var blocks: [KronBlock] = []
      var outside: [(index: Int, h: Double)] = []
      for layer in layout.kronLayers {
        let a = SymmetricEigen(Self.symmetrised(try stored("kron/\(layer.layer)/A"), n: layer.side), n: layer.side)
        let g = SymmetricEigen(Self.symmetrised(try stored("kron/\(layer.layer)/G"), n: layer.units), n: layer.units)
        blocks.append(
          KronBlock(layer: layer, a: a, g: g, weightOffset: offsets[layer.weight]!, biasOffset: layer.bias.map { offsets[$0]! }))
      }
      for parameter in layout.outsideKron {
        let values = try stored("ggn_diag/" + parameter.name)
        outside += values.enumerated().map { (offsets[parameter.name]! + $0.offset, $0.element) }
      }
      curvature = .kron(blocks, outside: outside)
    }
  }

  /// The average of a matrix and its transpose (float32 storage may leave the two triangles a
  /// rounding apart).
  static func symmetrised(_ m: [Double], n: Int) -> [Double] {
    var s = m
    for i in 0..<n {
      for j in (i + 1)..<max(n, i + 1) {
        let v = (m[i * n + j] + m[j * n + i]) / 2
        (s[i * n + j], s[j * n + i]) = (v, v)
      }
    }
    return s
  }

  // MARK: the marginal likelihood

  /// log det(H + δI).
  public func logDeterminant(priorPrecision delta: Double) -> Double {
    switch curvature {
    case .full(let eigen): return eigen.values.reduce(0) { $0 + log(max($1, 0) + delta) }
    case .diag(let h): return h.reduce(0) { $0 + log(max($1, 0) + delta) }
    case .kron(let blocks, let outside):
      var total = outside.reduce(0) { $0 + log(max($1.h, 0) + delta) }
      for block in blocks {
        for ga in block.g.values {
          for aa in block.a.values { total += log(max(ga, 0) * max(aa, 0) + delta) }
        }
      }
      return total
    }
  }

  /// The Laplace marginal likelihood of δ without the log-likelihood, which does not depend on
  /// δ: (P/2)·log δ − (δ/2)·‖θ‖² − ½·log det(H + δI).
  public func logEvidenceTerms(priorPrecision delta: Double) -> Double {
    let squared = theta.reduce(0) { $0 + $1 * $1 }
    return Double(theta.count) / 2 * log(delta) - delta / 2 * squared - logDeterminant(priorPrecision: delta) / 2
  }

  /// The δ that maximises the marginal likelihood: the best of the grid 10^(−4 + k/10),
  /// k = 0…80, refined by golden-section search on log δ between its neighbours.
  public func tunedPriorPrecision() -> Double {
    let grid = (0...80).map { -4 + Double($0) / 10 }
    let scores = grid.map { logEvidenceTerms(priorPrecision: pow(10, $0)) }
    let best = scores.indices.max { scores[$0] < scores[$1] }!
    var (low, high) = (grid[max(best - 1, 0)], grid[min(best + 1, grid.count - 1)])
    let ratio = (5.0.squareRoot() - 1) / 2
    var x1 = high - ratio * (high - low), x2 = low + ratio * (high - low)
    var f1 = logEvidenceTerms(priorPrecision: pow(10, x1)), f2 = logEvidenceTerms(priorPrecision: pow(10, x2))
    // log10 of a relative 1e-6 in δ.
    while high - low > 4.3e-7 {
      if f1 < f2 {
        (low, x1, f1) = (x1, x2, f2)
        x2 = low + ratio * (high - low)
        f2 = logEvidenceTerms(priorPrecision: pow(10, x2))
      } else {
        (high, x2, f2) = (x2, x1, f1)
        x1 = high - ratio * (high - low)
        f1 = logEvidenceTerms(priorPrecision: pow(10, x1))
      }
    }
    let candidate = pow(10, (low + high) / 2)
    let gridBest = pow(10, grid[best])
    return logEvidenceTerms(priorPrecision: candidate) >= scores[best] ? candidate : gridBest
  }

  // MARK: the covariance

  /// vᵀ(H + δI)⁻¹v for the rows of `vectors` (`[rows, P]` in flat order).
  func quadraticForms(_ vectors: [Double], rows: Int) -> [Double] {
    let p = theta.count
    let delta = settings.priorPrecision
    var result = [Double](repeating: 0, count: rows)
    switch curvature {
    case .full(let eigen):
      // Every row's coordinates in the eigenbasis at once, Z = J·Vᵀ, by OpenBLAS's dgemm when it loads.
      var projected = [Double](repeating: 0, count: rows * p)
      let status = vectors.withUnsafeBufferPointer { j in
        eigen.vectors.withUnsafeBufferPointer { v in
          projected.withUnsafeMutableBufferPointer { z in
            specbench_dgemm_nt(Int32(rows), Int32(p), Int32(p), j.baseAddress, v.baseAddress, z.baseAddress)
          }
        }
      }
      if status == 0 {
        let weights = eigen.values.map { 1 / (max($0, 0) + delta) }
        for r in 0..<rows {
          var s = 0.0
          for k in 0..<p { s += projected[r * p + k] * projected[r * p + k] * weights[k] }
          result[r] = s
        }
        return result
      }
      var z = [Double](repeating: 0, count: p)
      vectors.withUnsafeBufferPointer { all in
        z.withUnsafeMutableBufferPointer { z in
          for r in 0..<rows {
            eigen.project(UnsafeBufferPointer(rebasing: all[r * p..<(r + 1) * p]), into: z)
            var s = 0.0
            for k in 0..<p { s += z[k] * z[k] / (max(eigen.values[k], 0) + delta) }
            result[r] = s
          }
        }
      }
    case .diag(let h):
      for r in 0..<rows {
        var s = 0.0
        for k in 0..<p { s += vectors[r * p + k] * vectors[r * p + k] / (max(h[k], 0) + delta) }
        result[r] = s
      }
    case .kron(let blocks, let outside):
      for r in 0..<rows {
        var s = outside.reduce(0) { $0 + vectors[r * p + $1.index] * vectors[r * p + $1.index] / (max($1.h, 0) + delta) }
        for block in blocks {
          let matrix = blockMatrix(block, vectors[(r * p)..<((r + 1) * p)])
          s += kronQuadratic(block, matrix, delta: delta)
        }
        result[r] = s
      }
    }
    return result
  }

  /// For `kron`: vᵀ(H + δI)⁻¹v per sample for the per-sample gradients `samples` (each row a
  /// sample's vector v). A dense layer's part of v is the outer product g ⊗ ã of its
  /// pre-activation gradient and its input (with a 1 for the bias), so in the eigenbases it is
  /// (Q_Gᵀg)(Q_Aᵀã)ᵀ: O(units² + side²) a sample rather than the block's size squared.
  func kronQuadraticForms(_ samples: [String: NetworkPass.Samples], rows: Int) -> [Double]? {
    guard case .kron(let blocks, let outside) = curvature else { return nil }
    let delta = settings.priorPrecision
    var result = [Double](repeating: 0, count: rows)
    for block in blocks {
      guard case .dense(let inputs, let gradients)? = samples[block.layer.layer] else { continue }
      let (units, width, side) = (block.layer.units, inputs.rowWidth, block.layer.side)
      var zg = [Double](repeating: 0, count: units), za = [Double](repeating: 0, count: side)
      for r in 0..<rows {
        for i in 0..<units {
          var s = 0.0
          for o in 0..<units { s += block.g.vectors[i * units + o] * Double(gradients.scalars[r * units + o]) }
          zg[i] = s * s
        }
        for j in 0..<side {
          var s = 0.0
          for t in 0..<width { s += block.a.vectors[j * side + t] * Double(inputs.scalars[r * width + t]) }
          if side > width { s += block.a.vectors[j * side + width] }
          za[j] = s * s
        }
        var total = 0.0
        for i in 0..<units where zg[i] != 0 {
          let gi = max(block.g.values[i], 0)
          for j in 0..<side { total += zg[i] * za[j] / (gi * max(block.a.values[j], 0) + delta) }
        }
        result[r] += total
      }
    }
    if !outside.isEmpty {
      let h = Dictionary(uniqueKeysWithValues: outside.map { ($0.index, $0.h) })
      LaplaceFit.scatter(samples, names: layout.outsideKron.map(\.name), offsets: offsets, width: theta.count, rows: rows) {
        row, index, value in
        result[row] += Double(value) * Double(value) / (max(h[index]!, 0) + delta)
      }
    }
    return result
  }

  /// A block's part of a flat vector as a `[units, side]` matrix (bias in the last column).
  func blockMatrix(_ block: KronBlock, _ flat: ArraySlice<Double>) -> [Double] {
    let (units, inputs, side) = (block.layer.units, block.layer.inputs, block.layer.side)
    let base = flat.startIndex
    var m = [Double](repeating: 0, count: units * side)
    for o in 0..<units {
      for i in 0..<inputs { m[o * side + i] = flat[base + block.weightOffset + o * inputs + i] }
      if let b = block.biasOffset { m[o * side + inputs] = flat[base + b + o] }
    }
    return m
  }

  /// vec(M)ᵀ (A ⊗ G + δI)⁻¹ vec(M) with M `[units, side]`: in the eigenbases,
  /// Σᵢⱼ (Q_Gᵀ M Q_A)ᵢⱼ² / (λ_Gᵢ λ_Aⱼ + δ).
  func kronQuadratic(_ block: KronBlock, _ m: [Double], delta: Double) -> Double {
    let rotated = rotate(block, m)
    let (units, side) = (block.layer.units, block.layer.side)
    var s = 0.0
    for i in 0..<units {
      for j in 0..<side {
        let z = rotated[i * side + j]
        s += z * z / (max(block.g.values[i], 0) * max(block.a.values[j], 0) + delta)
      }
    }
    return s
  }

  /// Q_Gᵀ M Q_A (rows of the eigen matrices are eigenvectors): [i, j] = Σ_o Σ_t g_i[o]·M[o, t]·a_j[t].
  func rotate(_ block: KronBlock, _ m: [Double]) -> [Double] {
    let (units, side) = (block.layer.units, block.layer.side)
    var left = [Double](repeating: 0, count: units * side)  // Q_Gᵀ M
    for i in 0..<units {
      for o in 0..<units {
        let g = block.g.vectors[i * units + o]
        if g == 0 { continue }
        for t in 0..<side { left[i * side + t] += g * m[o * side + t] }
      }
    }
    var result = [Double](repeating: 0, count: units * side)
    for i in 0..<units {
      for j in 0..<side {
        var s = 0.0
        for t in 0..<side { s += left[i * side + t] * block.a.vectors[j * side + t] }
        result[i * side + j] = s
      }
    }
    return result
  }

  /// θ + Σ^½ε for standard normals ε in the eigen coordinates (read in the subset's flat order).
  func draw(_ eps: [Double]) -> [Double] {
    let p = theta.count
    let delta = settings.priorPrecision
    var sample = theta
    switch curvature {
    case .full(let eigen):
      for k in 0..<p {
        let scale = eps[k] / (max(eigen.values[k], 0) + delta).squareRoot()
        for i in 0..<p { sample[i] += scale * eigen.vectors[k * p + i] }
      }
    case .diag(let h):
      for k in 0..<p { sample[k] += eps[k] / (max(h[k], 0) + delta).squareRoot() }
    case .kron(let blocks, let outside):
      for block in blocks {
        let (units, inputs, side) = (block.layer.units, block.layer.inputs, block.layer.side)
        // ε' in the eigen coordinates, scaled; then back: X = Q_G E' Q_Aᵀ, X[o, t] = Σᵢⱼ g_i[o]·E'ᵢⱼ·a_j[t].
        var scaled = blockMatrix(block, eps[...])
        for i in 0..<units {
          for j in 0..<side { scaled[i * side + j] /= (max(block.g.values[i], 0) * max(block.a.values[j], 0) + delta).squareRoot() }
        }
        var left = [Double](repeating: 0, count: units * side)  // Q_G E'
        for i in 0..<units {
          for o in 0..<units {
            let g = block.g.vectors[i * units + o]
            for j in 0..<side { left[o * side + j] += g * scaled[i * side + j] }
          }
        }
        for o in 0..<units {
          for t in 0..<side {
            var s = 0.0
            for j in 0..<side { s += left[o * side + j] * block.a.vectors[j * side + t] }
            if t < inputs {
              sample[block.weightOffset + o * inputs + t] += s
            } else if let b = block.biasOffset {
              sample[b + o] += s
            }
          }
        }
      }
      for (k, h) in outside { sample[k] += eps[k] / (max(h, 0) + delta).squareRoot() }
    }
    return sample
  }

  /// The subset's parameters at a flat vector.
  func parameters(at flat: [Double]) -> [String: Tensor] {
    var result: [String: Tensor] = [:]
    for parameter in layout.parameters {
      let start = offsets[parameter.name]!
      let count = parameter.shape.reduce(1, *)
      result[parameter.name] = Tensor(shape: parameter.shape, scalars: flat[start..<start + count].map { Float($0) })
    }
    return result
  }

  /// With another prior precision (or predictive), the same curvature.
  public func with(priorPrecision: Double? = nil, predictive: PosteriorSpec.Predictive? = nil, samples: Int? = nil) -> LaplacePosterior {
    var copy = self
    copy.settings.priorPrecision = priorPrecision ?? settings.priorPrecision
    if let predictive { copy.settings.predictive = predictive }
    if let samples { copy.settings.samples = samples }
    return copy
  }
}
