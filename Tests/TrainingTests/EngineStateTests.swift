import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

@testable import Backends
@testable import Session

/// State a backend keeps for itself, under `engine/BACKEND/NAME`: saved and loaded with the
/// session, given back to that backend, dropped with an event when another one trains.
@Suite("Backend-private state")
struct EngineStateTests {
  static let spec = makeSpec(layers: [dense("d1", 4, .tanh), dense("d2", 3)])

  func state(with extra: [String: StoredTensor]) throws -> TrainingState {
    var state = try Self.spec.initialTrainingState()
    state.tensors.merge(extra) { $1 }
    return state
  }

  @Test func itIsSavedAndLoadedWithTheSession() throws {
    let folder = temporaryFolder()
    let extra = ["engine/laplace/dense1.weight.precision": StoredTensor(shape: [4, 2], repeating: 2.5)]
    try SessionFile.save(SessionBundle(spec: Self.spec, state: try state(with: extra)), to: folder + "/s")
    let loaded = try SessionFile.load(folder + "/s.json")
    #expect(loaded.tensors?["engine/laplace/dense1.weight.precision"] == extra.values.first)
  }

  @Test func aNonFiniteValueInItIsRefused() throws {
    let bad = ["engine/laplace/x": StoredTensor(shape: [2], scalars: [1, .nan])]
    let problems = Self.spec.stateProblems(try state(with: bad).tensors)
    #expect(problems == ["engine/laplace/x holds a non-finite value (nan) at flat index 1"])
  }

  @Test func itsOwnerTrainsWithItAndAnotherBackendDropsIt() throws {
    let own = ["engine/reference/note": StoredTensor(shape: [3], scalars: [1, 2, 3])]
    let foreign = ["engine/laplace/a": StoredTensor(shape: [1], repeating: 1), "engine/laplace/b": StoredTensor(shape: [1], repeating: 2)]
    let bundle = SessionBundle(spec: Self.spec, state: try state(with: own.merging(foreign) { $1 }))
    let (trained, _) = try train(bundle, steps: 5)
    let tensors = try trained.trainingState().tensors
    #expect(tensors["engine/reference/note"] == own.values.first, "the owner's state is kept as it was")
    #expect(tensors["engine/laplace/a"] == nil && tensors["engine/laplace/b"] == nil)
    let event = try #require(trained.spec.history.events.first { $0.kind == "engine" })
    #expect(
      event.detail == "dropped 2 tensors that laplace keeps for itself (engine/laplace/a, engine/laplace/b); reference has no use for them")
  }

  @Test func anArchitectureChangeKeepsIt() throws {
    var wider = Self.spec
    wider.model.layers[0] = dense("d1", 6, .tanh)
    let extra = ["engine/laplace/x": StoredTensor(shape: [1], repeating: 7)]
    let (mapped, _, _) = try StateMapping.architectureChange(to: wider, state: try state(with: extra))
    #expect(mapped.tensors["engine/laplace/x"] == extra.values.first)
  }
}
