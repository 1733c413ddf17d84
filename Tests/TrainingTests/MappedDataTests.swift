import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Backends
@testable import Datasets
@testable import Session

/// IDX images and `.npy` inputs read through a mapping of their file (`SampleInputs`, mapped
/// rows): the same values, splits, batches and training as the same data in memory, bit for bit;
/// a file that changes while training stops the run with its state kept.
@Suite("Mapped data")
struct MappedDataTests {
  /// A folder with `x.npy` of `descr` (300 samples of 1×2×3 values), `y.npy` (labels 0–3), and IDX
  /// images `i.idx` (300 of 2×3 bytes) with labels `l.idx`.
  static func files(_ descr: String = "<f4") throws -> (folder: String, x: [UInt8], y: [UInt8], images: [UInt8], labels: [UInt8]) {
    let folder = temporaryFolder("mapped")
    var generator = SplitMix64(seed: 9, stream: "mapped")
    let values = (0..<1800).map { _ in generator.nextNormal() }
    let body: [UInt8] =
      switch descr {
      case "<f4": NumPyStreamTests.bytes(values.map { Float($0) })
      case ">i2": NumPyStreamTests.bytes(values.map { Int16($0 * 300).bigEndian })
      case "|u1": values.map { UInt8(clamping: Int($0 * 60 + 128)) }
      default: NumPyStreamTests.bytes(values.map(Double.init))
      }
    let x = NumPyStreamTests.npy(descr: descr, shape: [300, 1, 2, 3], body: body)
    let labels = (0..<300).map { Int64(($0 * 7) % 4) }
    let y = NumPyStreamTests.npy(descr: "<i8", shape: [300], body: NumPyStreamTests.bytes(labels))
    let images = DataTests.idx(dims: [300, 2, 3], body: values.map { UInt8(clamping: Int($0 * 60 + 128)) })
    let idxLabels = DataTests.idx(dims: [300], body: labels.map { UInt8($0) })
    for (name, bytes) in [("x.npy", x), ("y.npy", y), ("i.idx", images), ("l.idx", idxLabels)] {
      try Data(bytes).write(to: URL(fileURLWithPath: "\(folder)/\(name)"))
    }
    return (folder, x, y, images, idxLabels)
  }

  static func npySource(scale: Double = 1) -> DataSource {
    .numpy(DataSource.NumPySource(files: .npy(inputs: "x.npy", targets: "y.npy"), scale: scale))
  }

  /// The mapped dataset of a source and the same files read whole into memory.
  static func bothWays(_ source: DataSource, _ f: (folder: String, x: [UInt8], y: [UInt8], images: [UInt8], labels: [UInt8])) throws -> (
    mapped: Dataset, memory: Dataset
  ) {
    let mapped = try DatasetLoader.load(DataSpec(source: source), relativeTo: f.folder)
    let memory: Dataset
    if case .numpy(let numpy) = source {
      memory = try NumPyData.dataset(
        inputs: NumPyData.parse(f.x, path: "x"), targets: NumPyData.parse(f.y, path: "y"), source: numpy, inputsName: "x", targetsName: "y")
    } else {
      memory = try IDXData.load(images: f.images, labels: f.labels, imagesPath: "i", labelsPath: "l")
    }
    return (mapped, memory)
  }

  static let sources: [(String, String, DataSource)] = [
    ("float32", "<f4", npySource()), ("float32 scaled", "<f4", npySource(scale: 0.1)), ("float64", "<f8", npySource(scale: 3)),
    ("big-endian int16", ">i2", npySource(scale: 1.0 / 300)), ("uint8", "|u1", npySource(scale: 1.0 / 255)),
    ("idx", "<f4", .idx(images: "i.idx", labels: "l.idx")),
  ]

  @Test func mappedRowsSplitAndGatherAsTheSameDataInMemory() throws {
    for (name, descr, source) in Self.sources {
      let (mapped, memory) = try Self.bothWays(source, Self.files(descr))
      #expect(mapped.inputs.isMapped && !memory.inputs.isMapped, "\(name)")
      #expect(mapped.inputs.shape == memory.inputs.shape && mapped.targets == memory.targets && mapped.shape == memory.shape, "\(name)")
      #expect(mapped.inputs.scalars.map(\.bitPattern) == memory.inputs.scalars.map(\.bitPattern), "\(name)")
      for fraction in [0.0, 0.25] {
        let (a, b) = (DataSplit(mapped, validationFraction: fraction, seed: 5), DataSplit(memory, validationFraction: fraction, seed: 5))
        // The split keeps indices into the file, not rows.
        #expect(a.train.inputs.isMapped && a.validation?.inputs.isMapped != false, "\(name)")
        for (x, y) in [(a.train, b.train), (a.validation, b.validation)].compactMap({ $0 == nil ? nil : ($0!, $1!) }) {
          #expect(x.targets == y.targets && x.inputs.shape == y.inputs.shape, "\(name) \(fraction)")
          #expect(x.inputs.materialized().scalars.map(\.bitPattern) == y.inputs.materialized().scalars.map(\.bitPattern), "\(name)")
          // A batch in any order, with repeats; and the same batch copied into a buffer.
          let batch = [x.count - 1, 0, 17, 17, x.count / 2]
          #expect(x.inputs.gatherRows(batch).scalars.map(\.bitPattern) == y.inputs.gatherRows(batch).scalars.map(\.bitPattern))
          var copied = [Float](repeating: .nan, count: batch.count * x.inputs.rowWidth)
          copied.withUnsafeMutableBufferPointer { x.inputs.copyRows(batch, into: $0.baseAddress!) }
          #expect(copied.map(\.bitPattern) == y.inputs.gatherRows(batch).scalars.map(\.bitPattern))
          #expect(x.subset(batch) == y.subset(batch), "a subset is in memory either way")
        }
      }
    }
  }

