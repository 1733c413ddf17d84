import Foundation
import SpecKit

/// Forward and backward passes of the layer types, on whole batches, as plain loops.
/// Every backward returns the input gradient and the parameter gradients in the layer's order
/// (weight, then bias).
public enum LayerMath {
  // MARK: dense

  /// `z = x·Wᵀ + b` for x `[B, in]`, W `[out, in]`, b `[out]` (nil without bias).
  public static func denseForward(_ x: Tensor, weight: Tensor, bias: Tensor?, kernels: some MatrixKernels = PlainKernels()) -> Tensor {
    let (batch, inputs, outputs) = (x.rows, x.rowWidth, weight.shape[0])
    var z = kernels.matmulTransposedB(x.scalars, weight.scalars, m: batch, k: inputs, n: outputs)
    if let bias { Kernels.addRowVector(&z, bias.scalars, rows: batch, width: outputs) }
    return Tensor(shape: [batch, outputs], scalars: z)
  }

  /// Gradients of the dense map given dz: dx = dz·W, dW = dzᵀ·x, db = Σ_rows dz.
  ///
  /// With `needsInputGradient` false (the first layer: nothing uses the gradient of the data),
  /// dx is not computed and comes back empty.
  public static func denseBackward(
    _ dz: Tensor, input x: Tensor, weight: Tensor, hasBias: Bool, kernels: some MatrixKernels = PlainKernels(),
    needsInputGradient: Bool = true
  ) -> (input: Tensor, weight: Tensor, bias: Tensor?) {
    let (batch, inputs, outputs) = (x.rows, x.rowWidth, weight.shape[0])
    let dx =
      needsInputGradient ? kernels.matmul(dz.scalars, weight.scalars, m: batch, k: outputs, n: inputs) : Array(repeating: 0, count: x.count)
    let dw = kernels.matmulTransposedA(dz.scalars, x.scalars, m: batch, k: outputs, n: inputs)
    let db = hasBias ? Tensor(shape: [outputs], scalars: Kernels.sumRows(dz.scalars, rows: batch, width: outputs)) : nil
    return (Tensor(shape: x.shape, scalars: dx), Tensor(shape: weight.shape, scalars: dw), db)
  }

  // MARK: normalisation

  /// What a normalisation's backward pass needs: x̂ and 1/sqrt(var + eps) per group.
  public struct NormCache: Sendable {
    public var normalized: [Float]
    public var inverseStd: [Float]
  }

