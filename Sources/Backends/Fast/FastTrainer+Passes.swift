import CFastKernels
import SpecKit
import TensorCore

/// The forward and backward passes over the workspace's buffers.
extension FastTrainer {
  /// Runs the stages on the first `rows` samples of the workspace's input. In training mode,
  /// dropout draws from the trainer's generator (or, with `reuseMasks`, applies the masks the
  /// step's first evaluation drew) and batch_norm updates its running statistics.
  func forward(_ space: FastWorkspace, rows: Int, training: Bool, reuseMasks: Bool = false) {
    var x = UnsafeBufferPointer(prefix(space.input, rows * widths[0]))
    for (index, stage) in stages.enumerated() {
      let y = prefix(space.outputs[index], rows * widths[index + 1])
      switch stage {
      case .dense(let weight, let bias, let inputs, let outputs, let activation):
        let z = space.preActivations[index].map { prefix($0, y.count) } ?? y
        BLASKernels.gemm(
          x.baseAddress!, transposeA: false, parameters[weight].values.baseAddress!, transposeB: true, into: z.baseAddress!, m: rows,
          n: outputs, k: inputs, accumulate: false)
        Self.biasAndActivation(z, bias: bias.map { UnsafeBufferPointer(parameters[$0].values) }, activation, into: y, width: outputs)
      case .activation(let function, let lastAxis):
        function.forward(x, into: y, width: lastAxis)
      case .dropout(let rate):
        if training && reuseMasks {
          let mask = space.masks[index]!
          for i in 0..<y.count { y[i] = mask[i] == 0 ? 0 : x[i] * mask[i] }
        } else if training {
          LayerMath.dropoutForward(x, rate: rate, generator: &progress.dropout, into: y, mask: prefix(space.masks[index]!, y.count))
        } else {
          _ = y.update(fromContentsOf: x)
        }
      case .flatten:
        break
      case .layerNorm(let weight, let bias, let eps, let features):
        LayerMath.layerNormForward(
          x, features: features, weight: UnsafeBufferPointer(parameters[weight].values), bias: UnsafeBufferPointer(parameters[bias].values),
          eps: eps, into: y, normalized: space.normalized[index]!, inverseStd: space.inverseStd[index]!)
      case .batchNorm(let weight, let bias, let mean, let variance, let eps, let momentum, let channels, let inner):
        LayerMath.batchNormForward(
          x, batch: rows, channels: channels, inner: inner, weight: UnsafeBufferPointer(parameters[weight].values),
          bias: UnsafeBufferPointer(parameters[bias].values), runningMean: buffers[mean].values, runningVar: buffers[variance].values,
          eps: eps, momentum: momentum, training: training, into: y, normalized: space.normalized[index]!,
          inverseStd: space.inverseStd[index]!)
      }
      x = UnsafeBufferPointer(y)
    }
  }

  /// `z += bias` per row and `y = f(z)` in one pass (z and y are the same memory without an
  /// activation); softmax normalises each row after the bias is added. Bias alone and bias +
  /// ReLU (the common case) run in the C kernels, at the CPU's vector width.
  static func biasAndActivation(
    _ z: UnsafeMutableBufferPointer<Float>, bias: UnsafeBufferPointer<Float>?, _ activation: Activation,
    into y: UnsafeMutableBufferPointer<Float>, width: Int
  ) {
    let rows = z.count / max(1, width)
    switch (bias, activation) {
    case (nil, .identity): return
    case (let bias?, .identity):
      specbench_bias_add(z.baseAddress, bias.baseAddress, rows, width)
    case (let bias, .relu):
      specbench_bias_relu(z.baseAddress, bias?.baseAddress, y.baseAddress, rows, width)
    case (let bias, .softmax):
      if let bias { specbench_bias_add(z.baseAddress, bias.baseAddress, rows, width) }
      Activation.softmaxRows(UnsafeBufferPointer(z), rows: rows, width: width, into: y)
    case (let bias, _):
      for r in 0..<rows {
        for j in 0..<width {
          let v = z[r * width + j] + (bias?[j] ?? 0)
          z[r * width + j] = v
          y[r * width + j] = activation.value(v)
        }
      }
    }
  }

