import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Backends
@testable import Session

/// The trainer contract for engines that are not in this process and step at a time: a test
/// engine that makes several updates a call (on the reference trainer) and can be made to fail
/// in the middle of a chunk, as a worker process that dies would.
@Suite("Trainers that work in chunks")
struct ChunkedTrainerTests {
  /// The reference backend, `stepsPerCall` updates a call; its engine "dies" when asked for update `failAt`.
  struct ChunkedBackend: Backend {
    var stepsPerCall: Int
    var failAt: Int?
    let log: ChunkLog
    var name: String { "chunked" }
    var summary: String { "the reference trainer, in chunks" }
    var capabilities: Capabilities { .everything }
    func makeTrainer(spec: SessionSpec, state: TrainingState, data: DataSplit) throws(BackendError) -> any Trainer {
      ChunkedTrainer(
        inner: try ReferenceBackend().makeTrainer(spec: spec, state: state, data: data), stepsPerCall: stepsPerCall, failAt: failAt,
        log: log, rebuild: { (state) throws(BackendError) in try ReferenceBackend().makeTrainer(spec: spec, state: state, data: data) })
    }
  }

  /// The chunk sizes the runner asked for, and how many were asked with stopAtEpochEnd.
  final class ChunkLog: @unchecked Sendable {
    // @unchecked: a test's trainers use it from the one thread that runs the test.
    var sizes: [Int] = []
    var epochStops = 0
    /// The updates kept each time a rule fired inside a chunk.
    var kept: [Int] = []
  }

  final class ChunkedTrainer: Trainer {
    var inner: any Trainer
    let stepsPerCall: Int
    let failAt: Int?
    let log: ChunkLog
    var dead = false
    /// A trainer at a state, and the state before the last chunk: what `keepFirst` goes back to.
    let rebuild: (TrainingState) throws(BackendError) -> any Trainer
    var beforeChunk: TrainingState?

    init(
      inner: any Trainer, stepsPerCall: Int, failAt: Int?, log: ChunkLog,
      rebuild: @escaping (TrainingState) throws(BackendError) -> any Trainer
    ) {
      (self.inner, self.stepsPerCall, self.failAt, self.log, self.rebuild) = (inner, stepsPerCall, failAt, log, rebuild)
    }

    /// Goes back to the state before the chunk and makes its first `count` updates again.
    func keepFirst(_ count: Int, of chunk: TrainingChunk) throws(BackendError) {
      guard count < chunk.results.count, let beforeChunk else { return }
      log.kept.append(count)
      inner = try rebuild(beforeChunk)
      for _ in 0..<count { _ = try inner.trainStep() }
    }

    var step: Int { inner.step }
    var epoch: Int { inner.epoch }
    var died: BackendError { .engineFailed(backend: "chunked", reason: "the worker process exited with status 9") }

    func trainStep() throws(BackendError) -> StepResult { try inner.trainStep() }

    func train(upTo limit: Int, stopAtEpochEnd: Bool) -> TrainingChunk {
      log.sizes.append(limit - step)
      if stopAtEpochEnd { log.epochStops += 1 }
      beforeChunk = try? inner.exportState()
      guard let failAt, limit >= failAt else { return inner.train(upTo: limit, stopAtEpochEnd: stopAtEpochEnd) }
      // The updates before `failAt` are made; asked for that one, the engine dies.
      var chunk = inner.train(upTo: failAt - 1, stopAtEpochEnd: stopAtEpochEnd)
      let stoppedAtEpochEnd = stopAtEpochEnd && chunk.results.last?.endedEpoch == true
      if chunk.failure == nil && step == failAt - 1 && !stoppedAtEpochEnd {
        dead = true
        chunk.failure = died
      }
      return chunk
    }

    func evaluate(_ part: DataPart) throws(BackendError) -> Evaluation? {
      if dead { throw died }
      return try inner.evaluate(part)
    }

    func predict(_ inputs: Tensor) throws(BackendError) -> Tensor {
      if dead { throw died }
      return try inner.predict(inputs)
    }

