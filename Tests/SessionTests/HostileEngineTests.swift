import Foundation
import SpecBenchTestSupport
import SpecKit
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
