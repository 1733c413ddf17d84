import Datasets
import Foundation
import SpecKit
import TensorCore

/// The built-in benchmark: a fixed workload per preset, trained on one backend — warm-up steps,
/// then several timed runs; the median is reported.
public enum Benchmark {
  /// A workload: an MLP, a batch size, Adam, and seeded random data (normal inputs, uniform
  /// class labels, 8 batches of samples), as the NumPy peer in ../shared/peers uses.
  public struct Preset: Sendable {
    public var name: String
    public var sizes: [Int]
    public var batchSize: Int

    public static let all = [
      Preset(name: "mlp-mnist", sizes: [784, 256, 128, 10], batchSize: 128),
      Preset(name: "spirals", sizes: [2, 64, 64, 3], batchSize: 64),
    ]

    public static func named(_ name: String) -> Preset? { all.first { $0.name == name } }

    /// The spec: dense layers with ReLU between them, softmax cross-entropy, Adam at 0.001.
    public var spec: SessionSpec {
      let layers = sizes.dropFirst().enumerated().map { i, units in
        LayerSpec(
          name: "dense\(i + 1)",
          kind: .dense(
            DenseLayer(units: units, activation: i == sizes.count - 2 ? .identity : .relu, initializer: DenseInit(weight: .heNormal))))
      }
      return SessionSpec(
        name: name, model: ModelSpec(input: [sizes[0]], layers: layers), loss: .softmaxCrossEntropy,
        optimizer: .adam(.init(lr: 0.001, weightDecay: 0)),
        data: DataSpec(source: .blobs(samples: batchSize * 8, centers: sizes.last!, features: sizes[0], std: 1, seed: 0)),
        training: TrainingSpec(batchSize: batchSize, shuffle: false, seed: 0))
    }

    /// Random data of the preset's shapes.
    public var data: DataSplit {
      var g = SplitMix64(seed: 0, stream: "bench.data")
      let count = batchSize * 8
      let inputs = Tensor(shape: [count, sizes[0]], scalars: (0..<count * sizes[0]).map { _ in g.nextNormal() })
      let labels = (0..<count).map { _ in Int(g.next() % UInt64(sizes.last!)) }
      return DataSplit(
        Dataset(inputs: inputs, targets: .classes(labels), shape: DataShape(input: [sizes[0]], target: .classes(sizes.last!))),
        validationFraction: 0, seed: 0)
    }

    /// Floating-point operations of one step's matrix products: forward x·Wᵀ, backward dW for
    /// every layer and dx for all but the first (2 per multiply-add).
    public var flopsPerStep: Double {
      let products = zip(sizes, sizes.dropFirst()).map { Double($0 * $1) }
      let all = products.reduce(0, +)
      return 2 * Double(batchSize) * (all + all + all - products[0])
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