  /// Layer normalisation over the last axis (F features): y = γ·(x − μ)/sqrt(σ² + eps) + β with
  /// the biased variance, as PyTorch's `LayerNorm`.
  public static func layerNormForward(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> (Tensor, NormCache) {
    let features = x.shape.last!
    var y = [Float](repeating: 0, count: x.count)
    var cache = NormCache(normalized: Array(repeating: 0, count: x.count), inverseStd: Array(repeating: 0, count: x.count / features))
    withViews(x.scalars, weight.scalars, bias.scalars) { x, w, b in
      withMutableViews(&y, &cache.normalized, &cache.inverseStd) { y, normalized, inverseStd in
        layerNormForward(x, features: features, weight: w, bias: b, eps: eps, into: y, normalized: normalized, inverseStd: inverseStd)
      }
    }
    return (Tensor(shape: x.shape, scalars: y), cache)
  }

  /// Layer normalisation on views: `y`, the cache's x̂ and 1/σ per group written in place.
  package static func layerNormForward(
    _ x: UnsafeBufferPointer<Float>, features: Int, weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>, eps: Float,
    into y: UnsafeMutableBufferPointer<Float>, normalized: UnsafeMutableBufferPointer<Float>, inverseStd: UnsafeMutableBufferPointer<Float>
  ) {
    for g in 0..<x.count / features {
      let base = g * features
      var mean: Float = 0
      for j in 0..<features { mean += x[base + j] }
      mean /= Float(features)
      var variance: Float = 0
      for j in 0..<features {
        let d = x[base + j] - mean
        variance += d * d
      }
      variance /= Float(features)
      let inv = 1 / (variance + eps).squareRoot()
      inverseStd[g] = inv
      for j in 0..<features {
        let n = (x[base + j] - mean) * inv
        normalized[base + j] = n
        y[base + j] = n * weight[j] + bias[j]
      }
    }
  }

  /// dx = (inv/F)·(F·ĝ − Σĝ − x̂·Σ(ĝ·x̂)) with ĝ = dy·γ; dγ = Σ dy·x̂; dβ = Σ dy.
  public static func layerNormBackward(_ dy: Tensor, cache: NormCache, weight: Tensor) -> (input: Tensor, weight: Tensor, bias: Tensor) {
    var dx = [Float](repeating: 0, count: dy.count)
    var dw = [Float](repeating: 0, count: weight.count), db = dw
    withViews(dy.scalars, cache.normalized, cache.inverseStd) { dy, normalized, inverseStd in
      weight.scalars.withUnsafeBufferPointer { weight in
        withMutableViews(&dx, &dw, &db) { dx, dw, db in
          layerNormBackward(
            dy, normalized: normalized, inverseStd: inverseStd, weight: weight, into: dx, weightGradient: dw, biasGradient: db)
        }
      }
    }
    return (Tensor(shape: dy.shape, scalars: dx), Tensor(shape: weight.shape, scalars: dw), Tensor(shape: weight.shape, scalars: db))
  }

  /// The layer-norm backward pass on views; `dx` may be `dy` itself, dγ and dβ are overwritten.
  package static func layerNormBackward(
    _ dy: UnsafeBufferPointer<Float>, normalized: UnsafeBufferPointer<Float>, inverseStd: UnsafeBufferPointer<Float>,
    weight: UnsafeBufferPointer<Float>, into dx: UnsafeMutableBufferPointer<Float>, weightGradient dw: UnsafeMutableBufferPointer<Float>,
    biasGradient db: UnsafeMutableBufferPointer<Float>
  ) {
    let features = weight.count
    dw.update(repeating: 0)
    db.update(repeating: 0)
    for g in 0..<dy.count / features {
      let base = g * features
      var sumG: Float = 0, sumGX: Float = 0
      for j in 0..<features {
        let gh = dy[base + j] * weight[j]
        sumG += gh
        sumGX += gh * normalized[base + j]
        dw[j] += dy[base + j] * normalized[base + j]
        db[j] += dy[base + j]
      }
      let scale = inverseStd[g] / Float(features)
      for j in 0..<features {
        let gh = dy[base + j] * weight[j]
        dx[base + j] = scale * (Float(features) * gh - sumG - normalized[base + j] * sumGX)
      }
    }
  }

  /// Where a batch_norm feature's values sit in a batch `[B, C, rest…]`: `C` channels, each with
  /// B·L values (L = product of the rest) at offsets `b·C·L + c·L + l`.
  static func channelLayout(_ shape: [Int]) -> (batch: Int, channels: Int, inner: Int) {
    (shape[0], shape[1], shape.dropFirst(2).reduce(1, *))
  }

  /// Batch normalisation per channel (the first sample axis). Training: normalise by the batch's
  /// biased variance and move the running statistics toward the batch's mean and unbiased
  /// variance (`running = (1 − m)·running + m·batch`); with a single value per channel the
  /// running statistics are left as they are (the unbiased variance is undefined). Evaluation:
  /// normalise by the running statistics.
  public static func batchNormForward(
    _ x: Tensor, weight: Tensor, bias: Tensor, runningMean: inout Tensor, runningVar: inout Tensor, eps: Float, momentum: Float,
    training: Bool
  ) -> (Tensor, NormCache) {
    let (batch, channels, inner) = channelLayout(x.shape)
    var y = [Float](repeating: 0, count: x.count)
    var cache = NormCache(normalized: Array(repeating: 0, count: x.count), inverseStd: Array(repeating: 0, count: channels))
    withViews(x.scalars, weight.scalars, bias.scalars) { x, w, b in
      withMutableViews(&y, &cache.normalized, &cache.inverseStd) { y, normalized, inverseStd in
        withMutableViews(&runningMean.scalars, &runningVar.scalars) { mean, variance in
          batchNormForward(
            x, batch: batch, channels: channels, inner: inner, weight: w, bias: b, runningMean: mean, runningVar: variance, eps: eps,
            momentum: momentum, training: training, into: y, normalized: normalized, inverseStd: inverseStd)
        }
      }
    }
    return (Tensor(shape: x.shape, scalars: y), cache)
  }

  /// Batch normalisation on views of a `[batch, channels, inner]` layout; the running statistics
  /// are updated in place when training.
  package static func batchNormForward(
    _ x: UnsafeBufferPointer<Float>, batch: Int, channels: Int, inner: Int, weight: UnsafeBufferPointer<Float>,
    bias: UnsafeBufferPointer<Float>, runningMean: UnsafeMutableBufferPointer<Float>, runningVar: UnsafeMutableBufferPointer<Float>,
    eps: Float, momentum: Float, training: Bool, into y: UnsafeMutableBufferPointer<Float>, normalized: UnsafeMutableBufferPointer<Float>,
    inverseStd: UnsafeMutableBufferPointer<Float>
  ) {
    let n = batch * inner
    for c in 0..<channels {
      var mean: Float, variance: Float
      if training {
        var sum: Float = 0
        for b in 0..<batch { for l in 0..<inner { sum += x[(b * channels + c) * inner + l] } }
        mean = sum / Float(n)
        var squares: Float = 0
        for b in 0..<batch {
          for l in 0..<inner {
            let d = x[(b * channels + c) * inner + l] - mean
            squares += d * d
          }
        }
        variance = squares / Float(n)
        if n > 1 {
          runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean
          runningVar[c] = (1 - momentum) * runningVar[c] + momentum * (squares / Float(n - 1))
        }
      } else {
        mean = runningMean[c]
        variance = runningVar[c]
      }
      let inv = 1 / (variance + eps).squareRoot()
      inverseStd[c] = inv
      for b in 0..<batch {
        for l in 0..<inner {
          let i = (b * channels + c) * inner + l
          let v = (x[i] - mean) * inv
          normalized[i] = v
          y[i] = v * weight[c] + bias[c]
        }
      }
    }
  }

  /// The training-mode backward pass of batch normalisation (the layer-norm formula per channel
  /// over its B·L values).
  public static func batchNormBackward(_ dy: Tensor, cache: NormCache, weight: Tensor) -> (input: Tensor, weight: Tensor, bias: Tensor) {
    let (batch, channels, inner) = channelLayout(dy.shape)
    var dx = [Float](repeating: 0, count: dy.count)
    var dw = [Float](repeating: 0, count: channels), db = dw
    withViews(dy.scalars, cache.normalized, cache.inverseStd) { dy, normalized, inverseStd in
      weight.scalars.withUnsafeBufferPointer { weight in
        withMutableViews(&dx, &dw, &db) { dx, dw, db in
          batchNormBackward(
            dy, batch: batch, inner: inner, normalized: normalized, inverseStd: inverseStd, weight: weight, into: dx, weightGradient: dw,
            biasGradient: db)
        }
      }
    }
    return (Tensor(shape: dy.shape, scalars: dx), Tensor(shape: weight.shape, scalars: dw), Tensor(shape: weight.shape, scalars: db))
  }

  /// The batch-norm backward pass on views; `dx` may be `dy` itself, dγ and dβ are overwritten.
  package static func batchNormBackward(
    _ dy: UnsafeBufferPointer<Float>, batch: Int, inner: Int, normalized: UnsafeBufferPointer<Float>,
    inverseStd: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>, into dx: UnsafeMutableBufferPointer<Float>,
    weightGradient dw: UnsafeMutableBufferPointer<Float>, biasGradient db: UnsafeMutableBufferPointer<Float>
  ) {
    let channels = weight.count
    let n = Float(batch * inner)
    for c in 0..<channels {
      var sumG: Float = 0, sumGX: Float = 0, sumW: Float = 0, sumB: Float = 0
      for b in 0..<batch {
        for l in 0..<inner {
          let i = (b * channels + c) * inner + l
          let gh = dy[i] * weight[c]
          sumG += gh
          sumGX += gh * normalized[i]
          sumW += dy[i] * normalized[i]
          sumB += dy[i]
        }
      }
      (dw[c], db[c]) = (sumW, sumB)
      let scale = inverseStd[c] / n
      for b in 0..<batch {
        for l in 0..<inner {
          let i = (b * channels + c) * inner + l
          dx[i] = scale * (n * dy[i] * weight[c] - sumG - normalized[i] * sumGX)
        }
      }
    }
  }

  // MARK: dropout

  /// Inverted dropout: each element is kept when a uniform drawn from `generator` (in row-major
  /// order) is ≥ rate, and scaled by 1/(1 − rate). Returns the output and the scale per element
  /// (0 or 1/(1 − rate)) for the backward pass. Rate 0 draws nothing.
  public static func dropoutForward(_ x: Tensor, rate: Float, generator: inout SplitMix64) -> (Tensor, [Float]) {
    var y = [Float](repeating: 0, count: x.count), mask = y
    x.scalars.withUnsafeBufferPointer { x in
      withMutableViews(&y, &mask) { y, mask in dropoutForward(x, rate: rate, generator: &generator, into: y, mask: mask) }
    }
    return (Tensor(shape: x.shape, scalars: y), mask)
  }

  /// Dropout with a mask drawn before (the step's mask, for a rule that evaluates its objective
  /// again): where the mask is 0 the output is 0, elsewhere `x · mask` — the bits of the pass
  /// that drew it.
  public static func dropoutForward(_ x: Tensor, mask: [Float]) -> Tensor {
    precondition(mask.count == x.count, "a mask of \(mask.count) values for \(x.count)")
    return Tensor(shape: x.shape, scalars: zip(x.scalars, mask).map { $1 == 0 ? 0 : $0 * $1 })
  }

  /// Inverted dropout on views (`y` may be `x` itself).
  package static func dropoutForward(
    _ x: UnsafeBufferPointer<Float>, rate: Float, generator: inout SplitMix64, into y: UnsafeMutableBufferPointer<Float>,
    mask: UnsafeMutableBufferPointer<Float>
  ) {
    guard rate > 0 else {
      for i in 0..<x.count { (y[i], mask[i]) = (x[i], 1) }
      return
    }
    let keepScale = 1 / (1 - rate)
    for i in 0..<x.count {
      let keep = generator.nextUniform() >= rate
      mask[i] = keep ? keepScale : 0
      y[i] = keep ? x[i] * keepScale : 0
    }
  }

  // MARK: views

  /// Read-only views of three arrays at once.
  static func withViews<R>(
    _ a: [Float], _ b: [Float], _ c: [Float],
    _ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) -> R
  ) -> R {
    a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in c.withUnsafeBufferPointer { c in body(a, b, c) } } }
  }

  /// Writable views of two arrays at once.
  static func withMutableViews<R>(
    _ a: inout [Float], _ b: inout [Float], _ body: (UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> R
  ) -> R {
    a.withUnsafeMutableBufferPointer { a in b.withUnsafeMutableBufferPointer { b in body(a, b) } }
  }

  /// Writable views of three arrays at once.
  static func withMutableViews<R>(
    _ a: inout [Float], _ b: inout [Float], _ c: inout [Float],
    _ body: (UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> R
  ) -> R {
    a.withUnsafeMutableBufferPointer { a in withMutableViews(&b, &c) { b, c in body(a, b, c) } }
  }
}
