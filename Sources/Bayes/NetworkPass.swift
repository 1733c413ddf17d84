import Backends
import CFastKernels
import SpecKit
import TensorCore

/// A session's network in evaluation mode (dropout off, batch_norm's running statistics) at given
/// weights, with what the posterior needs beyond a forward pass: each sample's gradient of each
/// parameter for an output gradient, kept per sample rather than summed over the batch.
struct NetworkPass {
  let layers: [LayerShape]
  let parameters: [String: Tensor]
  let buffers: [String: Tensor]
  let kernels: any MatrixKernels

  /// What one layer's forward pass kept.
  enum Cache {
    case dense(input: Tensor, preActivation: Tensor, output: Tensor)
    case activation(input: Tensor, output: Tensor)
    case passThrough(inputShape: [Int])
    case layerNorm(LayerMath.NormCache)
    /// batch_norm with the running statistics: x̂ and 1/√(var + eps) per channel.
    case batchNorm(normalized: [Float], inverseStd: [Float], channels: Int, inner: Int)
    case conv2d(input: Tensor, preActivation: Tensor, output: Tensor)
    case maxPool(argmax: [Int32])
  }

  /// Each sample's gradient of one layer's parameters: a dense layer's as its input and its
  /// pre-activation gradient (the weight's is their outer product), a normalisation layer's as is.
  enum Samples {
    case dense(inputs: Tensor, gradients: Tensor)
    case affine(weight: Tensor, bias: Tensor)
  }

  init(spec: SessionSpec, tensors: [String: StoredTensor]) throws(SpecError) {
    layers = try spec.model.layerShapes()
    var parameters: [String: Tensor] = [:], buffers: [String: Tensor] = [:]
    for tensor in layers.flatMap(\.tensors) {
      switch tensor.role {
      case .parameter: parameters[tensor.name] = tensors[StateKey.parameter(tensor.name)]
      case .buffer: buffers[tensor.name] = tensors[StateKey.buffer(tensor.name)]
      }
    }
    self.parameters = parameters
    self.buffers = buffers
    kernels = Self.bestKernels()
  }

  init(layers: [LayerShape], parameters: [String: Tensor], buffers: [String: Tensor]) {
    (self.layers, self.parameters, self.buffers) = (layers, parameters, buffers)
    kernels = Self.bestKernels()
  }

  /// OpenBLAS's products when it loads, the plain loops otherwise.
  static func bestKernels() -> any MatrixKernels { specbench_blas_load() == 1 ? BLASKernels() : PlainKernels() }

  /// The index of the first layer holding a parameter of `layout`: where a backward pass for
  /// its per-sample gradients can stop.
  func firstLayer(of layout: PosteriorLayout) -> Int {
    let names = Set(layout.parameters.map(\.name))
    return layers.firstIndex { $0.tensors.contains { names.contains($0.name) } } ?? 0
  }

  /// The same network with some parameters replaced.
  func with(_ replaced: [String: Tensor]) -> NetworkPass {
    NetworkPass(layers: layers, parameters: parameters.merging(replaced) { _, new in new }, buffers: buffers)
  }

