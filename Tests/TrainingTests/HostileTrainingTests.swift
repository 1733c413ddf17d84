import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Backends
@testable import Session

#if canImport(Glibc)
  import Glibc
#endif

/// Updates that overflow from finite inputs, data paths that leave the session's folder, and
/// data files that lie about themselves.
@Suite("Hostile training inputs")
struct HostileTrainingTests {
  /// Sessions whose *update* overflows (the loss and the gradient before it are finite): the
  /// state kept must be the last finite one, bit for bit a run that stopped there.
  static let overflowingUpdates: [(String, OptimizerSpec, ScheduleSpec)] = [
    ("lr 1e300", .sgd(.init(lr: 1e300)), .constant),
    ("weight decay 1e300", .adamw(.init(lr: 0.01, weightDecay: 1e300)), .constant),
    ("a schedule that overflows", .sgd(.init(lr: 0.01, momentum: 0.9)), .exponential(gamma: 1e12)),
    ("rmsprop with a huge rate", .rmsprop(.init(lr: 1e38)), .constant),
    ("adagrad with a huge rate", .adagrad(.init(lr: 1e38)), .constant),
  ]

  @Test(arguments: overflowingUpdates.indices, testedBackends)
  func anUpdateThatOverflowsKeepsTheLastFiniteState(_ index: Int, backendName: String) throws {
    let (label, optimizer, schedule) = Self.overflowingUpdates[index]
    let spec = makeSpec(layers: [dense("d1", 8, .tanh), dense("d2", 3)], optimizer: optimizer, schedule: schedule)
    let backend = try BackendRegistry.builtIn.named(backendName)
    let (bundle, summary) = try train(SessionBundle(spec: spec), steps: 60, on: backend)
    #expect(summary.reason == .diverged, "\(label)")
    let kept = summary.step
    let message = summary.message
    #expect(message.contains("training diverged at step \(kept + 1)"), "\(label): \(message)")
    #expect(message.contains("the state is kept from step \(kept)"), "\(label): \(message)")
    let state = try bundle.trainingState()
    #expect(state.step == kept)
    for (name, tensor) in state.tensors {
      let finite = tensor.scalars.allSatisfy { $0.isFinite }
      #expect(finite, "\(label): \(name) holds a non-finite value")
    }
    // Bit for bit the state of a run that stopped at that step.
    let (reference, _) = try train(SessionBundle(spec: spec), steps: kept, on: backend)
    let expected = try reference.trainingState()
    for (name, tensor) in expected.tensors {
      #expect(tensor.scalars.map(\.bitPattern) == state.tensors[name]?.scalars.map(\.bitPattern), "\(label): \(name)")
    }
    #expect((state.index, state.epochOrderSeed, state.dropoutRNG) == (expected.index, expected.epochOrderSeed, expected.dropoutRNG))
    // And it saves: no NaN or infinity reaches the file.
    let folder = temporaryFolder()
    try SessionFile.save(bundle, to: folder + "/d")
    #expect(try SessionFile.load(folder + "/d.json").tensors == state.tensors)
  }

  /// The checkpoint the replay starts from is refreshed as training goes: a divergence long
  /// after the start still keeps exactly the step before it.
  @Test func theReplayStartsFromARecentCheckpoint() throws {
    let spec = makeSpec(
      layers: [dense("d1", 8, .tanh), dense("d2", 3)], optimizer: .sgd(.init(lr: 0.01)), schedule: .exponential(gamma: 2))
    let run = try TrainingRun(bundle: SessionBundle(spec: spec), folder: "", backend: ReferenceBackend())
    let summary = run.run(extraSteps: 400)
    #expect(summary.reason == .diverged)
    #expect(summary.step > 50, "2^t overflows float32 late: \(summary.step)")
    #expect(run.bundle.tensors!.values.allSatisfy { $0.scalars.allSatisfy(\.isFinite) })
  }

