import SpecKit
import TensorCore

/// Float memory the fast trainer owns: zeroed buffers allocated when the trainer is built and
/// freed with it, so that the step loop allocates nothing.
final class Arena {
  private var blocks: [UnsafeMutableRawPointer] = []

  /// `count` zeroed floats that live as long as the arena.
  func floats(_ count: Int) -> UnsafeMutableBufferPointer<Float> { zeroed(count, 0) }

  /// `count` zeroed integers that live as long as the arena.
  func integers(_ count: Int) -> UnsafeMutableBufferPointer<Int> { zeroed(count, 0) }

  /// `count` zeroed 32-bit integers that live as long as the arena.
  func int32s(_ count: Int) -> UnsafeMutableBufferPointer<Int32> { zeroed(count, 0) }

  private func zeroed<T: BitwiseCopyable>(_ count: Int, _ zero: T) -> UnsafeMutableBufferPointer<T> {
    let block = UnsafeMutableBufferPointer<T>.allocate(capacity: max(count, 1))
    block.initialize(repeating: zero)
    blocks.append(UnsafeMutableRawPointer(block.baseAddress!))
    return UnsafeMutableBufferPointer(start: block.baseAddress, count: count)
  }

  deinit { for block in blocks { block.deallocate() } }
}

/// One step of the fast trainer's plan: a layer with its parameters and buffers by index and its
/// sizes per sample.
enum FastStage {
  case dense(weight: Int, bias: Int?, inputs: Int, outputs: Int, activation: Activation)
  /// `lastAxis`: the row width softmax acts on.
  case activation(Activation, lastAxis: Int)
  case dropout(rate: Float)
  case flatten
  case layerNorm(weight: Int, bias: Int, eps: Float, features: Int)
  case batchNorm(weight: Int, bias: Int, mean: Int, variance: Int, eps: Float, momentum: Float, channels: Int, inner: Int)
  /// A convolution lowered to matrix products (im2col + sgemm), then bias and activation.
  case conv2d(weight: Int, bias: Int?, geometry: ImageGeometry, filters: Int, groups: Int, activation: Activation)
  case maxPool(ImageGeometry)
  case avgPool(ImageGeometry)
  case globalAvgPool(channels: Int, inner: Int)
  case reshape

  /// Whether its output may share its input's memory (the values pass through unchanged).
  var passesThrough: Bool {
    switch self {
    case .flatten, .reshape: true
    default: false
    }
  }

  /// The most samples a convolution lowers at once: their columns and products stay within
  /// 4 Mi floats (16 MiB), however large the batch (one sample at least).
  static let loweringBudget = 1 << 22

  /// A convolution's rows per lowering block, and the floats its columns and products need.
  static func lowering(_ geometry: ImageGeometry, filters: Int, groups: Int, capacity: Int) -> (block: Int, columns: Int, product: Int) {
    let rows = (geometry.channels / groups) * geometry.kernelSize * groups
    let perSample = max(rows, filters) * geometry.outputPlane
    let block = max(1, min(capacity, loweringBudget / max(1, perSample)))
    return (block, rows * geometry.outputPlane * block, filters * geometry.outputPlane * block)
  }
}