  /// The gradients of every parameter (into their gradient buffers) from the loss gradient in
  /// the workspace, for the batch of `rows` the last forward pass ran on.
  func backward(_ space: FastWorkspace, rows: Int) {
    var g = prefix(space.gradient, rows * widths.last!)
    var spare = space.otherGradient
    for (index, stage) in stages.enumerated().reversed() {
      let x = UnsafeBufferPointer(prefix(index == 0 ? space.input : space.outputs[index - 1], rows * widths[index]))
      let y = UnsafeBufferPointer(prefix(space.outputs[index], rows * widths[index + 1]))
      switch stage {
      case .dense(let weight, let bias, let inputs, let outputs, let activation):
        // dz in place of g, with the bias gradient summed in the same pass where it can be.
        let z = space.preActivations[index].map { UnsafeBufferPointer(prefix($0, y.count)) } ?? y
        let biasGradient = bias.map { parameters[$0].gradient }
        Self.activationGradient(g, z: z, y: y, activation, biasGradient: biasGradient, width: outputs)
        let w = parameters[weight]
        BLASKernels.gemm(
          g.baseAddress!, transposeA: true, x.baseAddress!, transposeB: false, into: w.gradient.baseAddress!, m: outputs, n: inputs,
          k: rows, accumulate: false)
        if index > 0 {
          let dx = prefix(spare, rows * inputs)
          BLASKernels.gemm(
            g.baseAddress!, transposeA: false, w.values.baseAddress!, transposeB: false, into: dx.baseAddress!, m: rows, n: inputs,
            k: outputs, accumulate: false)
          (spare, g) = (g, dx)
        }
      case .activation(let function, let lastAxis):
        function.backward(input: x, output: y, gradient: UnsafeBufferPointer(g), into: g, width: lastAxis)
      case .dropout:
        let mask = space.masks[index]!
        for i in 0..<g.count { g[i] *= mask[i] }
      case .flatten:
        break
      case .layerNorm(let weight, let bias, _, _):
        LayerMath.layerNormBackward(
          UnsafeBufferPointer(g), normalized: UnsafeBufferPointer(prefix(space.normalized[index]!, g.count)),
          inverseStd: UnsafeBufferPointer(space.inverseStd[index]!), weight: UnsafeBufferPointer(parameters[weight].values), into: g,
          weightGradient: parameters[weight].gradient, biasGradient: parameters[bias].gradient)
      case .batchNorm(let weight, let bias, _, _, _, _, _, let inner):
        LayerMath.batchNormBackward(
          UnsafeBufferPointer(g), batch: rows, inner: inner, normalized: UnsafeBufferPointer(prefix(space.normalized[index]!, g.count)),
          inverseStd: UnsafeBufferPointer(space.inverseStd[index]!), weight: UnsafeBufferPointer(parameters[weight].values), into: g,
          weightGradient: parameters[weight].gradient, biasGradient: parameters[bias].gradient)
      }
    }
  }

  /// dz = g·f′(z) in place of g (softmax: through its output y), and the bias gradient Σ_rows dz.
  static func activationGradient(
    _ g: UnsafeMutableBufferPointer<Float>, z: UnsafeBufferPointer<Float>, y: UnsafeBufferPointer<Float>, _ activation: Activation,
    biasGradient: UnsafeMutableBufferPointer<Float>?, width: Int
  ) {
    let rows = g.count / max(1, width)
    if activation == .relu {
      specbench_relu_backward(g.baseAddress, z.baseAddress, biasGradient?.baseAddress, rows, width)
      return
    }
    if activation != .identity { activation.backward(input: z, output: y, gradient: UnsafeBufferPointer(g), into: g, width: width) }
    guard let biasGradient else { return }
    specbench_bias_gradient(g.baseAddress, biasGradient.baseAddress, rows, width)
  }
}
