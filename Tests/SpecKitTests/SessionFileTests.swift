import Foundation
import SpecBenchTestSupport
import Testing

@testable import SpecKit

@Suite("Session files")
struct SessionFileTests {
  func initialBundle(_ name: String = "spirals") throws -> SessionBundle {
    var spec = try SessionFile.load(repositoryPath("sessions/\(name).json")).spec
    spec.state = spec.initialStateRecord()
    return SessionBundle(spec: spec, tensors: try spec.initialTensors())
  }

  @Test func saveThenLoadGivesTheSameSessionAndTensors() throws {
    let folder = temporaryFolder()
    let bundle = try initialBundle()
    let written = try SessionFile.save(bundle, to: folder + "/nested/dir/run")
    #expect(FileManager.default.fileExists(atPath: folder + "/nested/dir/run.json"))
    #expect(written.state?.tensors == "run.safetensors")
    let loaded = try SessionFile.load(folder + "/nested/dir/run.json")
    #expect(loaded.spec == written)
    #expect(loaded.tensors == bundle.tensors)
    // Saving again gives byte-identical files.
    let first = try Data(contentsOf: URL(fileURLWithPath: folder + "/nested/dir/run.json"))
    try SessionFile.save(loaded, to: folder + "/nested/dir/run.json")
    #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/nested/dir/run.json")) == first)
  }

  @Test func theHashInTheSpecIsTheTensorFilesSHA256() throws {
    let folder = temporaryFolder()
    let written = try SessionFile.save(try initialBundle(), to: folder + "/s")
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/s.safetensors")))
    #expect(written.state?.sha256 == SessionFile.sha256Hex(bytes))
    #expect(SessionFile.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  }

  @Test func aChangedTensorFileIsRefusedByItsHash() throws {
    let folder = temporaryFolder()
    try SessionFile.save(try initialBundle(), to: folder + "/s")
    let url = URL(fileURLWithPath: folder + "/s.safetensors")
    var bytes = Array(try Data(contentsOf: url))
    bytes[bytes.count - 1] ^= 0x01
    try Data(bytes).write(to: url)
    do {
      _ = try SessionFile.load(folder + "/s.json")
      Issue.record("expected a refusal")
    } catch {
      #expect(error.description.contains("has SHA-256"))
      #expect(error.description.contains("state.sha256 says"))
    }
  }

  /// Rewrites the tensor file and the hash so only the named problem remains.
  func loadWithTensors(_ edit: (inout [String: StoredTensor]) -> Void) throws -> SpecError? {
    let folder = temporaryFolder()
    let written = try SessionFile.save(try initialBundle(), to: folder + "/s")
    var tensors = try SessionFile.load(folder + "/s.json").tensors!
    edit(&tensors)
    let bytes = SafeTensors.encode(.init(tensors: tensors))
    try Data(bytes).write(to: URL(fileURLWithPath: folder + "/s.safetensors"))
    var spec = written
    spec.state?.sha256 = SessionFile.sha256Hex(bytes)
    try spec.canonicalText.write(toFile: folder + "/s.json", atomically: true, encoding: .utf8)
    return loadError(folder + "/s.json")
  }

  @Test func missingUnexpectedAndMisshapenTensorsAreAllNamed() throws {
    let error = try #require(
      try loadWithTensors { t in
        t["param/dense1.weight"] = nil
        t["param/extra"] = StoredTensor(shape: [1], scalars: [0])
        t["opt/dense2.bias/exp_avg"] = StoredTensor(shape: [3], scalars: [0, 0, 0])
      })
    guard case .stateMismatch(_, let problems) = error else {
      Issue.record("wrong error \(error)")
      return
    }
    #expect(problems.contains("missing tensor param/dense1.weight of shape [64, 2]"))
    #expect(problems.contains("unexpected tensor param/extra: the model and optimizer have no such tensor"))
    #expect(problems.contains("opt/dense2.bias/exp_avg has shape [3], but the model needs [64]"))
    #expect(problems.count == 3)
  }

  @Test func nonFiniteStateIsRefused() throws {
    let error = try #require(try loadWithTensors { t in t["param/dense3.bias"]!.scalars[1] = .nan })
    #expect(error.description.contains("param/dense3.bias holds a non-finite value (nan) at flat index 1"))
  }

  @Test func aCorruptTensorFileWithAMatchingHashIsRefusedAsSafetensors() throws {
    let folder = temporaryFolder()
    var spec = try SessionFile.save(try initialBundle(), to: folder + "/s")
    let junk = Array("not a safetensors file".utf8)
    try Data(junk).write(to: URL(fileURLWithPath: folder + "/s.safetensors"))
    spec.state?.sha256 = SessionFile.sha256Hex(junk)
    try spec.canonicalText.write(toFile: folder + "/s.json", atomically: true, encoding: .utf8)
    #expect(throws: SpecError.self) { try SessionFile.load(folder + "/s.json") }
    do { _ = try SessionFile.load(folder + "/s.json") } catch {
      guard case .safetensors = error else {
        Issue.record("wrong error: \(error)")
        return
      }
      #expect(error.description.contains("not a valid safetensors file"))
    }
  }

