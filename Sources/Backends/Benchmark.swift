import Datasets
import Foundation
import SpecKit
import TensorCore

/// The built-in benchmark: a fixed workload per preset, trained on one backend — warm-up steps,
/// then several timed runs; the median is reported.
public enum Benchmark {
  /// A workload: a model, a batch size, Adam, and seeded random data (normal inputs, uniform
  /// class labels, 8 batches of samples), as the peers in ../shared/peers and Benchmarks/ use.
  public struct Preset: Sendable {
    public var name: String
    /// The sample shape.
    public var input: [Int]
    public var layers: [LayerSpec]
    public var batchSize: Int

    /// An MLP of `sizes` (input, hidden…, classes) with ReLU between its dense layers.
    public init(name: String, sizes: [Int], batchSize: Int) {
      let layers = sizes.dropFirst().enumerated().map { i, units in
        LayerSpec(
          name: "dense\(i + 1)",
          kind: .dense(
            DenseLayer(units: units, activation: i == sizes.count - 2 ? .identity : .relu, initializer: DenseInit(weight: .heNormal))))
      }
      self.init(name: name, input: [sizes[0]], layers: layers, batchSize: batchSize)
    }

    public init(name: String, input: [Int], layers: [LayerSpec], batchSize: Int) {
      (self.name, self.input, self.layers, self.batchSize) = (name, input, layers, batchSize)
    }

    public static let all = [
      Preset(name: "mlp-mnist", sizes: [784, 256, 128, 10], batchSize: 128),
      Preset(name: "spirals", sizes: [2, 64, 64, 3], batchSize: 64),
      // sessions/digits-cnn.json's network on [1, 8, 8] images.
      Preset(
        name: "cnn-digits", input: [1, 8, 8],
        layers: [
          conv("conv1", 10, kernel: 3, padding: .same), pool("pool1", 2), conv("conv2", 20, kernel: 3, padding: .same), pool("pool2", 2),
          LayerSpec(name: "flatten", kind: .flatten), dense("dense1", 10, .identity),
        ], batchSize: 64),
      // LeNet-5's shape on 28×28 images: two 5×5 convolutions with max pooling, three dense layers.
      Preset(
        name: "lenet", input: [1, 28, 28],
        layers: [
          conv("conv1", 6, kernel: 5, padding: .explicit(Pair(2))), pool("pool1", 2),
          conv("conv2", 16, kernel: 5, padding: .explicit(Pair(0))),
          pool("pool2", 2), LayerSpec(name: "flatten", kind: .flatten), dense("dense1", 120, .relu), dense("dense2", 84, .relu),
          dense("dense3", 10, .identity),
        ], batchSize: 64),
    ]

    static func conv(_ name: String, _ filters: Int, kernel: Int, padding: Padding) -> LayerSpec {
      LayerSpec(
        name: name,
        kind: .conv2d(
          Conv2DLayer(
            filters: filters, kernel: Pair(kernel), padding: padding, activation: .relu, initializer: DenseInit(weight: .heNormal))))
    }
    static func pool(_ name: String, _ kernel: Int) -> LayerSpec {
      LayerSpec(name: name, kind: .maxPool2d(PoolLayer(kernel: Pair(kernel))))
    }
    static func dense(_ name: String, _ units: Int, _ activation: Activation) -> LayerSpec {
      LayerSpec(name: name, kind: .dense(DenseLayer(units: units, activation: activation, initializer: DenseInit(weight: .heNormal))))
    }

    public static func named(_ name: String) -> Preset? { all.first { $0.name == name } }

    /// Steps in a timed run when none are asked for: about a second of work on `fast`.
    public static let defaultSteps = ["mlp-mnist": 300, "spirals": 3000, "cnn-digits": 300, "lenet": 100]

    var classes: Int { (try? ModelSpec(input: input, layers: layers).layerShapes().last?.outputShape.last) ?? 2 }
    var width: Int { input.reduce(1, *) }

