import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Datasets

@Suite("Data sources")
struct DataTests {
  static let synthetic: [DataSource] = [
    .spirals(samples: 61, classes: 3, noise: 0.1, seed: 4), .moons(samples: 51, noise: 0.1, seed: 4),
    .circles(samples: 40, noise: 0.05, factor: 0.5, seed: 4),
    .xor(samples: 33, noise: 0.1, seed: 4), .blobs(samples: 30, centers: 3, features: 5, std: 1, seed: 4),
    .sine(samples: 20, noise: 0.1, seed: 4),
  ]

  @Test(arguments: synthetic)
  func syntheticDataIsSeededAndHasTheDocumentedShapes(source: DataSource) throws {
    let spec = DataSpec(source: source)
    let a = try DatasetLoader.load(spec, relativeTo: "")
    #expect(a == (try DatasetLoader.load(spec, relativeTo: "")))
    #expect(a.shape == source.knownShape)
    #expect(a.inputs.shape == [a.count] + source.knownShape!.input)
    #expect(a.inputs.materialized().isFinite)
    if case .classes(let labels) = a.targets, case .classes(let k) = a.shape.target {
      #expect(Set(labels) == Set(0..<k))
      let counts = (0..<k).map { c in labels.filter { $0 == c }.count }
      // Classes are assigned by index, except xor's, which follow random points.
      if source.typeName != "xor" { #expect(counts.max()! - counts.min()! <= 1, "classes are balanced: \(counts)") }
    }
  }

  @Test func aDifferentSeedGivesDifferentData() throws {
    let a = SyntheticData.spirals(samples: 30, classes: 3, noise: 0.1, seed: 1)
    let b = SyntheticData.spirals(samples: 30, classes: 3, noise: 0.1, seed: 2)
    #expect(a.inputs != b.inputs)
  }

  @Test func generatorsFollowTheirDocumentedFormulas() {
    // xor: labels from the signs of the noiseless points.
    let xor = SyntheticData.xor(samples: 50, noise: 0, seed: 9)
    guard case .classes(let labels) = xor.targets else {
      Issue.record()
      return
    }
    for i in 0..<50 {
      let (x, y) = (xor.inputs.scalars[2 * i], xor.inputs.scalars[2 * i + 1])
      #expect(abs(x) <= 1 && abs(y) <= 1)
      #expect(labels[i] == (x * y < 0 ? 1 : 0))
    }
    // sine without noise: the target is sin(x) (in float32).
    let sine = SyntheticData.sine(samples: 10, noise: 0, seed: 3)
    guard case .values(let t) = sine.targets else {
      Issue.record()
      return
    }
    for i in 0..<10 { #expect(abs(t.scalars[i] - sin(sine.inputs.scalars[i])) < 1e-6) }
    // circles without noise: radius 1 for class 0, factor for class 1.
    let circles = SyntheticData.circles(samples: 20, noise: 0, factor: 0.3, seed: 0)
    for i in 0..<20 {
      let r =
        (circles.inputs.scalars[2 * i] * circles.inputs.scalars[2 * i] + circles.inputs.scalars[2 * i + 1]
        * circles.inputs.scalars[2 * i + 1]).squareRoot()
      #expect(abs(r - (i < 10 ? 1 : 0.3)) < 1e-6)
    }
  }

  @Test func irisIsBuiltIn() throws {
    let iris = try DatasetLoader.load(DataSpec(source: .builtin(name: "iris")), relativeTo: "")
    #expect(iris.inputs.shape == [150, 4])
    #expect(iris.shape == DataShape(input: [4], target: .classes(3)))
    guard case .classes(let labels) = iris.targets else {
      Issue.record()
      return
    }
    #expect((0..<3).map { c in labels.filter { $0 == c }.count } == [50, 50, 50])
    #expect(Array(iris.inputs.scalars.prefix(4)) == [5.1, 3.5, 1.4, 0.2])
  }

  // MARK: CSV

  func csv(_ text: String, _ source: DataSource.CSVSource) throws(DataError) -> Dataset {
    try CSVData.load(text: text, source: source, path: "f.csv").0
  }

  @Test func csvWithHeaderTargetByNameAndClassMapping() throws {
    let text = "a,species,b\n1,virginica,2\n3,setosa,4\n\n5, \"versicolor\" ,6\r\n7,setosa,8\n"
    let result = try CSVData.load(text: text, source: .init(path: "f.csv", target: .name("species"), task: .classification), path: "f.csv")
    #expect(result.0.inputs.materialized() == Tensor(shape: [4, 2], scalars: [1, 2, 3, 4, 5, 6, 7, 8]))
    #expect(result.0.targets == .classes([2, 0, 1, 0]))
    #expect(result.classNames == ["setosa", "versicolor", "virginica"])
  }

  @Test func csvNumericClassesSortNumerically() throws {
    let data = try csv("1,10\n2,2\n3,1\n", .init(path: "", target: .index(1), header: false, task: .classification))
    #expect(data.targets == .classes([2, 1, 0]))
    #expect(data.shape == DataShape(input: [1], target: .classes(3)))
  }

  @Test func csvRegressionTabsQuotesAndNormalisation() throws {
    let data = try csv(
      "y\tx1\tx2\n1.5\t1\t10\n2.5\t3\t10\n", .init(path: "", target: .index(0), delimiter: "\t", task: .regression, normalize: true))
    #expect(data.targets == .values(Tensor(shape: [2, 1], scalars: [1.5, 2.5])))
    // The loader keeps the raw values; the split standardises them.
    #expect(data.inputs.scalars == [1, 10, 3, 10] && data.standardizesInputs)
    let split = DataSplit(data, validationFraction: 0, seed: 1)
    #expect(split.train.inputs.scalars == [-1, 0, 1, 0])  // x2 is constant: centred only
    #expect(split.standardization == Standardization(fitting: data.inputs.materialized()) && !split.train.standardizesInputs)
    let quoted = try csv("\"a,b\",t\n\"1\",\"x \"\"q\"\"\"\n2,y\n", .init(path: "", target: .name("t"), task: .classification))
    #expect(quoted.targets == .classes([0, 1]))
  }

  /// Normalisation statistics come from the training part only: validation rows far from the
  /// training rows do not move them.
  @Test func normalisationUsesTheTrainingPartOnly() throws {
    // 20 rows: x in 0…9 for most, and rows at 1000 (one every fourth) that the split may hold out.
    let rows = (0..<20).map { i in "\(i % 4 == 0 ? 1000 + i : i % 10),\(i % 2 == 0 ? "a" : "b")" }
    let data = try csv(
      "x,t\n" + rows.joined(separator: "\n") + "\n", .init(path: "", target: .name("t"), task: .classification, normalize: true))
    let split = DataSplit(data, validationFraction: 0.3, seed: 5)
    let validation = try #require(split.validation)
    let raw = DataSplit(Dataset(inputs: data.inputs, targets: data.targets, shape: data.shape), validationFraction: 0.3, seed: 5)
    let trainRaw: [Double] = raw.train.inputs.scalars.map(Double.init)
    let mean: Double = trainRaw.reduce(0, +) / Double(trainRaw.count)
    let deviations: [Double] = trainRaw.map { ($0 - mean) * ($0 - mean) }
    let std: Double = (deviations.reduce(0, +) / Double(trainRaw.count)).squareRoot()
    #expect(split.standardization?.mean == [mean] && split.standardization?.std == [std])
    // The training part has mean 0 and standard deviation 1 …
    let train: [Double] = split.train.inputs.scalars.map(Double.init)
    let trainMean: Double = train.reduce(0, +) / Double(train.count)
    let trainSquares: Double = train.map { $0 * $0 }.reduce(0, +) / Double(train.count)
    #expect(abs(trainMean) < 1e-6)
    #expect(abs(trainSquares.squareRoot() - 1) < 1e-6)
    // … and the validation part is standardised with the training part's statistics.
    let expected: [Float] = raw.validation!.inputs.scalars.map { Float((Double($0) - mean) / std) }
    #expect(validation.inputs.scalars == expected)
    // The split held out some of the far rows and kept some: with all rows' statistics (the old
    // rule) the training mean would not be 0.
    #expect(raw.validation!.inputs.scalars.contains { $0 >= 1000 } && raw.train.inputs.scalars.contains { $0 >= 1000 })
    let all: [Double] = data.inputs.scalars.map(Double.init)
    let allMean: Double = all.reduce(0, +) / Double(all.count)
    #expect(abs(allMean - mean) > 1, "this data tells the two rules apart")
  }

  @Test(arguments: [
    ("a,b,t\n1,2,x\n3,x\n", DataError.csv(path: "f.csv", line: 3, column: nil, message: "has 2 fields, but the header has 3")),
    ("a,b,t\n1,2,x\n3,oops,y\n", .csv(path: "f.csv", line: 3, column: 2, message: "column 2 (b) must be a finite number, got \"oops\"")),
    ("a,b,t\n1,2,x\n3,nan,y\n", .csv(path: "f.csv", line: 3, column: 2, message: "column 2 (b) must be a finite number, got \"nan\"")),
    ("a,b,t\n1,2,x\n", .mismatch("f.csv: the target column has a single value (x); classification needs at least 2 classes")),
    ("", .csv(path: "f.csv", line: 1, column: nil, message: "the file is empty; expected a header line")),
    ("a,b,t\n", .csv(path: "f.csv", line: 1, column: nil, message: "the file has no data rows")),
    ("a,b,t\n1,\"2,x\n", .csv(path: "f.csv", line: 2, column: 2, message: "a quoted field is not closed")),
  ])
  func csvProblemsSayWhere(text: String, expected: DataError) {
    #expect(throws: expected) { try csv(text, .init(path: "", target: .name("t"), task: .classification)) }
  }

  @Test func csvTargetProblems() {
    #expect(throws: DataError.mismatch("f.csv: data.target names column \"lable\", but the header has a, label (did you mean \"label\"?)"))
    {
      try csv("a,label\n1,x\n", .init(path: "", target: .name("lable"), task: .classification))
    }
    #expect(throws: DataError.mismatch("f.csv: data.target is column 5, but the file has 2 columns (0 to 1)")) {
      try csv("1,x\n", .init(path: "", target: .index(5), header: false, task: .classification))
    }
    #expect(
      throws: DataError.csv(path: "f.csv", line: 2, column: 2, message: "the target must be a finite number for regression, got \"x\"")
    ) {
      try csv("a,y\n1,x\n", .init(path: "", target: .index(1), task: .regression))
    }
  }