  @Test func aMissingTensorFileIsNamed() throws {
    let folder = temporaryFolder()
    try SessionFile.save(try initialBundle(), to: folder + "/s")
    try FileManager.default.removeItem(atPath: folder + "/s.safetensors")
    #expect(loadRefusal(folder + "/s")?.description == "cannot read \(folder)/s.safetensors: no such file")
  }

  @Test func savingTensorsThatDoNotFitTheModelIsRefusedAndWritesNothing() throws {
    let folder = temporaryFolder()
    var bundle = try initialBundle()
    bundle.tensors?["param/dense1.weight"] = StoredTensor(shape: [1], scalars: [0])
    #expect(throws: SpecError.self) { try SessionFile.save(bundle, to: folder + "/s") }
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
  }

  @Test func aFailedSaveLeavesThePreviousFilesAndNoTemporaries() throws {
    let folder = temporaryFolder()
    let bundle = try initialBundle()
    try SessionFile.save(bundle, to: folder + "/s")
    let tensorsBefore = try Data(contentsOf: URL(fileURLWithPath: folder + "/s.safetensors"))
    // Make the JSON's final name a non-empty folder: staging succeeds, the rename fails.
    try FileManager.default.removeItem(atPath: folder + "/s.json")
    try FileManager.default.createDirectory(atPath: folder + "/s.json/blocker", withIntermediateDirectories: true)
    var changed = bundle
    changed.tensors?["param/dense1.bias"]?.scalars[0] = 42
    #expect(throws: SpecError.self) { try SessionFile.save(changed, to: folder + "/s") }
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".tmp") }
    #expect(leftovers.isEmpty)
    // The tensor file that was renamed into place first has been put back.
    #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/s.safetensors")) == tensorsBefore)
  }

  @Test func aSessionWithoutStateSavesOnlyItsJSON() throws {
    let folder = temporaryFolder()
    var bundle = try initialBundle()
    bundle.tensors = nil
    let written = try SessionFile.save(bundle, to: folder + "/plain.json")
    #expect(written.state == nil)
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["plain.json"])
  }

  @Test func theFileNameIsTheDefaultSessionName() throws {
    let folder = temporaryFolder()
    let text = baseSessionText.replacingOccurrences(of: "\"name\": \"t\",", with: "")
    try text.write(toFile: folder + "/my-run.json", atomically: true, encoding: .utf8)
    #expect(try SessionFile.load(folder + "/my-run.json").spec.name == "my-run")
  }

  @Test func everyExampleSessionLoadsAndInitialises() throws {
    let names = try FileManager.default.contentsOfDirectory(atPath: repositoryPath("sessions")).filter { $0.hasSuffix(".json") }
    #expect(names.count >= 5)
    for name in names {
      let spec = try SessionFile.load(repositoryPath("sessions/\(name)")).spec
      #expect(spec.validate().isEmpty, "\(name)")
      let tensors = try spec.initialTensors()
      #expect(spec.stateProblems(tensors).isEmpty, "\(name)")
    }
  }
}

@Suite("Shapes and state layout")
struct ShapeTests {
  @Test func shapesAndParameterCountsFlowThroughEveryLayerType() throws {
    let model = ModelSpec(
      input: [3, 4],
      layers: [
        LayerSpec(name: "ln", kind: .layerNorm(eps: 1e-5)),
        LayerSpec(name: "bn", kind: .batchNorm(eps: 1e-5, momentum: 0.1)),
        LayerSpec(name: "f", kind: .flatten),
        LayerSpec(name: "d", kind: .dense(DenseLayer(units: 5))),
        LayerSpec(name: "drop", kind: .dropout(rate: 0.5)),
        LayerSpec(name: "act", kind: .activation(function: .relu)),
        LayerSpec(name: "nb", kind: .dense(DenseLayer(units: 2, useBias: false))),
      ])
    let shapes = try model.layerShapes()
    #expect(shapes.map(\.outputShape) == [[3, 4], [3, 4], [12], [5], [5], [5], [2]])
    #expect(shapes.map(\.parameterCount) == [8, 6, 0, 65, 0, 0, 10])
    #expect(shapes[0].tensors.map(\.shape) == [[4], [4]])  // layer_norm: last axis
    #expect(shapes[1].tensors.map(\.name) == ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"])
    #expect(shapes[1].tensors.map(\.shape) == [[3], [3], [3], [3]])  // batch_norm: first sample axis
    #expect(shapes[3].tensors.map(\.shape) == [[5, 12], [5]])  // PyTorch's [out, in]
    #expect(model.parameterCount == 89)
  }