    /// The spec: the layers, softmax cross-entropy, Adam at 0.001.
    public var spec: SessionSpec {
      SessionSpec(
        name: name, model: ModelSpec(input: input, layers: layers), loss: .softmaxCrossEntropy,
        optimizer: .adam(.init(lr: 0.001, weightDecay: 0)),
        data: DataSpec(source: .blobs(samples: batchSize * 8, centers: classes, features: width, std: 1, seed: 0)),
        training: TrainingSpec(batchSize: batchSize, shuffle: false, seed: 0))
    }

    /// Random data of the preset's shapes.
    public var data: DataSplit {
      var g = SplitMix64(seed: 0, stream: "bench.data")
      let (count, classes) = (batchSize * 8, classes)
      let inputs = Tensor(shape: [count] + input, scalars: (0..<count * width).map { _ in g.nextNormal() })
      let labels = (0..<count).map { _ in Int(g.next() % UInt64(classes)) }
      return DataSplit(
        Dataset(inputs: inputs, targets: .classes(labels), shape: DataShape(input: input, target: .classes(classes))),
        validationFraction: 0, seed: 0)
    }

    /// Floating-point operations of one step's matrix products (2 per multiply-add): for each
    /// dense layer and convolution the forward product, the weight gradient, and the input
    /// gradient for all but the first layer.
    public var flopsPerStep: Double {
      guard let shapes = try? ModelSpec(input: input, layers: layers).layerShapes() else { return 0 }
      var total = 0.0
      var first = true
      for shape in shapes {
        let products: Double
        switch shape.layer.kind {
        case .dense(let dense): products = Double(dense.units * shape.inputShape.reduce(1, *))
        case .conv2d(let conv):
          let perOutput = shape.inputShape[0] / conv.groups * conv.window.kernel.height * conv.window.kernel.width
          products = Double(shape.outputShape.reduce(1, *) * perOutput)
        default: continue
        }
        total += 2 * Double(batchSize) * products * (first ? 2 : 3)
        first = false
      }
      return total
    }
  }

  public struct Result: Sendable {
    public var preset: String
    public var backend: String
    public var stepsPerSecond: Double
    public var millisecondsPerStep: Double
    public var samplesPerSecond: Double
    public var gigaflopsPerSecond: Double
    /// Steps per second of every timed run, for the spread.
    public var runs: [Double]
    /// Seconds from asking for a trainer to having one (an engine's start, its data, its compilation).
    public var setupSeconds: Double
    /// Seconds an engine spent compiling, when it reports them (jax: its loop and evaluations).
    public var compileSeconds: Double?
  }

  /// Trains `warmup` steps, then times `repeats` runs of `steps` steps each; reports the median.
  /// An engine that makes several updates a call trains in the chunks it asks for, as a run does.
  public static func run(_ preset: Preset, on backend: any Backend, steps: Int, warmup: Int, repeats: Int) throws(BackendError) -> Result {
    let spec = preset.spec
    let state: TrainingState
    do { state = try spec.initialTrainingState() } catch { throw .invalidState([error.description]) }
    let clock = ContinuousClock()
    let setupStart = clock.now
    let trainer = try backend.makeTrainer(spec: spec, state: state, data: preset.data)
    let setup = clock.now - setupStart
    func train(_ count: Int) throws(BackendError) {
      let target = trainer.step + count
      while trainer.step < target {
        if trainer.stepsPerCall <= 1 {
          _ = try trainer.trainStep()
          continue
        }
        let chunk = trainer.train(upTo: min(target, trainer.step + trainer.stepsPerCall), stopAtEpochEnd: false)
        if let failure = chunk.failure { throw failure }
      }
    }
    try train(warmup)
    var rates: [Double] = []
    for _ in 0..<max(1, repeats) {
      let start = clock.now
      try train(steps)
      let elapsed = clock.now - start
      let seconds = elapsed / .seconds(1)
      rates.append(Double(steps) / seconds)
    }
    let median = rates.sorted()[rates.count / 2]
    return Result(
      preset: preset.name, backend: backend.name, stepsPerSecond: median, millisecondsPerStep: 1000 / median,
      samplesPerSecond: median * Double(preset.batchSize), gigaflopsPerSecond: median * preset.flopsPerStep / 1e9, runs: rates,
      setupSeconds: setup / .seconds(1), compileSeconds: trainer.compileSeconds)
  }
}