  static func spec(_ source: DataSource, optimizer: OptimizerSpec = .adam(.init(lr: 0.01, weightDecay: 0))) -> SessionSpec {
    makeSpec(
      input: [1, 2, 3],
      layers: [
        reshape("flat", [6]), dense("a", 16, .relu), LayerSpec(name: "drop", kind: .dropout(rate: 0.2)), dense("b", 4),
      ], optimizer: optimizer, data: source, batchSize: 32, validationFraction: 0.25)
  }

  @Test(arguments: ["reference", "fast"])
  func trainingOnMappedDataIsTrainingInMemoryBitForBit(backendName: String) throws {
    let backend = try BackendRegistry.builtIn.named(backendName)
    for (name, descr, source) in Self.sources where name != "float32 scaled" {
      let (mapped, memory) = try Self.bothWays(source, Self.files(descr))
      let spec = Self.spec(source)
      var states: [TrainingState] = []
      var evaluations: [Evaluation?] = []
      for data in [mapped, memory] {
        let split = DataSplit(data, validationFraction: 0.25, seed: spec.training.seed)
        let trainer = try backend.makeTrainer(spec: spec, state: spec.initialTrainingState(), data: split)
        for _ in 0..<25 { _ = try trainer.trainStep() }
        states.append(try trainer.exportState())
        evaluations.append(try trainer.evaluate(.validation))
      }
      #expect(states[0] == states[1], "\(backendName), \(name): 25 steps (over 3 epochs) on the mapped file")
      #expect(evaluations[0] == evaluations[1] && evaluations[0] != nil, "\(backendName), \(name)")
    }
  }

  /// The file under a run changes (grown, rewritten in place with its size kept, cut short):
  /// the next chunk stops with `data_changed`, naming the file, and the state is the last step's.
  @Test(arguments: ["grown", "rewritten", "cut short"])
  func aDataFileThatChangesWhileTrainingStopsTheRunWithItsStateKept(change: String) throws {
    for source in [Self.npySource(), DataSource.idx(images: "i.idx", labels: "l.idx")] {
      let f = try Self.files()
      let run = try TrainingRun(bundle: SessionBundle(spec: Self.spec(source)), folder: f.folder, backend: FastBackend())
      run.begin(extraSteps: 50)
      for _ in 0..<5 { #expect(run.advance() == nil) }
      let before = try run.trainer.exportState()
      let name = if case .idx = source { "i.idx" } else { "x.npy" }
      let path = "\(f.folder)/\(name)"
      let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
      switch change {
      case "grown":
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([1, 2, 3, 4]))
      case "rewritten":
        // The same bytes written again: only the modification time says so.
        Thread.sleep(forTimeInterval: 0.01)
        try handle.seek(toOffset: 200)
        try handle.write(contentsOf: Data(repeating: 0, count: 8))
      default:
        try handle.truncate(atOffset: 64)
      }
      try handle.close()
      #expect(run.advance() == .dataChanged)
      #expect(try run.trainer.exportState() == before, "no step ran on the changed file")
      let summary = run.finish(.dataChanged)
      #expect(summary.message.contains(path) && summary.message.contains("changed while it was in use"), "\(summary.message)")
      #expect(run.spec.history.events.suffix(2).map(\.kind) == ["failed", "stop"])
      #expect(run.spec.history.events.suffix(2).first?.detail.contains(name) == true)
    }
  }