  @Test func denseAfterAMultiAxisInputIsRefused() {
    let model = ModelSpec(input: [2, 2], layers: [LayerSpec(name: "d", kind: .dense(DenseLayer(units: 1)))])
    #expect(throws: SpecError.self) { try model.layerShapes() }
  }

  @Test(arguments: [
    (OptimizerSpec.sgd(.init(lr: 0.1)), [String]()),
    (.sgd(.init(lr: 0.1, momentum: 0.9)), ["momentum_buffer"]),
    (.adam(.init(weightDecay: 0)), ["exp_avg", "exp_avg_sq"]),
    (.adamw(.init(weightDecay: 0.01, amsgrad: true)), ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]),
    (.rmsprop(.init()), ["square_avg"]),
    (.rmsprop(.init(momentum: 0.5, centered: true)), ["square_avg", "momentum_buffer", "grad_avg"]),
    (.adagrad(.init()), ["sum"]),
  ])
  func optimizerSlotsFollowTheirSettings(optimizer: OptimizerSpec, slots: [String]) {
    #expect(optimizer.slots.map(\.slot.rawValue) == slots)
  }

  @Test func stateLayoutUsesTheFormatsNames() throws {
    var spec = try SessionSpec.decode(baseDocument())
    spec.model.layers.insert(LayerSpec(name: "bn", kind: .batchNorm(eps: 1e-5, momentum: 0.1)), at: 0)
    let names = try spec.stateLayout().map(\.name)
    #expect(
      names == [
        "param/bn.weight", "param/bn.bias", "buffer/bn.running_mean", "buffer/bn.running_var",
        "param/dense1.weight", "param/dense1.bias", "param/dense2.weight", "param/dense2.bias",
        "opt/bn.weight/exp_avg", "opt/bn.weight/exp_avg_sq", "opt/bn.bias/exp_avg", "opt/bn.bias/exp_avg_sq",
        "opt/dense1.weight/exp_avg", "opt/dense1.weight/exp_avg_sq", "opt/dense1.bias/exp_avg", "opt/dense1.bias/exp_avg_sq",
        "opt/dense2.weight/exp_avg", "opt/dense2.weight/exp_avg_sq", "opt/dense2.bias/exp_avg", "opt/dense2.bias/exp_avg_sq",
      ])
  }

  @Test func initialTensorsUseTheDocumentedInitializers() throws {
    var spec = try SessionSpec.decode(
      baseDocument().setting("optimizer", to: json(#"{"type": "adagrad", "initial_accumulator_value": 0.5}"#)))
    spec.training.seed = 77
    let tensors = try spec.initialTensors()
    let expected = Initializer.glorotUniform.values(count: 16, fanIn: 2, fanOut: 8, seed: 77, tensorName: "dense1.weight")
    #expect(tensors["param/dense1.weight"]?.scalars == expected)
    #expect(tensors["param/dense1.bias"]?.scalars == Array(repeating: 0, count: 8))
    #expect(tensors["opt/dense1.weight/sum"]?.scalars == Array(repeating: 0.5, count: 16))
  }
}

@Suite("Schedules")
struct ScheduleTests {
  @Test func learningRatesFollowTheFormulas() {
    let lr = 0.1
    #expect(ScheduleSpec.constant.learningRate(at: 7, base: lr) == 0.1)
    #expect(ScheduleSpec.step(stepSize: 3, gamma: 0.5).learningRate(at: 3, base: lr) == 0.1)
    #expect(ScheduleSpec.step(stepSize: 3, gamma: 0.5).learningRate(at: 4, base: lr) == 0.05)
    #expect(ScheduleSpec.exponential(gamma: 0.9).learningRate(at: 3, base: lr) == lr * 0.81)
    #expect(ScheduleSpec.cosine(tMax: 10, etaMin: 0).learningRate(at: 1, base: lr) == 0.1)
    #expect(abs(ScheduleSpec.cosine(tMax: 10, etaMin: 0).learningRate(at: 6, base: lr) - 0.05) < 1e-15)
    #expect(ScheduleSpec.cosine(tMax: 10, etaMin: 0.01).learningRate(at: 50, base: lr) == 0.01)
    let warm = ScheduleSpec.warmupCosine(warmupSteps: 4, tMax: 14, etaMin: 0)
    #expect(warm.learningRate(at: 1, base: lr) == 0.025)
    #expect(warm.learningRate(at: 4, base: lr) == 0.1)
    #expect(warm.learningRate(at: 5, base: lr) == 0.1)
    #expect(abs(warm.learningRate(at: 10, base: lr) - 0.05) < 1e-15)
    #expect(warm.learningRate(at: 100, base: lr) == 0)
  }
}
