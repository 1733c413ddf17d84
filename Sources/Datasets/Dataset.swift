import Foundation
import SpecKit
import TensorCore

/// Samples with their targets: inputs `[N, sample shape…]` and one target per sample.
public struct Dataset: Hashable, Sendable {
  /// In memory, or rows of a mapped file (`SampleInputs`).
  public var inputs: SampleInputs
  public var targets: Targets
  /// The shapes this data has, to check against the model and loss.
  public var shape: DataShape
  /// Whether the inputs are to be standardised (a csv source's `normalize`): `DataSplit` does
  /// it with statistics of the training part only, so nothing of the validation part leaks in.
  public var standardizesInputs: Bool

  public init(inputs: Tensor, targets: Targets, shape: DataShape, standardizesInputs: Bool = false) {
    self.init(inputs: SampleInputs(inputs), targets: targets, shape: shape, standardizesInputs: standardizesInputs)
  }

  public init(inputs: SampleInputs, targets: Targets, shape: DataShape, standardizesInputs: Bool = false) {
    self.inputs = inputs
    self.targets = targets
    self.shape = shape
    self.standardizesInputs = standardizesInputs
  }

  public var count: Int { inputs.rows }

  /// The samples at `indices`, in that order, in memory: a batch.
  public func subset(_ indices: some Collection<Int>) -> Dataset {
    Dataset(inputs: inputs.gatherRows(indices), targets: targets.gather(indices), shape: shape, standardizesInputs: standardizesInputs)
  }

  /// The samples at `indices`, in that order, kept as the inputs are kept: copied from memory,
  /// or as indices into a mapped file (`SampleInputs.selecting`).
  public func selecting(_ indices: some Collection<Int>) -> Dataset {
    Dataset(inputs: inputs.selecting(indices), targets: targets.gather(indices), shape: shape, standardizesInputs: standardizesInputs)
  }
}

/// Per-column standardisation: `(x − mean) / std` with the population standard deviation, or
/// only `x − mean` for a constant column; computed in double precision, rounded once to float32.
public struct Standardization: Hashable, Sendable {
  public var mean: [Double]
  public var std: [Double]

  /// The statistics of each column of `inputs` (`[N, columns]`).
  public init(fitting inputs: Tensor) {
    let rows = inputs.rows, columns = inputs.rowWidth
    mean = Array(repeating: 0, count: columns)
    std = Array(repeating: 0, count: columns)
    for c in 0..<columns {
      var sum = 0.0
      for r in 0..<rows { sum += Double(inputs.scalars[r * columns + c]) }
      let m = sum / Double(max(rows, 1))
      var squares = 0.0
      for r in 0..<rows {
        let d = Double(inputs.scalars[r * columns + c]) - m
        squares += d * d
      }
      mean[c] = m
      std[c] = (squares / Double(max(rows, 1))).squareRoot()
    }
  }

  /// `inputs` standardised with these statistics.
  public func apply(to inputs: Tensor) -> Tensor {
    let columns = mean.count
    var values = inputs.scalars
    for i in values.indices {
      let c = i % columns
      let centred = Double(values[i]) - mean[c]
      values[i] = Float(std[c] > 0 ? centred / std[c] : centred)
    }
    return Tensor(shape: inputs.shape, scalars: values)
  }
}

/// Training and validation samples.
public struct DataSplit: Hashable, Sendable {
  public var train: Dataset
  /// Nil when `validation_fraction` is 0.
  public var validation: Dataset?
  /// The statistics both parts were standardised with — the training part's — when the data
  /// asks for it; exporters write them into the model they hand over.
  public var standardization: Standardization?