  /// The outputs `[B, out]` (flattened per sample) and the caches of each layer.
  func forward(_ input: Tensor) -> (output: Tensor, caches: [Cache]) {
    var x = input
    var caches: [Cache] = []
    for shape in layers {
      let name = shape.layer.name
      switch shape.layer.kind {
      case .dense(let dense):
        let z = LayerMath.denseForward(
          x.reshaped([x.rows, x.rowWidth]), weight: parameters[name + ".weight"]!, bias: dense.useBias ? parameters[name + ".bias"] : nil,
          kernels: kernels)
        let y = dense.activation == .identity ? z : dense.activation.forward(z)
        caches.append(.dense(input: x.reshaped([x.rows, x.rowWidth]), preActivation: z, output: y))
        x = y
      case .activation(let function):
        let y = function.forward(x)
        caches.append(.activation(input: x, output: y))
        x = y
      case .dropout:
        caches.append(.passThrough(inputShape: x.shape))
      case .flatten:
        caches.append(.passThrough(inputShape: x.shape))
        x = x.reshaped([x.rows, x.rowWidth])
      case .layerNorm(let eps):
        let (y, cache) = LayerMath.layerNormForward(
          x, weight: parameters[name + ".weight"]!, bias: parameters[name + ".bias"]!, eps: Float(eps))
        caches.append(.layerNorm(cache))
        x = y
      case .batchNorm(let eps, _):
        let (batch, channels) = (x.rows, shape.inputShape[0])
        let inner = shape.inputShape.dropFirst().reduce(1, *)
        let (mean, variance) = (buffers[name + ".running_mean"]!.scalars, buffers[name + ".running_var"]!.scalars)
        let (gamma, beta) = (parameters[name + ".weight"]!.scalars, parameters[name + ".bias"]!.scalars)
        let inverse = (0..<channels).map { 1 / (variance[$0] + Float(eps)).squareRoot() }
        var y = x.scalars, normalized = x.scalars
        for b in 0..<batch {
          for c in 0..<channels {
            for l in 0..<inner {
              let i = (b * channels + c) * inner + l
              normalized[i] = (x.scalars[i] - mean[c]) * inverse[c]
              y[i] = normalized[i] * gamma[c] + beta[c]
            }
          }
        }
        caches.append(.batchNorm(normalized: normalized, inverseStd: inverse, channels: channels, inner: inner))
        x = Tensor(shape: x.shape, scalars: y)
      case .conv2d(let conv):
        let input = x.reshaped([x.rows] + shape.inputShape)
        let z = ImageMath.conv2dForward(
          input, weight: parameters[name + ".weight"]!, bias: conv.useBias ? parameters[name + ".bias"] : nil,
          geometry: ImageGeometry(conv.window, input: shape.inputShape), groups: conv.groups)
        let y = conv.activation == .identity ? z : conv.activation.forward(z)
        caches.append(.conv2d(input: input, preActivation: z, output: y))
        x = y
      case .maxPool2d(let pool):
        let (y, argmax) = ImageMath.maxPoolForward(
          x.reshaped([x.rows] + shape.inputShape), geometry: ImageGeometry(pool.window, input: shape.inputShape))
        caches.append(.maxPool(argmax: argmax))
        x = y
      case .avgPool2d(let pool):
        caches.append(.passThrough(inputShape: [x.rows] + shape.inputShape))
        x = ImageMath.avgPoolForward(x.reshaped([x.rows] + shape.inputShape), geometry: ImageGeometry(pool.window, input: shape.inputShape))
      case .globalAvgPool:
        caches.append(.passThrough(inputShape: [x.rows] + shape.inputShape))
        x = ImageMath.globalAvgPoolForward(x.reshaped([x.rows] + shape.inputShape))
      case .reshape:
        caches.append(.passThrough(inputShape: x.shape))
        x = x.reshaped([x.rows] + shape.outputShape)
      }
    }
    return (x.reshaped([x.rows, x.rowWidth]), caches)
  }