    func exportState(parametersOnly: Bool) throws(BackendError) -> TrainingState {
      if dead { throw died }
      return try inner.exportState(parametersOnly: parametersOnly)
    }

    func gradientNorms() -> [String: Float] { inner.gradientNorms() }
  }

  static let spec = makeSpec(
    layers: [dense("d1", 8, .tanh), LayerSpec(name: "drop", kind: .dropout(rate: 0.2)), dense("d2", 3)],
    optimizer: .adam(.init(lr: 0.01, weightDecay: 0)), validationFraction: 0.2)

  func bits(_ state: TrainingState) -> [String: [UInt32]] { state.tensors.mapValues { $0.scalars.map(\.bitPattern) } }

  @Test func chunksGiveTheSameBitsAsOneStepAtATime() throws {
    let log = ChunkLog()
    let (chunked, summary) = try train(SessionBundle(spec: Self.spec), steps: 50, on: ChunkedBackend(stepsPerCall: 7, log: log))
    let (straight, _) = try train(SessionBundle(spec: Self.spec), steps: 50)
    #expect(summary.reason == .steps && summary.step == 50)
    #expect(bits(try chunked.trainingState()) == bits(try straight.trainingState()))
    #expect(chunked.spec.history.trainLoss == straight.spec.history.trainLoss)
    #expect(chunked.spec.history.valLoss == straight.spec.history.valLoss, "validations at the same epoch ends")
    // The runner asked for chunks of up to 7, never past the limit, stopping at epoch ends
    // (there is a validation split).
    #expect(log.sizes.allSatisfy { $0 >= 1 && $0 <= 7 } && log.sizes.count < 50, "\(log.sizes)")
    #expect(log.epochStops == log.sizes.count)
  }

  /// The engine dies in the middle of a chunk: the updates before it count, the state is that
  /// of the last good step (rebuilt, since the engine cannot be asked), and the message names
  /// the backend and the reason.
  @Test func aFailureInTheMiddleOfAChunkKeepsTheLastGoodStep() throws {
    let log = ChunkLog()
    let run = try TrainingRun(
      bundle: SessionBundle(spec: Self.spec), folder: "", backend: ChunkedBackend(stepsPerCall: 7, failAt: 23, log: log))
    let summary = run.run(extraSteps: 100)
    #expect(summary.reason == .engineFailed)
    #expect(summary.step == 22)
    #expect(
      summary.message == "the chunked backend failed: the worker process exited with status 9; the state is kept from step 22",
      "\(summary.message)")
    let (straight, _) = try train(SessionBundle(spec: Self.spec), steps: 22)
    let kept = try run.bundle.trainingState()
    #expect(kept.step == 22)
    #expect(bits(kept) == bits(try straight.trainingState()))
    #expect(run.spec.history.trainLoss.last?.step == 22)
    #expect(run.spec.history.events.contains { $0.kind == "failed" && $0.step == 22 })
    #expect(summary.train.loss.isFinite, "the final evaluation ran on the rebuilt trainer")
  }

  /// A rule that fires inside a chunk stops the run at the chunk's end: the boundary the
  /// engine offers.
  @Test func stopRulesFoldOverAChunk() throws {
    var spec = Self.spec
    spec.data.validationFraction = 0
    spec.training.stop = [.targetLoss(value: 1e9), .maxSteps(steps: 1000)]
    let log = ChunkLog()
    let (bundle, summary) = try train(SessionBundle(spec: spec), steps: 100, on: ChunkedBackend(stepsPerCall: 5, log: log))
    #expect(summary.reason == .targetLoss)
    #expect(summary.step == 1, "the first loss is under the target: the engine made its whole chunk, then kept only that update")
    #expect(bundle.spec.history.trainLoss.map(\.step) == [1])
    #expect(log.sizes == [5] && log.epochStops == 0 && log.kept == [1])
    let (straight, _) = try train(SessionBundle(spec: spec), steps: 100)
    #expect(bits(try bundle.trainingState()) == bits(try straight.trainingState()), "the state of a run that stopped after update 1")
  }
}
