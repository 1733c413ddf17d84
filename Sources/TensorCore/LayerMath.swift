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
    let groups = x.count / features
    var y = [Float](repeating: 0, count: x.count)
    var normalized = [Float](repeating: 0, count: x.count)
    var inverseStd = [Float](repeating: 0, count: groups)
    for g in 0..<groups {
      let base = g * features
      var mean: Float = 0
      for j in 0..<features { mean += x.scalars[base + j] }
      mean /= Float(features)
      var variance: Float = 0
      for j in 0..<features {
        let d = x.scalars[base + j] - mean
        variance += d * d
      }
      variance /= Float(features)
      let inv = 1 / (variance + eps).squareRoot()
      inverseStd[g] = inv
      for j in 0..<features {
        let n = (x.scalars[base + j] - mean) * inv
        normalized[base + j] = n
        y[base + j] = n * weight.scalars[j] + bias.scalars[j]
      }
    }
    return (Tensor(shape: x.shape, scalars: y), NormCache(normalized: normalized, inverseStd: inverseStd))
  }

  /// dx = (inv/F)·(F·ĝ − Σĝ − x̂·Σ(ĝ·x̂)) with ĝ = dy·γ; dγ = Σ dy·x̂; dβ = Σ dy.
  public static func layerNormBackward(_ dy: Tensor, cache: NormCache, weight: Tensor) -> (input: Tensor, weight: Tensor, bias: Tensor) {
    let features = weight.count
    let groups = dy.count / features
    var dx = [Float](repeating: 0, count: dy.count)
    var dw = [Float](repeating: 0, count: features)
    var db = [Float](repeating: 0, count: features)
    for g in 0..<groups {
      let base = g * features
      var sumG: Float = 0, sumGX: Float = 0
      for j in 0..<features {
        let gh = dy.scalars[base + j] * weight.scalars[j]
        sumG += gh
        sumGX += gh * cache.normalized[base + j]
        dw[j] += dy.scalars[base + j] * cache.normalized[base + j]
        db[j] += dy.scalars[base + j]
      }
      let scale = cache.inverseStd[g] / Float(features)
      for j in 0..<features {
        let gh = dy.scalars[base + j] * weight.scalars[j]
        dx[base + j] = scale * (Float(features) * gh - sumG - cache.normalized[base + j] * sumGX)
      }
    }
    return (Tensor(shape: dy.shape, scalars: dx), Tensor(shape: weight.shape, scalars: dw), Tensor(shape: weight.shape, scalars: db))
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
    let n = batch * inner
    var y = [Float](repeating: 0, count: x.count)
    var normalized = [Float](repeating: 0, count: x.count)
    var inverseStd = [Float](repeating: 0, count: channels)
    for c in 0..<channels {
      var mean: Float, variance: Float
      if training {
        var sum: Float = 0
        for b in 0..<batch { for l in 0..<inner { sum += x.scalars[(b * channels + c) * inner + l] } }
        mean = sum / Float(n)
        var squares: Float = 0
        for b in 0..<batch {
          for l in 0..<inner {
            let d = x.scalars[(b * channels + c) * inner + l] - mean
            squares += d * d
          }
        }
        variance = squares / Float(n)
        if n > 1 {
          runningMean.scalars[c] = (1 - momentum) * runningMean.scalars[c] + momentum * mean
          runningVar.scalars[c] = (1 - momentum) * runningVar.scalars[c] + momentum * (squares / Float(n - 1))
        }
      } else {
        mean = runningMean.scalars[c]
        variance = runningVar.scalars[c]
      }
      let inv = 1 / (variance + eps).squareRoot()
      inverseStd[c] = inv
      for b in 0..<batch {
        for l in 0..<inner {
          let i = (b * channels + c) * inner + l
          let v = (x.scalars[i] - mean) * inv
          normalized[i] = v
          y[i] = v * weight.scalars[c] + bias.scalars[c]
        }
      }
    }
    return (Tensor(shape: x.shape, scalars: y), NormCache(normalized: normalized, inverseStd: inverseStd))
  }

  /// The training-mode backward pass of batch normalisation (the layer-norm formula per channel
  /// over its B·L values).
  public static func batchNormBackward(_ dy: Tensor, cache: NormCache, weight: Tensor) -> (input: Tensor, weight: Tensor, bias: Tensor) {
    let (batch, channels, inner) = channelLayout(dy.shape)
    let n = Float(batch * inner)
    var dx = [Float](repeating: 0, count: dy.count)
    var dw = [Float](repeating: 0, count: channels)
    var db = [Float](repeating: 0, count: channels)
    for c in 0..<channels {
      var sumG: Float = 0, sumGX: Float = 0
      for b in 0..<batch {
        for l in 0..<inner {
          let i = (b * channels + c) * inner + l
          let gh = dy.scalars[i] * weight.scalars[c]
          sumG += gh
          sumGX += gh * cache.normalized[i]
          dw[c] += dy.scalars[i] * cache.normalized[i]
          db[c] += dy.scalars[i]
        }
      }
      let scale = cache.inverseStd[c] / n
      for b in 0..<batch {
        for l in 0..<inner {
          let i = (b * channels + c) * inner + l
          dx[i] = scale * (n * dy.scalars[i] * weight.scalars[c] - sumG - cache.normalized[i] * sumGX)
        }
      }
    }
    return (Tensor(shape: dy.shape, scalars: dx), Tensor(shape: weight.shape, scalars: dw), Tensor(shape: weight.shape, scalars: db))
  }

  // MARK: dropout

  /// Inverted dropout: each element is kept when a uniform drawn from `generator` (in row-major
  /// order) is ≥ rate, and scaled by 1/(1 − rate). Returns the output and the scale per element
  /// (0 or 1/(1 − rate)) for the backward pass. Rate 0 draws nothing.
  public static func dropoutForward(_ x: Tensor, rate: Float, generator: inout SplitMix64) -> (Tensor, [Float]) {
    guard rate > 0 else { return (x, Array(repeating: 1, count: x.count)) }
    let keepScale = 1 / (1 - rate)
    var mask = [Float](repeating: 0, count: x.count)
    var y = [Float](repeating: 0, count: x.count)
    for i in 0..<x.count where generator.nextUniform() >= rate {
      mask[i] = keepScale
      y[i] = x.scalars[i] * keepScale
    }
    return (Tensor(shape: x.shape, scalars: y), mask)
  }
}