  @Test func aStatePositionBeyondTheDataIsRefused() throws {
    let spec = makeSpec(layers: [dense("d1", 3)])
    var state = try spec.initialTrainingState()
    state.index = 10_000
    #expect {
      try TrainingRun(bundle: SessionBundle(spec: spec, state: state), folder: "", backend: ReferenceBackend())
    } throws: { "\($0)".contains("state.position.index is 10000") }
  }

  // MARK: data paths

  /// A folder with a session folder inside and a "secret" beside it.
  func layout() throws -> (session: String, secret: String) {
    let root = temporaryFolder()
    let session = root + "/session"
    try FileManager.default.createDirectory(atPath: session, withIntermediateDirectories: true)
    let secret = root + "/secret.csv"
    try "a,b\nroot:$6$Jk3saltsaltsalt$verylonghashverylonghashverylonghash,1\n2,0\n".write(
      toFile: secret, atomically: true, encoding: .utf8)
    return (session, secret)
  }

  func csvSpec(_ path: String) -> DataSpec {
    DataSpec(source: .csv(.init(path: path, target: .index(1), task: .classification)))
  }

  @Test(arguments: ["absolute", "climbing", "symbolic link"])
  func dataPathsOutsideTheSessionsFolderAreRefused(_ how: String) throws {
    let (session, secret) = try layout()
    var path = secret
    if how == "climbing" { path = "../secret.csv" }
    if how == "symbolic link" {
      #expect(symlink(secret, session + "/inside.csv") == 0)
      path = "inside.csv"
    }
    #expect {
      try DatasetLoader.load(csvSpec(path), relativeTo: session)
    } throws: { error in
      let text = "\(error)"
      return text.contains("data.path") && text.contains("outside the session's folder") && text.contains("--allow-data")
        && !text.contains("verylonghash")
    }
  }

  @Test func anAllowedFolderIsRead() throws {
    let (session, secret) = try layout()
    let folder = (secret as NSString).deletingLastPathComponent
    // Refused, then allowed explicitly (as --allow-data does); the file's contents still never
    // reach the message in full.
    #expect(throws: DataError.self) { try DatasetLoader.load(self.csvSpec(secret), relativeTo: session) }
    DataAccess.allow(folder)
    #expect {
      try DatasetLoader.load(csvSpec(secret), relativeTo: session)
    } throws: { error in
      let text = "\(error)"
      return text.contains("must be a finite number") && text.contains("…") && !text.contains("verylonghashverylonghash")
    }
  }

  @Test func aCSVWithANULIsRefusedWithItsLine() throws {
    let folder = temporaryFolder()
    try Data("x,y\n1,0\n2\u{0}5,1\n".utf8).write(to: URL(fileURLWithPath: folder + "/d.csv"))
    #expect {
      try DatasetLoader.load(csvSpec("d.csv"), relativeTo: folder)
    } throws: { "\($0)".contains("d.csv:3: holds a NUL byte") }
  }

  @Test(arguments: ["fifo", "folder"])
  func aDataFileThatIsNotARegularFileIsRefused(_ kind: String) throws {
    let folder = temporaryFolder()
    if kind == "fifo" {
      #expect(mkfifo(folder + "/d.csv", 0o600) == 0)
    } else {
      try FileManager.default.createDirectory(atPath: folder + "/d.csv", withIntermediateDirectories: true)
    }
    #expect {
      try DatasetLoader.load(csvSpec("d.csv"), relativeTo: folder)
    } throws: { "\($0)".contains("not a regular file") }
  }

  @Test(arguments: [[0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], [1 << 31, 1 << 31, 1 << 31], [0x7FFF_FFFF, 2, 2]])
  func idxDimensionsThatOverflowOrLieAreRefused(_ dims: [Int]) {
    var bytes: [UInt8] = [0, 0, 8, 3]
    for dim in dims { bytes += [UInt8(dim >> 24 & 0xFF), UInt8(dim >> 16 & 0xFF), UInt8(dim >> 8 & 0xFF), UInt8(dim & 0xFF)] }
    bytes += [UInt8](repeating: 7, count: 64)
    let labels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 2, 0, 1]
    #expect {
      try IDXData.load(images: bytes, labels: labels, imagesPath: "i.idx", labelsPath: "l.idx")
    } throws: { "\($0)".contains("i.idx: declares dimensions") }
  }
}
