import CFastKernels
import Dispatch
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
        Products.gemm(
          x.baseAddress!, transposeA: false, parameters[weight].values.baseAddress!, transposeB: true, into: z.baseAddress!, m: rows,
          n: outputs, k: inputs, accumulate: false, scratch: space.productScratch)
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
      case .conv2d(let weight, let bias, let geometry, let filters, let groups, let activation):
        let z = space.preActivations[index].map { prefix($0, y.count) } ?? y
        convolve(x, rows: rows, weight: weight, bias: bias, geometry: geometry, filters: filters, groups: groups, space: space, into: z)
        if activation != .identity { activation.forward(UnsafeBufferPointer(z), into: y, width: geometry.outputWidth) }
      case .maxPool(let geometry):
        ImageMath.maxPoolForward(x, rows: rows, geometry: geometry, into: y, argmax: space.argmax[index]!)
      case .avgPool(let geometry):
        ImageMath.avgPoolForward(x, rows: rows, geometry: geometry, into: y)
      case .globalAvgPool(let channels, let inner):
        ImageMath.globalAvgPoolForward(x, rows: rows, channels: channels, inner: inner, into: y)
      case .reshape:
        break
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
        Products.gemm(
          g.baseAddress!, transposeA: true, x.baseAddress!, transposeB: false, into: w.gradient.baseAddress!, m: outputs, n: inputs,
          k: rows, accumulate: false)
        if index > 0 {
          let dx = prefix(spare, rows * inputs)
          Products.gemm(
            g.baseAddress!, transposeA: false, w.values.baseAddress!, transposeB: false, into: dx.baseAddress!, m: rows, n: inputs,
            k: outputs, accumulate: false)
          (spare, g) = (g, dx)
        }
      case .activation(let function, let lastAxis):
        function.backward(input: x, output: y, gradient: UnsafeBufferPointer(g), into: g, width: lastAxis)
      case .dropout:
        let mask = space.masks[index]!
        for i in 0..<g.count { g[i] *= mask[i] }
      case .flatten, .reshape:
        break
      case .conv2d(let weight, let bias, let geometry, let filters, let groups, let activation):
        let z = space.preActivations[index].map { UnsafeBufferPointer(prefix($0, y.count)) } ?? y
        if activation != .identity {
          activation.backward(input: z, output: y, gradient: UnsafeBufferPointer(g), into: g, width: geometry.outputWidth)
        }
        let dx = index > 0 ? prefix(spare, rows * geometry.inputSize) : nil
        convolutionGradients(
          g, input: x, rows: rows, weight: weight, bias: bias, geometry: geometry, filters: filters, groups: groups, space: space, into: dx)
        if let dx { (spare, g) = (g, dx) }
      case .maxPool(let geometry):
        let dx = prefix(spare, rows * geometry.inputSize)
        ImageMath.maxPoolBackward(
          UnsafeBufferPointer(g), rows: rows, geometry: geometry, argmax: UnsafeBufferPointer(space.argmax[index]!), into: dx)
        (spare, g) = (g, dx)
      case .avgPool(let geometry):
        let dx = prefix(spare, rows * geometry.inputSize)
        ImageMath.avgPoolBackward(UnsafeBufferPointer(g), rows: rows, geometry: geometry, into: dx)
        (spare, g) = (g, dx)
      case .globalAvgPool(let channels, let inner):
        let dx = prefix(spare, rows * channels * inner)
        ImageMath.globalAvgPoolBackward(UnsafeBufferPointer(g), rows: rows, channels: channels, inner: inner, into: dx)
        (spare, g) = (g, dx)
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

  /// The samples of a convolution split between the two cores: two halves when the batch is
  /// large enough to pay for the hand-over (from about a million multiply-adds), one part
  /// otherwise.
  static func convolutionParts(rows: Int, geometry g: ImageGeometry, filters: Int, groups: Int) -> (
    count: Int, first: Range<Int>, second: Range<Int>
  ) {
    let work = rows * g.outputPlane * filters * (g.channels / groups) * g.kernelSize
    guard rows >= 2, work >= 1 << 20 else { return (1, 0..<rows, rows..<rows) }
    return (2, 0..<rows / 2, rows / 2..<rows)
  }

  /// Runs a convolution's job: on both cores when it has two parts (OpenBLAS then runs each
  /// part's products on one thread, so that the halves do not fight over its threads; its
  /// thread count is put back when no other trainer's job still needs one), else here.
  func run(_ job: inout ConvolutionJob) {
    guard job.parts == 2 else {
      ConvolutionJob.part(job, 0)
      return
    }
    specbench_blas_single_begin()
    cores.run(ConvolutionJob.work, on: &job)
    specbench_blas_single_end()
  }

  /// A convolution of `rows` samples into `z` `[rows, O, OH, OW]` with its bias: in blocks of
  /// samples, each block's columns (im2col) multiplied by each group's weights in one sgemm
  /// `[O/groups, K] × [K, block·OH·OW]`, then moved to the samples' layout with the bias added;
  /// each half of a large batch on its own core, with its own columns.
  func convolve(
    _ x: UnsafeBufferPointer<Float>, rows: Int, weight: Int, bias: Int?, geometry g: ImageGeometry, filters: Int, groups: Int,
    space: FastWorkspace, into z: UnsafeMutableBufferPointer<Float>
  ) {
    let parts = Self.convolutionParts(rows: rows, geometry: g, filters: filters, groups: groups)
    var job = ConvolutionJob(
      backward: false, geometry: g, filters: filters, groups: groups,
      block: FastStage.lowering(g, filters: filters, groups: groups, capacity: space.capacity).block, parts: parts.count,
      first: parts.first, second: parts.second, x: x, weights: UnsafeBufferPointer(parameters[weight].values),
      bias: bias.map { UnsafeBufferPointer(parameters[$0].values) }, z: z, columns: (space.columns, space.otherColumns),
      products: (space.product, space.otherProduct), weightGradients: (space.otherWeightGradient, space.otherWeightGradient), dx: nil)
    run(&job)
  }

  /// A convolution's gradients for dz `[rows, O, OH, OW]`: the bias's sums, the weight's
  /// `dZ·columnsᵀ` per group (accumulated over the blocks; each core's half into its own buffer,
  /// added once both are done), and, when `dx` is given, the columns' gradient `Wᵀ·dZ` put back
  /// onto the input (col2im).
  func convolutionGradients(
    _ dz: UnsafeMutableBufferPointer<Float>, input x: UnsafeBufferPointer<Float>, rows: Int, weight: Int, bias: Int?,
    geometry g: ImageGeometry, filters: Int, groups: Int, space: FastWorkspace, into dx: UnsafeMutableBufferPointer<Float>?
  ) {
    let plane = g.outputPlane
    let w = parameters[weight]
    if let bias {
      let db = parameters[bias].gradient
      db.update(repeating: 0)
      for s in 0..<rows {
        for o in 0..<filters {
          let line = dz.baseAddress! + (s * filters + o) * plane
          var sum: Float = 0
          for p in 0..<plane { sum += line[p] }
          db[o] += sum
        }
      }
    }
    dx?.update(repeating: 0)
    let parts = Self.convolutionParts(rows: rows, geometry: g, filters: filters, groups: groups)
    var job = ConvolutionJob(
      backward: true, geometry: g, filters: filters, groups: groups,
      block: FastStage.lowering(g, filters: filters, groups: groups, capacity: space.capacity).block, parts: parts.count,
      first: parts.first, second: parts.second, x: x, weights: UnsafeBufferPointer(w.values), bias: nil, z: dz,
      columns: (space.columns, space.otherColumns), products: (space.product, space.otherProduct),
      weightGradients: (w.gradient, space.otherWeightGradient), dx: dx)
    run(&job)
    if parts.count == 2 {
      let (mine, other) = (w.gradient, space.otherWeightGradient)
      for i in 0..<mine.count { mine[i] += other[i] }
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

/// One convolution pass over a range of samples, in one or two parts: what the two cores share,
/// as a value on the caller's stack (see `CorePair`).
// @unchecked: the parts read the same inputs and weights and write disjoint samples of the
// output (and of dx), each its own columns, product and weight gradient; both finish before
// `CorePair.run` returns, while the trainer and workspace that own the memory are alive.
struct ConvolutionJob: @unchecked Sendable {
  /// The first core's buffer, then the second's.
  typealias Pair = (UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>)
  var backward: Bool
  var geometry: ImageGeometry
  var filters: Int
  var groups: Int
  var block: Int
  var parts: Int
  var first: Range<Int>
  var second: Range<Int>
  var x: UnsafeBufferPointer<Float>
  var weights: UnsafeBufferPointer<Float>
  var bias: UnsafeBufferPointer<Float>?
  /// The output (forward) or its gradient (backward).
  var z: UnsafeMutableBufferPointer<Float>
  var columns: Pair
  var products: Pair
  var weightGradients: Pair
  var dx: UnsafeMutableBufferPointer<Float>?

  static func pick(_ pair: Pair, _ index: Int) -> UnsafeMutablePointer<Float> { (index == 0 ? pair.0 : pair.1).baseAddress! }

  /// The job at a context pointer, part `index`.
  static let work: CorePair.Work = { context, index in
    part(context!.assumingMemoryBound(to: ConvolutionJob.self).pointee, index)
  }

  /// Part `index` of the job: its range of samples, in blocks.
  static func part(_ job: ConvolutionJob, _ index: Int) {
    let range = index == 0 ? job.first : job.second
    let g = job.geometry
    let (plane, groupRows, groupFilters) = (g.outputPlane, (g.channels / job.groups) * g.kernelSize, job.filters / job.groups)
    let (columns, product) = (pick(job.columns, index), pick(job.products, index))
    for first in stride(from: range.lowerBound, to: range.upperBound, by: job.block) {
      let count = min(job.block, range.upperBound - first)
      let width = count * plane
      for s in 0..<count {
        ImageMath.im2col(
          job.x.baseAddress! + (first + s) * g.inputSize, geometry: g, firstChannel: 0, channels: g.channels, into: columns + s * plane,
          rowStride: width)
        if job.backward {
          for o in 0..<job.filters {
            (product + o * width + s * plane).update(from: job.z.baseAddress! + ((first + s) * job.filters + o) * plane, count: plane)
          }
        }
      }
      for group in 0..<job.groups {
        let groupWeights = job.weights.baseAddress! + group * groupFilters * groupRows
        let groupColumns = columns + group * groupRows * width
        let groupProduct = product + group * groupFilters * width
        if !job.backward {
          Products.gemm(
            groupWeights, transposeA: false, groupColumns, transposeB: false, into: groupProduct, m: groupFilters, n: width, k: groupRows,
            accumulate: false)
          continue
        }
        Products.gemm(
          groupProduct, transposeA: false, groupColumns, transposeB: true,
          into: pick(job.weightGradients, index) + group * groupFilters * groupRows,
          m: groupFilters, n: groupRows, k: width, accumulate: first > range.lowerBound)
        if job.dx != nil {
          // The columns are no longer needed: their gradient takes their place.
          Products.gemm(
            groupWeights, transposeA: true, groupProduct, transposeB: false, into: groupColumns, m: groupRows, n: width, k: groupFilters,
            accumulate: false)
        }
      }
      if job.backward, let dx = job.dx {
        for s in 0..<count {
          ImageMath.col2im(
            columns + s * plane, geometry: g, firstChannel: 0, channels: g.channels, into: dx.baseAddress! + (first + s) * g.inputSize,
            rowStride: width)
        }
      } else if !job.backward {
        for s in 0..<count {
          for o in 0..<job.filters {
            let source = product + o * width + s * plane
            let target = job.z.baseAddress! + ((first + s) * job.filters + o) * plane
            let shift = job.bias?[o] ?? 0
            for p in 0..<plane { target[p] = source[p] + shift }
          }
        }
      }
    }
  }
}