  /// Holds out `fraction` of `data` for validation: a Fisher–Yates permutation of all indices
  /// drawn from `SplitMix64(seed: seed, stream: "data.split")`; its first round(N·fraction)
  /// indices (at least 1 and at most N − 1 when fraction > 0) are the validation samples; both
  /// parts keep the data's order.
  ///
  /// Data that asks to be standardised is standardised here, with the training part's
  /// statistics, applied to both parts.
  public init(_ data: Dataset, validationFraction fraction: Double, seed: UInt64) {
    if fraction > 0, data.count > 1 {
      var generator = SplitMix64(seed: seed, stream: "data.split")
      let order = Shuffle.permutation(data.count, generator: &generator)
      let held = min(max(Int((Double(data.count) * fraction).rounded()), 1), data.count - 1)
      validation = data.selecting(order[..<held].sorted())
      train = data.selecting(order[held...].sorted())
    } else {
      train = data
      validation = nil
    }
    guard data.standardizesInputs else { return }
    // (Only a csv source standardises, and its inputs are in memory.)
    let statistics = Standardization(fitting: train.inputs.materialized())
    standardization = statistics
    train.inputs = SampleInputs(statistics.apply(to: train.inputs.materialized()))
    train.standardizesInputs = false
    if var held = validation {
      held.inputs = SampleInputs(statistics.apply(to: held.inputs.materialized()))
      held.standardizesInputs = false
      validation = held
    }
  }
}

extension DataSplit {
  /// What changed in a mapped data file since it was read (`SampleInputs.fileChange`); nil while
  /// it is as it was, or when the data is in memory.
  public func fileChange() -> String? { train.inputs.fileChange() ?? validation?.inputs.fileChange() }

  /// The data of `spec` split as training splits it (its `validation_fraction` and training
  /// seed, the csv standardisation with the training part's statistics), with the class names
  /// of a csv or built-in source: the one way to see a session's data as its model does.
  public static func of(_ spec: SessionSpec, relativeTo folder: String) throws(DataError) -> (split: DataSplit, classNames: [String]?) {
    let (dataset, names) = try DatasetLoader.loadNamed(spec.data, relativeTo: folder)
    return (DataSplit(dataset, validationFraction: spec.data.validationFraction, seed: spec.training.seed), names)
  }
}

/// The one shuffle of SpecBench, so any program can reproduce sample orders.
public enum Shuffle {
  /// 0..<n permuted by Fisher–Yates from the end: for i = n−1 down to 1, swap i with
  /// j = next() mod (i + 1).
  public static func permutation(_ n: Int, generator: inout SplitMix64) -> [Int] {
    var order = Array(0..<n)
    var i = n - 1
    while i > 0 {
      let j = Int(generator.next() % UInt64(i + 1))
      order.swapAt(i, j)
      i -= 1
    }
    return order
  }
}

/// Which samples make the next batch: the epoch's order (shuffled by the epoch's seed, or the
/// data's order), a position in it, and the epoch count. Its state is the format's
/// `state.position` and `state.epoch`.
public struct EpochSampler: Hashable, Sendable {
  public let sampleCount: Int
  public let batchSize: Int
  public let shuffle: Bool
  public private(set) var epochOrderSeed: UInt64
  public private(set) var index: Int
  public private(set) var epoch: Int
  private var order: [Int]

  public init(sampleCount: Int, batchSize: Int, shuffle: Bool, epochOrderSeed: UInt64, index: Int, epoch: Int) {
    (self.sampleCount, self.batchSize, self.shuffle) = (sampleCount, batchSize, shuffle)
    (self.epochOrderSeed, self.index, self.epoch) = (epochOrderSeed, min(index, sampleCount), epoch)
    order = Self.order(sampleCount, shuffle: shuffle, seed: epochOrderSeed)
  }

  static func order(_ n: Int, shuffle: Bool, seed: UInt64) -> [Int] {
    guard shuffle else { return Array(0..<n) }
    var generator = SplitMix64(state: seed)
    return Shuffle.permutation(n, generator: &generator)
  }

  /// The next batch's sample indices: up to `batchSize` from the epoch's order (the last batch of
  /// an epoch may be short). When the epoch is used up, the epoch count advances and the next
  /// epoch's order is drawn from the next seed.
  public mutating func nextBatch() -> ArraySlice<Int> {
    if index >= sampleCount { startNextEpoch() }
    let end = index + min(batchSize, sampleCount - index)  // no overflow for any batch size
    let batch = order[index..<end]
    index = end
    if index >= sampleCount { startNextEpoch() }
    return batch
  }

  /// True when the last batch taken ended an epoch.
  public var isAtEpochStart: Bool { index == 0 }

  private mutating func startNextEpoch() {
    epoch += 1
    index = 0
    epochOrderSeed = SeedStreams.nextEpochOrderSeed(after: epochOrderSeed)
    order = Self.order(sampleCount, shuffle: shuffle, seed: epochOrderSeed)
  }
}