  @Test func csvFilesAreReadRelativeToTheSpec() throws {
    let folder = temporaryFolder()
    try "x,y\n0,a\n1,b\n".write(toFile: folder + "/d.csv", atomically: true, encoding: .utf8)
    let spec = DataSpec(source: .csv(.init(path: "d.csv", target: .name("y"), task: .classification)))
    #expect(try DatasetLoader.load(spec, relativeTo: folder).count == 2)
    #expect(throws: DataError.unreadable(path: folder + "/nope.csv", reason: "no such file")) {
      try DatasetLoader.load(DataSpec(source: .csv(.init(path: "nope.csv", target: .index(0), task: .regression))), relativeTo: folder)
    }
  }

  // MARK: IDX

  static func idx(type: UInt8 = 8, dims: [Int], body: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0, 0, type, UInt8(dims.count)]
    for d in dims { out += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
    return out + body
  }

  @Test func idxImagesAndLabels() throws {
    let images = Self.idx(dims: [2, 2, 3], body: [0, 255, 51, 102, 0, 0, 255, 255, 255, 0, 0, 0])
    let labels = Self.idx(dims: [2], body: [3, 1])
    let data = try IDXData.load(images: images, labels: labels, imagesPath: "i", labelsPath: "l")
    #expect(data.inputs.shape == [2, 1, 2, 3])
    #expect(Array(data.inputs.scalars.prefix(3)) == [0, 1, 0.2])
    #expect(data.targets == .classes([3, 1]))
    #expect(data.shape == DataShape(input: [1, 2, 3], target: .classes(4)))
  }

  @Test(arguments: [
    (idx(dims: [2, 2, 2], body: [1, 2, 3]), "declares [2, 2, 2] = 8 values, but holds 3 bytes of data"),
    (idx(type: 0x0D, dims: [1, 1, 1], body: [0, 0, 0, 0]), "holds IDX type 0xd; SpecBench reads unsigned bytes (type 0x08)"),
    (idx(dims: [4], body: [1, 2, 3, 4]), "has 1 dimensions, expected 3 (images × rows × columns)"),
    ([1, 2, 3, 4, 5], "is not an IDX file (its first two bytes must be 0)"),
    ([0, 0, 8], "has 3 bytes, too few for an IDX header"),
  ])
  func idxProblemsAreExplained(images: [UInt8], message: String) {
    #expect(throws: DataError.idx(path: "i", message: message)) {
      try IDXData.load(images: images, labels: Self.idx(dims: [1], body: [1]), imagesPath: "i", labelsPath: "l")
    }
  }

  @Test func idxCountsMustAgree() {
    #expect(throws: DataError.idx(path: "l", message: "has 2 labels, but i has 1 images")) {
      try IDXData.load(
        images: Self.idx(dims: [1, 1, 1], body: [9]), labels: Self.idx(dims: [2], body: [0, 1]), imagesPath: "i", labelsPath: "l")
    }
  }

  // MARK: splitting and batching

  @Test func theValidationSplitIsSeededAndDisjoint() {
    let data = SyntheticData.blobs(samples: 50, centers: 2, features: 2, std: 1, seed: 0)
    let split = DataSplit(data, validationFraction: 0.2, seed: 7)
    #expect(split.train.count == 40 && split.validation?.count == 10)
    #expect(split == DataSplit(data, validationFraction: 0.2, seed: 7))
    #expect(split != DataSplit(data, validationFraction: 0.2, seed: 8))
    let rows = Set((0..<50).map { Array(data.inputs.gatherRows([$0]).scalars) })
    let trainRows = Set((0..<40).map { Array(split.train.inputs.gatherRows([$0]).scalars) })
    let validationRows = Set((0..<10).map { Array(split.validation!.inputs.gatherRows([$0]).scalars) })
    #expect(trainRows.isDisjoint(with: validationRows) && trainRows.union(validationRows) == rows)
    #expect(DataSplit(data, validationFraction: 0.001, seed: 1).validation?.count == 1)
    #expect(DataSplit(data, validationFraction: 0, seed: 1).validation == nil)
  }

  /// The split rebuilt from its documented rule (docs/training.md) by this test's own
  /// Fisher–Yates: the same rows, in the same (data) order, in each part.
  @Test(arguments: [(50, 0.2, UInt64(7)), (31, 0.5, UInt64(0)), (200, 0.1, UInt64(12_345))])
  func theValidationSplitFollowsItsDocumentedRule(count: Int, fraction: Double, seed: UInt64) throws {
    let data = SyntheticData.moons(samples: count, noise: 0.1, seed: 3)
    let split = DataSplit(data, validationFraction: fraction, seed: seed)
    var generator = SplitMix64(seed: seed, stream: "data.split")
    var order = Array(0..<count)
    for i in stride(from: count - 1, through: 1, by: -1) { order.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
    let held = min(max(Int((Double(count) * fraction).rounded()), 1), count - 1)
    let validationRows = order[..<held].sorted(), trainRows = order[held...].sorted()
    let validation = try #require(split.validation)
    #expect(validation.inputs.scalars == data.inputs.gatherRows(Array(validationRows)).scalars)
    #expect(split.train.inputs.scalars == data.inputs.gatherRows(Array(trainRows)).scalars)
    #expect(split.train.targets == data.targets.gather(Array(trainRows)))
  }

  @Test func batchesCoverEachEpochOnceWithTheShortBatchLast() {
    var sampler = EpochSampler(sampleCount: 10, batchSize: 4, shuffle: true, epochOrderSeed: 99, index: 0, epoch: 0)
    var epochs: [[Int]] = []
    for _ in 0..<3 {
      var seen: [Int] = []
      let sizes = (0..<3).map { _ -> Int in
        let batch = sampler.nextBatch()
        seen += batch
        return batch.count
      }
      #expect(sizes == [4, 4, 2])
      #expect(seen.sorted() == Array(0..<10))
      #expect(sampler.isAtEpochStart)
      epochs.append(seen)
    }
    #expect(sampler.epoch == 3)
    #expect(epochs[0] != epochs[1] && epochs[1] != epochs[2], "reshuffled every epoch")
    var plain = EpochSampler(sampleCount: 5, batchSize: 2, shuffle: false, epochOrderSeed: 1, index: 0, epoch: 0)
    #expect([Array(plain.nextBatch()), Array(plain.nextBatch()), Array(plain.nextBatch())] == [[0, 1], [2, 3], [4]])
  }

  @Test func theFirstEpochsOrderIsAFisherYatesShuffleOfItsSeed() {
    var generator = SplitMix64(state: 1234)
    var expected = Array(0..<6)
    for i in stride(from: 5, to: 0, by: -1) { expected.swapAt(i, Int(generator.next() % UInt64(i + 1))) }
    var sampler = EpochSampler(sampleCount: 6, batchSize: 6, shuffle: true, epochOrderSeed: 1234, index: 0, epoch: 0)
    #expect(Array(sampler.nextBatch()) == expected)
    #expect(sampler.epochOrderSeed == SeedStreams.nextEpochOrderSeed(after: 1234))
  }

  @Test func aSamplerResumedMidEpochContinuesTheSameOrder() {
    var a = EpochSampler(sampleCount: 9, batchSize: 2, shuffle: true, epochOrderSeed: 5, index: 0, epoch: 0)
    for _ in 0..<3 { _ = a.nextBatch() }
    var b = EpochSampler(sampleCount: 9, batchSize: 2, shuffle: true, epochOrderSeed: a.epochOrderSeed, index: a.index, epoch: a.epoch)
    for _ in 0..<12 { #expect(Array(a.nextBatch()) == Array(b.nextBatch())) }
  }
}