/// The activations, caches and gradients of one forward and backward pass for up to `capacity`
/// samples, allocated once.
final class FastWorkspace {
  let capacity: Int
  let arena = Arena()
  /// The batch's inputs, `[capacity, input width]`.
  let input: UnsafeMutableBufferPointer<Float>
  /// Each stage's output (a flatten's is its input's memory).
  var outputs: [UnsafeMutableBufferPointer<Float>] = []
  /// The last stage's output (the model's).
  var output: UnsafeMutableBufferPointer<Float> { outputs.last ?? input }
  /// Dense stages with an activation: the values before it.
  var preActivations: [UnsafeMutableBufferPointer<Float>?] = []
  /// Dropout stages: the kept-and-scaled mask. Normalisation stages: x̂ and 1/σ.
  var masks: [UnsafeMutableBufferPointer<Float>?] = []
  var normalized: [UnsafeMutableBufferPointer<Float>?] = []
  var inverseStd: [UnsafeMutableBufferPointer<Float>?] = []
  /// Max-pool stages: the index in its sample of the input each output chose.
  var argmax: [UnsafeMutableBufferPointer<Int32>?] = []
  /// The convolutions' lowering: the columns of a block of samples and their product with the
  /// weights (shared by every convolution; sized for the largest).
  let columns: UnsafeMutableBufferPointer<Float>
  let product: UnsafeMutableBufferPointer<Float>
  /// The second core's columns and product, and the weight gradient of its half of a batch
  /// (sized for the largest convolution weight).
  let otherColumns: UnsafeMutableBufferPointer<Float>
  let otherProduct: UnsafeMutableBufferPointer<Float>
  let otherWeightGradient: UnsafeMutableBufferPointer<Float>
  /// Two gradient buffers the backward pass alternates between, as wide as the widest layer.
  let gradient: UnsafeMutableBufferPointer<Float>
  let otherGradient: UnsafeMutableBufferPointer<Float>
  /// Where the small-product kernels transpose a dense layer's weight for its forward product
  /// (`Products.scratch`), sized for the largest that needs it at this capacity.
  let productScratch: UnsafeMutableBufferPointer<Float>
  /// The batch's targets: class indices, or values.
  let labels: UnsafeMutableBufferPointer<Int>
  let targetValues: UnsafeMutableBufferPointer<Float>

  init(stages: [FastStage], widths: [Int], targetWidth: Int, capacity: Int) {
    // widths[0] is the input's per-sample width, widths[i + 1] stage i's output width.
    self.capacity = capacity
    var columnFloats = 0, productFloats = 0, weightFloats = 0, scratchFloats = 0
    input = arena.floats(capacity * widths[0])
    var previous = input
    for (index, stage) in stages.enumerated() {
      let width = widths[index + 1]
      let output = stage.passesThrough ? previous : arena.floats(capacity * width)
      outputs.append(output)
      previous = output
      switch stage {
      case .dense(_, _, _, _, let activation), .conv2d(_, _, _, _, _, let activation):
        preActivations.append(activation == .identity ? nil : arena.floats(capacity * width))
      default: preActivations.append(nil)
      }
      if case .dense(_, _, let inputs, let outputs, _) = stage {
        // Any batch up to the capacity (the last of an epoch may be smaller): the scratch is the
        // weight's size whenever it is needed, and fewer rows make a product smaller, so the
        // fewest rows that can need it (32, or the capacity) say whether any batch will.
        scratchFloats = max(
          scratchFloats, Products.scratch(transposeA: false, transposeB: true, m: min(capacity, 32), n: outputs, k: inputs))
      }
      if case .maxPool = stage { argmax.append(arena.int32s(capacity * width)) } else { argmax.append(nil) }
      if case .conv2d(_, _, let geometry, let filters, let groups, _) = stage {
        let need = FastStage.lowering(geometry, filters: filters, groups: groups, capacity: capacity)
        (columnFloats, productFloats) = (max(columnFloats, need.columns), max(productFloats, need.product))
        weightFloats = max(weightFloats, filters * (geometry.channels / groups) * geometry.kernelSize)
      }
      if case .dropout = stage { masks.append(arena.floats(capacity * width)) } else { masks.append(nil) }
      switch stage {
      case .layerNorm(_, _, _, let features):
        normalized.append(arena.floats(capacity * width))
        inverseStd.append(arena.floats(capacity * width / features))
      case .batchNorm(_, _, _, _, _, _, let channels, _):
        normalized.append(arena.floats(capacity * width))
        inverseStd.append(arena.floats(channels))
      default:
        normalized.append(nil)
        inverseStd.append(nil)
      }
    }
    columns = arena.floats(columnFloats)
    product = arena.floats(productFloats)
    let split = capacity >= 2 && columnFloats > 0
    otherColumns = arena.floats(split ? columnFloats : 0)
    otherProduct = arena.floats(split ? productFloats : 0)
    otherWeightGradient = arena.floats(split ? weightFloats : 0)
    let widest = widths.max()!
    gradient = arena.floats(capacity * widest)
    otherGradient = arena.floats(capacity * widest)
    productScratch = arena.floats(scratchFloats)
    labels = arena.integers(capacity)
    targetValues = arena.floats(capacity * targetWidth)
  }
}