  /// Malformed IDX image files say the same through the mapping as read whole.
  @Test func malformedIDXFilesAreRefusedAlikeMappedOrInMemory() throws {
    let f = try Self.files()
    let good = DataTests.idx(dims: [300, 2, 3], body: [UInt8](repeating: 1, count: 1800))
    let cases: [(String, [UInt8])] = [
      ("empty", []), ("short header", [0, 0, 8]), ("not idx", [1] + good.dropFirst()), ("floats", [0, 0, 0x0D] + good.dropFirst(3)),
      ("rank 2", DataTests.idx(dims: [300, 6], body: [UInt8](repeating: 1, count: 1800))),
      ("truncated", Array(good.dropLast())), ("padded", good + [0]),
      ("a dimension of 0", DataTests.idx(dims: [300, 0, 3], body: [])),
      ("huge", DataTests.idx(dims: [0x7FFF_FFFF, 0x7FFF_FFFF, 2], body: [1, 2])),
      ("a count the labels lack", DataTests.idx(dims: [299, 2, 3], body: [UInt8](repeating: 1, count: 1794))),
    ]
    for (name, bytes) in cases {
      try Data(bytes).write(to: URL(fileURLWithPath: "\(f.folder)/i.idx"))
      let mapped = Result { () throws(DataError) in
        try DatasetLoader.load(DataSpec(source: .idx(images: "i.idx", labels: "l.idx")), relativeTo: f.folder)
      }
      let whole = Result { () throws(DataError) in
        try IDXData.load(images: bytes, labels: f.labels, imagesPath: "\(f.folder)/i.idx", labelsPath: "\(f.folder)/l.idx")
      }
      guard case .failure(let a) = mapped, case .failure(let b) = whole else {
        Issue.record("\(name): \(mapped) vs \(whole)")
        continue
      }
      #expect(a == b, "\(name)")
    }
    // A FIFO or a folder in the file's place is refused at once.
    try FileManager.default.removeItem(atPath: "\(f.folder)/i.idx")
    #expect(mkfifo("\(f.folder)/i.idx", 0o600) == 0)
    #expect {
      try DatasetLoader.load(DataSpec(source: .idx(images: "i.idx", labels: "l.idx")), relativeTo: f.folder)
    } throws: { "\($0)".contains("FIFO") || "\($0)".contains("not a regular file") }
  }

  /// A `.npy` cut short after it was opened and mapped, before its values are checked: the
  /// check says so (it looks at the file before each block, so it never reads past its end).
  @Test func aFileCutShortWhileItsValuesAreCheckedIsRefused() throws {
    let f = try Self.files()
    let path = "\(f.folder)/x.npy"
    let file = try FileAccess.openForReading(path)
    let rows = MappedRows(mapping: try file.mapped(), offset: 128, encoding: .float32, sampleShape: [1, 2, 3], fileRows: 300)
    #expect(try NumPyData.firstNonFinite(rows, count: 1800, path: path, progress: nil) == nil)
    try FileHandle(forUpdating: URL(fileURLWithPath: path)).truncate(atOffset: 1000)
    #expect {
      _ = try NumPyData.firstNonFinite(rows, count: 1800, path: path, progress: nil)
    } throws: { "\($0)" == "\(path): changed while it was read; read it again once it is written" }
  }

  /// A file declaring more samples than the memory budget can keep track of — sparse, so it
  /// costs no disk — is refused before anything is mapped, scanned or allocated by its size.
  @Test func moreSamplesThanTheBudgetCanTrackAreRefusedBeforeAnythingIsAllocated() throws {
    let f = try Self.files()
    let samples = MemoryBudget.limit / MappedRows.bytesPerSample + 1
    func sparse(_ name: String, header: [UInt8], bytes: Int) throws {
      let path = "\(f.folder)/\(name)"
      try Data(header).write(to: URL(fileURLWithPath: path))
      let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
      try handle.truncate(atOffset: UInt64(header.count + bytes))
      try handle.close()
    }
    try sparse("x.npy", header: NumPyStreamTests.npy(descr: "|u1", shape: [samples], body: []), bytes: samples)
    #expect {
      try DatasetLoader.load(DataSpec(source: Self.npySource()), relativeTo: f.folder)
    } throws: { "\($0)".contains("declares \(samples) samples; their values stay in the file") }
    // (An IDX dimension has 4 bytes: on a machine whose budget tracks more, only the .npy case runs.)
    guard samples <= Int(UInt32.max) else {
      print("skipped the IDX case: \(samples) samples do not fit an IDX dimension")
      return
    }
    try sparse("i.idx", header: DataTests.idx(dims: [samples, 1, 1], body: []), bytes: samples)
    #expect {
      try DatasetLoader.load(DataSpec(source: .idx(images: "i.idx", labels: "l.idx")), relativeTo: f.folder)
    } throws: { "\($0)".contains("i.idx: declares \(samples) samples") && "\($0)".contains("train on fewer samples") }
  }

  /// What needs every mapped row in memory gets them all, and knows their size for its budget
  /// check (a refusal past the budget: `LargeDataCLITests`, which sets the budget).
  @Test func materializingGivesEveryRowAndItsSize() throws {
    let (mapped, _) = try Self.bothWays(Self.npySource(), Self.files())
    #expect(try mapped.inputs.materialized(for: "evaluate").shape == [300, 1, 2, 3])
    #expect(mapped.inputs.bytesInMemory == 300 * 6 * 4)
  }
}