  /// Each sample's parameter gradients for the output gradient `outputGradient` `[B, out]` (one
  /// row a sample; no sum over the batch), for the layers at `from…` (the rest of the backward
  /// pass is not run).
  func perSampleGradients(_ outputGradient: Tensor, caches: [Cache], from first: Int) -> [String: Samples] {
    var g = outputGradient
    var result: [String: Samples] = [:]
    for index in stride(from: layers.count - 1, through: first, by: -1) {
      let shape = layers[index]
      let name = shape.layer.name
      switch (shape.layer.kind, caches[index]) {
      case (.dense(let dense), .dense(let input, let z, let y)):
        let dz =
          dense.activation == .identity
          ? g.reshaped(z.shape) : dense.activation.backward(input: z, output: y, gradient: g.reshaped(z.shape))
        result[name] = .dense(inputs: input, gradients: dz)
        if index > first {
          g = Tensor(
            shape: [input.rows, input.rowWidth],
            scalars: kernels.matmul(dz.scalars, parameters[name + ".weight"]!.scalars, m: dz.rows, k: dz.rowWidth, n: input.rowWidth))
        }
      case (.activation(let function), .activation(let input, let output)):
        g = function.backward(input: input, output: output, gradient: g.reshaped(input.shape))
      case (.conv2d(let conv), .conv2d(let input, let z, let y)):
        let dz =
          conv.activation == .identity
          ? g.reshaped(z.shape) : conv.activation.backward(input: z, output: y, gradient: g.reshaped(z.shape))
        let geometry = ImageGeometry(conv.window, input: shape.inputShape)
        let weight = parameters[name + ".weight"]!
        // Each sample's own weight and bias gradients, one sample at a time.
        let (batch, weights, filters) = (input.rows, weight.count, conv.filters)
        var dw = [Float](repeating: 0, count: batch * weights), db = [Float](repeating: 0, count: batch * filters)
        for b in 0..<batch {
          let one = ImageMath.conv2dBackward(
            dz.gatherRows(b..<b + 1), input: input.gatherRows(b..<b + 1), weight: weight, hasBias: true, geometry: geometry,
            groups: conv.groups)
          dw.replaceSubrange(b * weights..<(b + 1) * weights, with: one.weight.scalars)
          db.replaceSubrange(b * filters..<(b + 1) * filters, with: one.bias!.scalars)
        }
        result[name] = .affine(weight: Tensor(shape: [batch, weights], scalars: dw), bias: Tensor(shape: [batch, filters], scalars: db))
        if index > first {
          g = ImageMath.conv2dBackward(dz, input: input, weight: weight, hasBias: false, geometry: geometry, groups: conv.groups).input
        }
      case (.maxPool2d(let pool), .maxPool(let argmax)):
        g = ImageMath.maxPoolBackward(
          g.reshaped([g.rows] + shape.outputShape), geometry: ImageGeometry(pool.window, input: shape.inputShape), argmax: argmax)
      case (.avgPool2d(let pool), .passThrough):
        g = ImageMath.avgPoolBackward(
          g.reshaped([g.rows] + shape.outputShape), geometry: ImageGeometry(pool.window, input: shape.inputShape))
      case (.globalAvgPool, .passThrough(let inputShape)):
        g = ImageMath.globalAvgPoolBackward(g, inputShape: inputShape)
      case (.dropout, .passThrough(let inputShape)), (.flatten, .passThrough(let inputShape)), (.reshape, .passThrough(let inputShape)):
        g = g.reshaped(inputShape)
      case (.layerNorm, .layerNorm(let cache)):
        let features = shape.outputShape.last!
        let batch = g.rows
        let width = g.count / batch
        var dw = [Float](repeating: 0, count: batch * features), db = dw
        for b in 0..<batch {
          for i in 0..<width {
            let j = i % features
            dw[b * features + j] += g.scalars[b * width + i] * cache.normalized[b * width + i]
            db[b * features + j] += g.scalars[b * width + i]
          }
        }
        result[name] = .affine(weight: Tensor(shape: [batch, features], scalars: dw), bias: Tensor(shape: [batch, features], scalars: db))
        if index > first {
          g =
            LayerMath.layerNormBackward(
              g.reshaped(shape.inputShape.count == 1 ? [batch, features] : [batch] + shape.inputShape), cache: cache,
              weight: parameters[name + ".weight"]!
            ).input
        }
      case (.batchNorm, .batchNorm(let normalized, let inverse, let channels, let inner)):
        let batch = g.rows
        let gamma = parameters[name + ".weight"]!.scalars
        var dw = [Float](repeating: 0, count: batch * channels), db = dw
        var dx = g.scalars
        for b in 0..<batch {
          for c in 0..<channels {
            for l in 0..<inner {
              let i = (b * channels + c) * inner + l
              dw[b * channels + c] += g.scalars[i] * normalized[i]
              db[b * channels + c] += g.scalars[i]
              dx[i] = g.scalars[i] * gamma[c] * inverse[c]
            }
          }
        }
        result[name] = .affine(weight: Tensor(shape: [batch, channels], scalars: dw), bias: Tensor(shape: [batch, channels], scalars: db))
        g = Tensor(shape: [batch] + shape.inputShape, scalars: dx)
      default:
        preconditionFailure("cache does not belong to layer \(name)")
      }
    }
    return result
  }
}
