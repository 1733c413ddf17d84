import Backends
import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import Synchronization
import Testing

@testable import Session

/// The engine against commands and sessions that used to end the workbench or reach the
/// terminal raw: every failing command leaves the session exactly as it was.
@Suite("The engine against hostile commands")
struct HostileEngineTests {
  func engine() -> SessionEngine { SessionEngine.withDefaultSession() }

  @Test(arguments: [
    ("add dense 1000000000", "of memory"), ("add dense 9223372036854775807", "2^40"),
    ("data spirals samples=1000000000000", "data.samples"),
    ("set dense2 name=dense1", "a layer named dense1 exists already"), ("train 9223372036854775807", "at most 2^53"),
  ])
  func aFailingCommandLeavesTheSessionAsItWas(_ line: String, _ message: String) {
    let engine = engine()
    let before = (engine.spec, engine.state, engine.hasUnsavedChanges)
    let outcome = engine.execute(line)
    #expect(outcome.failed, "\(line) was accepted")
    #expect(outcome.text.contains(message), "\(outcome.text)")
    #expect(engine.spec == before.0 && engine.state == before.1 && engine.hasUnsavedChanges == before.2)
    #expect(!engine.isTraining)
  }

  /// A batch larger than the data is the whole data each step (the last short batch is used),
  /// even at the largest integer.
  @Test func theLargestBatchSizeTrains() {
    let engine = engine()
    #expect(!engine.execute("batch 9223372036854775807").failed)
    #expect(!engine.execute("train 3 --wait").failed)
    waitIdle(engine)
    #expect(engine.state?.step == 3)
  }

  @Test func namesWithControlCharactersAreNeverOfferedForCompletion() throws {
    var spec = SessionEngine.withDefaultSession().spec
    spec.model.layers[0].name = "evil\u{1B}[2J"
    let candidates = try #require(Completion.candidates(before: "remove ", spec: spec))
    #expect(candidates == ["dense2", "dense3"])
  }

  @Test func aRecoveryCopyIsSavedWithoutTakingTheSessionsPlace() throws {
    let folder = temporaryFolder()
    let engine = engine()
    _ = engine.execute("save \(folder)/mine")
    _ = engine.execute("batch 11")
    #expect(engine.hasUnsavedChanges)
    let path = try engine.saveRecoveryCopy(environment: ["XDG_STATE_HOME": folder + "/state"]).get()
    #expect(path.hasPrefix(folder + "/state/specbench/recovered/spirals-") && path.hasSuffix(".json"))
    #expect(try SessionFile.load(path).spec.training.batchSize == 11)
    #expect(engine.path == folder + "/mine.json", "the session still belongs to its own file")
    #expect(engine.hasUnsavedChanges, "the recovery copy does not count as a save")
    #expect(try SessionFile.load(folder + "/mine.json").spec.training.batchSize == 64)
  }
}

/// The registry is a value the engine is given: a program (or a test) offers its own backends,
/// each with settings of its own, and the engine knows no others.
@Suite("Backends handed to the engine")
struct BackendRegistryTests {
  /// The reference backend under another name, with a setting: how many steps it has made.
  struct Labelled: Backend {
    let name: String
    let counter: Counter
    var summary: String { "the reference backend, counting its trainers" }
    var capabilities: Capabilities { ReferenceBackend().capabilities }
    func makeTrainer(spec: SessionSpec, state: TrainingState, data: DataSplit) throws(BackendError) -> any Trainer {
      counter.add()
      return try ReferenceBackend().makeTrainer(spec: spec, state: state, data: data)
    }
  }

  final class Counter: Sendable {
    private let value = Mutex(0)
    func add() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
  }

  /// A backend without lbfgs (as jax is): the reference backend with one optimizer less.
  struct WithoutLBFGS: Backend {
    var name: String { "nolbfgs" }
    var summary: String { "the reference backend without lbfgs" }
    var capabilities: Capabilities {
      var capabilities = ReferenceBackend().capabilities
      capabilities.optimizers.remove("lbfgs")
      return capabilities
    }
    func makeTrainer(spec: SessionSpec, state: TrainingState, data: DataSplit) throws(BackendError) -> any Trainer {
      try ReferenceBackend().makeTrainer(spec: spec, state: state, data: data)
    }
  }

  /// Neither a backend swap nor an optimizer change may leave a session its backend cannot
  /// train: each is refused by the field's path, and nothing changes.
  @Test func aBackendAndAnOptimizerThatDoNotGoTogetherAreRefused() {
    let engine = SessionEngine.withDefaultSession(backends: BackendRegistry([ReferenceBackend(), WithoutLBFGS()]))
    #expect(!engine.execute("backend reference").failed && !engine.execute("optimizer lbfgs").failed)
    let swap = engine.execute("backend nolbfgs")
    #expect(swap.failed && swap.text.contains("optimizer.type: optimizer \"lbfgs\" is not supported by this backend"), "\(swap.text)")
    #expect(engine.spec.backend == "reference")
    #expect(!engine.execute("optimizer adam").failed && !engine.execute("backend nolbfgs").failed)
    let journal = engine.spec.journal
    let change = engine.execute("optimizer lbfgs line_search=strong_wolfe")
    #expect(change.failed && change.text.contains("the nolbfgs backend cannot train that"), "\(change.text)")
    #expect(engine.spec.optimizer.name == "adam" && engine.spec.journal == journal)
  }

  @Test func anEngineTrainsOnTheBackendsItWasGiven() {
    let counter = Counter()
    let engine = SessionEngine.withDefaultSession(
      backends: BackendRegistry([ReferenceBackend(), Labelled(name: "labelled", counter: counter)]))
    #expect(engine.backendNames == ["reference", "labelled"])
    #expect(!engine.execute("backend labelled").failed)
    let refused = engine.execute("backend fast")
    #expect(refused.failed && refused.text.contains("no backend named \"fast\"; backends: reference, labelled"), "\(refused.text)")
    #expect(!engine.execute("train 4 --wait").failed)
    waitIdle(engine)
    #expect(engine.state?.step == 4)
    #expect(counter.count >= 1, "the engine's own backend made the trainer")
    #expect(Completion.candidates(before: "backend l", spec: engine.spec, backends: engine.backendNames) == ["labelled"])
  }
}
