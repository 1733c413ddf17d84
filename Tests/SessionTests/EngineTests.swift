import Backends
import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

@testable import Session

extension CommandOutcome {
  var text: String {
    switch self {
    case .done(let t), .failed(let t), .waiting(let t): t
    case .drawing(let d): d.render(width: 80).plainText
    case .quit: "quit"
    case .dashboard: "dashboard"
    }
  }
  var failed: Bool { if case .failed = self { true } else { false } }
}

/// What runs command lines: an engine, or a workbench of them.
protocol RunsLines { func execute(_ line: String) -> CommandOutcome }
extension SessionEngine: RunsLines {}
extension Workbench: RunsLines {}

/// Runs lines, failing the test on any command error.
@discardableResult
func run(_ engine: some RunsLines, _ lines: String..., sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [CommandOutcome] {
  lines.map { line in
    let outcome = engine.execute(line)
    #expect(!outcome.failed, "\(line): \(outcome.text)", sourceLocation: sourceLocation)
    return outcome
  }
}

/// Polls until `condition` holds or `seconds` pass (the worker runs on its own queue); a
/// timeout is a failure of the test that waited, never a silent pass.
func waitUntil(seconds: Double = 30, sourceLocation: Testing.SourceLocation = #_sourceLocation, _ condition: () -> Bool) {
  let deadline = Date().addingTimeInterval(seconds)
  while !condition() && Date() < deadline { Thread.sleep(forTimeInterval: 0.002) }
  if !condition() { Issue.record("the condition did not hold within \(seconds) s", sourceLocation: sourceLocation) }
}

/// Waits for the worker to finish (a failure after a minute), then takes its session into the
/// engine (`refresh`: properties never do).
func waitIdle(_ engine: SessionEngine, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
  waitUntil(seconds: 60, sourceLocation: sourceLocation) { !engine.isTraining }
  engine.refresh()
}

@Suite("Session engine", .serialized)
struct EngineTests {
  static let build = [
    "new t --input 2", "data spirals samples=120 classes=3 noise=0.1 seed=3", "add dense 16 relu", "add dropout 0.1", "add dense 3",
    "loss softmax_cross_entropy", "optimizer adam lr=0.01", "batch 16", "seed 4", "stop max_steps 40",
  ]

  func built() -> SessionEngine {
    let engine = SessionEngine(bundle: SessionBundle(spec: SessionEngine.emptySpec(name: "x", input: [2])))
    for line in Self.build { run(engine, line) }
    // The tests compare with headless runs on reference (a new session would take fast).
    run(engine, "backend reference")
    return engine
  }

  @Test func commandsBuildTheSpec() throws {
    let engine = built()
    #expect(engine.spec.model.layers.map(\.name) == ["dense1", "dropout1", "dense2"])
    #expect(engine.spec.training.batchSize == 16 && engine.spec.training.seed == 4)
    #expect(engine.spec.training.stop == [.maxSteps(steps: 40)])
    #expect(engine.spec.optimizer == .adam(.init(lr: 0.01, weightDecay: 0)))
    #expect(engine.spec.journal == Self.build)
  }

  @Test func theJournalReplaysToTheSameSpec() {
    let engine = built()
    let replay = SessionEngine(bundle: SessionBundle(spec: SessionEngine.emptySpec(name: "other", input: [5])))
    for line in engine.spec.journal { run(replay, line) }
    run(replay, "backend reference")  // the backend is chosen, not an edit of the spec's journal
    #expect(replay.spec == engine.spec)
  }

  @Test func undoAndRedoAreInverses() {
    let engine = built()
    let before = engine.spec
    run(engine, "add dense 8 tanh", "set dense1 units=32")
    let after = engine.spec
    run(engine, "undo", "undo")
    #expect(engine.spec == before)
    run(engine, "redo", "redo")
    #expect(engine.spec == after)
    #expect(engine.execute("redo").failed)
    run(engine, "undo")
    run(engine, "batch 8")  // a new change clears the redo list
    #expect(engine.execute("redo").text == "nothing to redo")
  }

  @Test func undoAfterTrainingRevertsTheChangeNotTheTraining() throws {
    let engine = built()
    run(engine, "train 10")
    waitIdle(engine)
    let trained = try #require(engine.state)
    // Right after a change, undo restores exactly (the reshaped tensors come back as trained).
    run(engine, "set dense1 units=24", "undo")
    #expect(engine.state == trained)
    // After more training, undo reverts the layer change on the newer state.
    run(engine, "add dense 3 name=extra", "train 10")
    waitIdle(engine)
    let later = try #require(engine.state)
    run(engine, "undo")
    #expect(engine.spec.model.layers.map(\.name) == ["dense1", "dropout1", "dense2"])
    #expect(engine.state?.step == 20)
    #expect(engine.state?.tensors["param/dense1.weight"] == later.tensors["param/dense1.weight"])
    #expect(engine.state?.tensors["param/extra.weight"] == nil)
    #expect(engine.spec.history.trainLoss.count == 20, "the recorded losses stay")
    // new and load switch sessions: undo brings the whole session back.
    run(engine, "new other", "undo")
    #expect(engine.spec.model.layers.count == 3 && engine.state?.step == 20 && engine.spec.history.trainLoss.count == 20)
  }

  @Test func aFailedCommandChangesNothing() {
    let engine = built()
    let before = engine.spec
    for line in [
      "add dense -3", "optimizer adam lr=0", "remove nope", "loss cross", "set dense1 activation=rleu", "data spirals samples=0",
    ] {
      #expect(engine.execute(line).failed, "\(line)")
      #expect(engine.spec == before, "\(line)")
    }
  }

  @Test(arguments: [
    ("trian", "unknown command \"trian\" — did you mean \"train\"?"),
    (
      "add dense 8 rleu",
      "layer.activation: unknown activation \"rleu\"; expected one of identity, relu, leaky_relu, sigmoid, tanh, gelu, silu, softplus, elu, softmax (did you mean \"relu\"?)"
    ),
    (
      "optimizer adma",
      "optimizer.type: unknown optimizer \"adma\"; expected one of sgd, adam, adamw, rmsprop, adagrad, lbfgs (did you mean \"adam\"?)"
    ),
    ("optimizer adam lr=0", "optimizer.lr: must be a number > 0, got 0"),
    ("remove dense9", "no layer \"dense9\"; layers: dense1, dropout1, dense2 — did you mean \"dense1\"?"),
    ("show modle", "show: expected one of model, optimizer, data, training, spec — did you mean \"model\"?"),
    ("plot los", "plot: expected one of loss, accuracy, mae, r2, lr — did you mean \"loss\"?"),
    ("hist dense1.wieght", "did you mean \"dense1.weight\"?"),
    ("batch zero", "batch: the size must be a positive integer, such as batch 64"),
    ("stop max_steps -1", "training.stop[0].steps: must be a positive integer, got -1"),
    ("backend refernce", "no backend named \"refernce\"; backends: reference, fast, jax (did you mean \"reference\"?)"),
    ("resume", "nothing to resume; train starts training"),
    ("pause", "not training; train starts it"),
  ])
  func errorsNameTheWrongWordAndSuggestTheNearest(line: String, message: String) {
    let outcome = built().execute(line)
    #expect(outcome.failed)
    #expect(outcome.text.contains(message), "\(outcome.text)")
  }

  @Test func trainingRunsInTheBackgroundAndItsStateComesBack() throws {
    let engine = built()
    #expect(engine.execute("train").text == "training in the background from step 0 to step 40")
    waitIdle(engine)
    #expect(engine.state?.step == 40)
    #expect(engine.spec.history.trainLoss.count == 40)
    let events = engine.takeEvents()
    #expect(events.first?.kind == .started)
    #expect(events.last?.kind == .stopped && events.last!.text.hasPrefix("stopped by max_steps at step 40"))
    #expect(engine.execute("train").text.contains("already at step 40"))
    run(engine, "train 10")
    waitIdle(engine)
    #expect(engine.state?.step == 50)
  }

  /// After a run, `status`, `show` and `plot` give the metrics beyond the loss, each labelled by
  /// what it measures.
  @Test func statusShowAndPlotGiveTheMetricsLabelled() throws {
    let engine = built()
    run(engine, "data spirals samples=120 classes=3 noise=0.1 seed=3 validation_fraction=0.25", "train")
    waitIdle(engine)
    let status = engine.execute("status").text
    for fragment in ["batch loss ", "% over the last 40 batches", "validation loss ", "validation accuracy "] {
      #expect(status.contains(fragment), "\(fragment) in \(status)")
    }
    let overview = engine.execute("show").text
    #expect(overview.contains("validation at step 40: accuracy "), "\(overview)")
    #expect(overview.contains("over the last 40 recorded batches"), "\(overview)")
    guard case .drawing(.chart(let accuracy, _)) = engine.perform(.query(.plot(.accuracy, logScale: false, smoothing: nil))) else {
      Issue.record("plot accuracy draws a chart")
      return
    }
    #expect(accuracy.title == "accuracy (%)" && accuracy.series.map(\.name) == ["batch", "validation"])
    #expect(accuracy.series[0].points.allSatisfy { $0.y >= 0 && $0.y <= 100 })
    guard case .drawing(.note(let note)) = engine.execute("plot r2") else {
      Issue.record("plot r2 on a classifier says why there is nothing")
      return
    }
    #expect(note.hasPrefix("no R² recorded"), "\(note)")
  }

  /// The built session after `edit` and a finished `train`, and its state.
  func trainedAfter(_ edit: String) throws -> (SessionEngine, TrainingState) {
    let engine = built()
    run(engine, edit, "train")
    waitIdle(engine)
    return (engine, try #require(engine.state))
  }

  /// After an insert or a remove, SpecBench's own layer names follow the order, and a renamed
  /// layer's trained tensors (and optimizer slots) go with it; names a user gave stay.
  @Test func insertedAndRemovedLayersKeepNamesInOrderWithTheirState() throws {
    let (engine, trained) = try trainedAfter("stop max_steps 5")
    let outcome = engine.execute("insert 2 dense 8 relu")
    #expect(outcome.text.hasPrefix("inserted dense2 (dense); renamed dense2 → dense3 to follow the order"), "\(outcome.text)")
    #expect(engine.spec.model.layers.map(\.name) == ["dense1", "dropout1", "dense2", "dense3"])
    let state = try #require(engine.state)
    // The old dense2 (16 → 3) is dense3 now (8 → 3): its bias kept, under the new name, with its slots.
    #expect(state.tensors["param/dense3.bias"] == trained.tensors["param/dense2.bias"])
    #expect(state.tensors["opt/dense3.bias/exp_avg"] == trained.tensors["opt/dense2.bias/exp_avg"])
    #expect(state.tensors["param/dense1.weight"] == trained.tensors["param/dense1.weight"])
    #expect(state.tensors["param/dense2.weight"]?.shape == [8, 16])
    run(engine, "set dense3 name=logits")
    let removed = engine.execute("remove dense1")
    #expect(removed.text.hasPrefix("removed dense1; renamed dense2 → dense1 to follow the order"), "\(removed.text)")
    #expect(engine.spec.model.layers.map(\.name) == ["dropout1", "dense1", "logits"])
    // Undo puts back the names and the state.
    run(engine, "undo")
    #expect(engine.spec.model.layers.map(\.name) == ["dense1", "dropout1", "dense2", "logits"])
  }

  /// Undo takes back an edit but not the training done since, and says so.
  @Test func undoAfterTrainingKeepsTheTrainingAndSaysSo() throws {
    let (engine, trained) = try trainedAfter("batch 8")
    let undo = engine.execute("undo")
    #expect(
      undo.text == "undid batch 8 (the state trained since, at step 40, is kept); the last change is now stop max_steps 40", "\(undo.text)")
    #expect(engine.spec.training.batchSize == 16 && engine.state == trained)
    // Without training since, nothing is said of it.
    run(engine, "batch 4")
    #expect(engine.execute("undo").text == "undid batch 4; the last change is now stop max_steps 40")
  }

  @Test func trainingInTheWorkbenchEqualsTrainingHeadless() throws {
    let engine = built()
    run(engine, "train")
    waitIdle(engine)
    let headless = TrainingRunTestSupport.train(engine.spec, steps: 40)
    #expect(engine.state?.tensors == headless.tensors)
  }

  @Test func changingOnlyTheLearningRateKeepsTheMoments() throws {
    let engine = built()
    run(engine, "train 20")
    waitIdle(engine)
    let before = try #require(engine.state)
    run(engine, "optimizer lr=0.001")
    let after = try #require(engine.state)
    #expect(engine.spec.optimizer.learningRate == 0.001)
    for (name, tensor) in before.tensors { #expect(after.tensors[name] == tensor, "\(name)") }
    #expect(after.optimizerSteps == 20)
    #expect(engine.takeEvents().contains { $0.kind == .optimizer && $0.text.contains("kept exp_avg, exp_avg_sq and the update count") })
    // adam -> adamw keeps the moments; adam -> sgd starts fresh.
    run(engine, "optimizer adamw lr=0.001")
    #expect(engine.state?.tensors["opt/dense1.weight/exp_avg"] == before.tensors["opt/dense1.weight/exp_avg"])
    run(engine, "optimizer sgd lr=0.05 momentum=0.9")
    #expect(engine.state?.optimizerSteps == 0)
    #expect(engine.state?.tensors["opt/dense1.weight/momentum_buffer"]?.scalars.allSatisfy { $0 == 0 } == true)
    #expect(engine.state?.tensors["opt/dense1.weight/exp_avg"] == nil)
    #expect(engine.state?.tensors["param/dense1.weight"] == before.tensors["param/dense1.weight"])
  }

  @Test func hotSwappingTheOptimizerWhileTrainingKeepsTheMomentsAtAStepBoundary() throws {
    let engine = built()
    run(engine, "stop max_steps 100000", "train")
    waitUntil { engine.snapshot.step >= 20 }
    run(engine, "optimizer lr=0.002")
    waitUntil { engine.snapshot.history.events.contains { $0.kind == "optimizer" } }
    run(engine, "stop")
    waitIdle(engine)
    let events = engine.takeEvents()
    let change = try #require(events.first { $0.kind == .optimizer })
    #expect(change.text.contains("adam settings changed: kept exp_avg, exp_avg_sq and the update count"))
    #expect(engine.state!.optimizerSteps == engine.state!.step, "the update count went on without a restart")
    #expect(engine.spec.history.events.contains { $0.kind == "optimizer" })
  }

  /// "Adam first, L-BFGS to finish", and back, while training: each swap at a step boundary
  /// with its documented mapping (L-BFGS from an empty history, Adam's moments fresh).
  @Test func adamFirstThenLBFGSWhileTrainingAndBack() throws {
    let engine = built()
    run(engine, "batch 120", "stop max_steps 100000", "train")
    waitUntil { engine.snapshot.step >= 10 }
    run(engine, "optimizer lbfgs max_iter=3 line_search=strong_wolfe")
    waitUntil { engine.snapshot.optimizerReport != nil }
    let report = try #require(engine.snapshot.optimizerReport)
    #expect(report.contains("iteration") && report.contains("line search") && report.contains(", t "), "\(report)")
    run(engine, "optimizer adam lr=0.001")
    waitUntil { engine.snapshot.history.events.filter { $0.kind == "optimizer" }.count >= 2 }
    let at = engine.snapshot.step
    waitUntil { engine.snapshot.step > at + 3 }
    run(engine, "stop")
    waitIdle(engine)
    let changes = engine.spec.history.events.filter { $0.kind == "optimizer" }.map(\.detail)
    #expect(changes.count == 2)
    #expect(changes.first?.hasPrefix("adam -> lbfgs: fresh optimizer state (model/d, ") == true, "\(changes)")
    #expect(changes.last?.hasPrefix("lbfgs -> adam: fresh optimizer state (exp_avg, exp_avg_sq)") == true, "\(changes)")
    let state = try #require(engine.state)
    #expect(state.tensors["opt/model/d"] == nil && state.tensors["opt/dense1.weight/exp_avg"] != nil)
    #expect(engine.snapshot.optimizerReport == nil, "Adam's steps report no iterations")
  }

  /// Swapped in while idle: the state is a fresh L-BFGS state (n_iter 0, no pairs); training
  /// warns about batches smaller than the training set, fills the history and counts.
  @Test func lbfgsSwappedInWhileIdleStartsFromAnEmptyHistory() throws {
    let engine = built()
    run(engine, "train 10")
    waitIdle(engine)
    let trained = try #require(engine.state)
    run(engine, "optimizer lbfgs max_iter=4 history_size=2")
    let fresh = try #require(engine.state)
    #expect(fresh.tensors["opt/model/n_iter"]?.integers == [0])
    #expect(fresh.tensors["opt/model/old_dirs"]?.shape == [0, 99])
    #expect(fresh.tensors["param/dense2.weight"] == trained.tensors["param/dense2.weight"])
    let started = engine.execute("train 3")
    #expect(started.text.contains("warning: lbfgs assumes one fixed objective, but batch_size 16 is smaller than the 120 training samples"))
    waitIdle(engine)
    let after = try #require(engine.state)
    #expect((after.tensors["opt/model/n_iter"]?.integers?.first ?? 0) > 3)
    #expect(after.tensors["opt/model/old_dirs"]?.shape == [2, 99], "the history keeps history_size pairs")
    let status = engine.execute("status").text
    #expect(
      status.range(of: #"so far: \d+ L-BFGS iterations, \d+ evaluations, last t "#, options: .regularExpression) != nil,
      "\(status)")
    // A smaller history_size keeps the newest pair.
    run(engine, "optimizer history_size=1")
    let trimmed = try #require(engine.state)
    #expect(trimmed.tensors["opt/model/old_dirs"]?.shape == [1, 99])
    #expect(Array(trimmed.tensors["opt/model/old_dirs"]!.scalars) == Array(after.tensors["opt/model/old_dirs"]!.scalars[99...]))
    #expect(trimmed.tensors["opt/model/ro"]?.scalars == [after.tensors["opt/model/ro"]!.scalars[1]])
  }

  /// A change made while training reaches the running trainer (not a trainer rebuilt from the
  /// spec as it was): the steps after it use the new rate.
  @Test func aChangeWhileTrainingReachesTheRunningTrainer() throws {
    let engine = built()
    run(engine, "stop max_steps 100000", "train")
    waitUntil { engine.snapshot.step >= 10 }
    #expect(engine.snapshot.learningRate != 0.002)
    run(engine, "optimizer lr=0.002")
    waitUntil { engine.snapshot.learningRate == 0.002 }
    #expect(engine.snapshot.learningRate == 0.002, "the running trainer uses the new rate")
    run(engine, "schedule exponential gamma=0.5")
    let at = engine.snapshot.step
    waitUntil { engine.snapshot.step > at + 5 && (engine.snapshot.learningRate ?? 1) < 0.002 * 0.5 }
    #expect((engine.snapshot.learningRate ?? 1) < 0.001, "the running trainer follows the new schedule")
    run(engine, "stop")
    waitIdle(engine)
  }

  @Test func architectureEditsKeepTheTensorsWhoseNameAndShapeAreUnchanged() throws {
    let engine = built()
    run(engine, "train 10")
    waitIdle(engine)
    let before = try #require(engine.state)
    run(engine, "set dense1 units=24")
    let after = try #require(engine.state)
    #expect(after.tensors["param/dense1.weight"]?.shape == [24, 2])
    #expect(after.tensors["param/dense1.weight"] != before.tensors["param/dense1.weight"])
    #expect(after.tensors["param/dense2.bias"] == before.tensors["param/dense2.bias"])
    #expect(after.tensors["opt/dense2.bias/exp_avg"] == before.tensors["opt/dense2.bias/exp_avg"])
    let event = try #require(engine.takeEvents().last { $0.kind == .model })
    #expect(event.text == "kept param/dense2.bias; fresh param/dense1.weight, param/dense1.bias, param/dense2.weight")
  }

  @Test func pauseResumeAndSaveWhileTraining() throws {
    let folder = temporaryFolder()
    let engine = built()
    run(engine, "stop max_steps 100000", "train")
    waitUntil { engine.snapshot.step >= 5 }
    #expect(engine.trainingStatus == .running)
    run(engine, "save \(folder)/live")
    #expect(engine.takeEvents().contains { $0.kind == .saved && $0.text.hasPrefix("saved \(folder)/live.json with its state at step ") })
    run(engine, "pause")
    waitIdle(engine)
    #expect(engine.snapshot.status == .paused)
    #expect(engine.trainingStatus == .paused)
    let pausedAt = try #require(engine.state?.step)
    #expect(engine.execute("add dense 3").failed == false)  // edits are allowed while paused
    run(engine, "undo", "resume")
    waitUntil { engine.snapshot.step >= pausedAt + 5 }
    run(engine, "stop")
    waitIdle(engine)
    #expect(try #require(engine.state?.step) >= pausedAt + 5)
    #expect(engine.trainingStatus == .idle)
    #expect(try SessionFile.load(folder + "/live.json").spec.state != nil)
  }

  @Test func saveAndLoad() throws {
    let folder = temporaryFolder()
    let engine = built()
    run(engine, "train 5")
    waitIdle(engine)
    #expect(engine.hasUnsavedChanges)
    run(engine, "save \(folder)/s")
    #expect(!engine.hasUnsavedChanges)
    let other = SessionEngine.withDefaultSession()
    run(other, "load \(folder)/s.json")
    #expect(other.state == engine.state)
    #expect(other.spec.journal == engine.spec.journal)
    run(other, "undo")
    #expect(other.spec.name == "spirals")
  }

  @Test func plotsHistogramsAndHelp() throws {
    let engine = built()
    #expect(engine.execute("plot loss").text.contains("no losses recorded yet"))
    run(engine, "train 30")
    waitIdle(engine)
    let plot = engine.execute("plot loss --smooth 0.6").text
    #expect(plot.contains("loss  ━ train") && plot.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) })
    #expect(engine.execute("plot lr").text.contains("learning rate (constant)"))
    #expect(engine.execute("hist dense1.weight").text.hasPrefix("dense1.weight  (32 values)"))
    let help = engine.execute("help").text
    for name in CommandTable.names { #expect(help.contains("  \(name) ")) }
    #expect(engine.execute("help optimizer").text.contains("example: optimizer adam lr=0.003"))
    #expect(engine.execute("status").text.hasPrefix("idle at step 30"))
  }

  @Test func theDefaultSessionTrains() {
    let engine = SessionEngine.withDefaultSession()
    #expect(engine.spec.model.layers.count == 3)
    #expect(SpecParts.problems(of: engine.spec).isEmpty)
    #expect(!engine.hasUnsavedChanges)
  }

  @Test func anUnfinishedSessionSaysWhatIsMissing() {
    let engine = SessionEngine(bundle: SessionBundle(spec: SessionEngine.emptySpec(name: "x", input: [2])))
    let outcome = engine.execute("train")
    #expect(outcome.failed)
    #expect(outcome.text.contains("model.layers: must contain at least one layer"))
  }
}

/// Headless training of a spec, for comparisons.
enum TrainingRunTestSupport {
  static func train(_ spec: SessionSpec, steps: Int) -> TrainingState {
    var clean = spec
    clean.history = HistorySpec()
    clean.state = nil
    let run = try! TrainingRun(bundle: SessionBundle(spec: clean), folder: "", backend: ReferenceBackendForTests.make())
    run.run(extraSteps: steps)
    return try! run.bundle.trainingState()
  }
}

enum ReferenceBackendForTests {
  static func make() -> any Backend { ReferenceBackend() }
}

@Suite("REPL documentation")
struct ReplDocumentationTests {
  @Test func docsReplHasEveryCommandOfTheTable() throws {
    let doc = try String(contentsOfFile: repositoryPath("docs/repl.md"), encoding: .utf8)
    for info in CommandTable.all {
      #expect(doc.contains("\n### \(info.name)\n"), "docs/repl.md lacks a section for \(info.name)")
      #expect((try? CommandParser.parse(info.example)) != nil, "the example of \(info.name) parses: \(info.example)")
    }
  }
}

@Suite("Live backend swap", .serialized)
struct LiveSwapTests {
  /// A run that swaps reference → fast at step k follows a reference-only run over the next 100
  /// steps within 1e-4 relative (the issue's criterion), the state carried across the swap.
  @Test func swappingBackendsWhileTrainingKeepsTheLossCurve() throws {
    let lines = [
      "new swap --input 2", "data spirals samples=240 classes=3 noise=0.1 seed=3", "add dense 32 relu", "add dense 32 relu", "add dense 3",
      "optimizer adam lr=0.003", "batch 32", "stop max_steps 150",
    ]
    func engine() -> SessionEngine {
      let e = SessionEngine(bundle: SessionBundle(spec: SessionEngine.emptySpec(name: "x", input: [2])))
      for line in lines { run(e, line) }
      return e
    }
    let straight = engine()
    run(straight, "train")
    waitIdle(straight)

    let swapped = engine()
    run(swapped, "train 50")
    waitIdle(swapped)
    run(swapped, "backend fast", "train")
    waitIdle(swapped)
    #expect(swapped.spec.backend == "fast")
    #expect(swapped.state?.step == 150)

    let a = straight.spec.history.trainLoss.filter { $0.step > 50 }, b = swapped.spec.history.trainLoss.filter { $0.step > 50 }
    #expect(a.count == 100 && b.count == 100)
    let worst = zip(a, b).map { Double(abs($0.value - $1.value)) / Double(abs($0.value)) }.max() ?? 1
    #expect(worst < 1e-4, "largest relative difference over 100 steps: \(worst)")
  }

  @Test func swappingAtAStepBoundaryInTheMiddleOfARun() throws {
    let e = SessionEngine.withDefaultSession()
    run(e, "backend reference", "stop max_steps 100000", "train")
    waitUntil { e.snapshot.step >= 30 }
    run(e, "backend fast")
    waitUntil { e.snapshot.history.events.contains { $0.kind == "backend" } }
    let stepAtSwap = try #require(e.snapshot.history.events.first { $0.kind == "backend" }?.step)
    waitUntil { e.snapshot.step >= stepAtSwap + 30 }
    run(e, "stop")
    waitIdle(e)
    #expect(e.takeEvents().contains { $0.kind == .backend && $0.text.contains("reference -> fast, state carried across") })
    #expect(e.snapshot.backend == "fast")
    #expect(e.spec.history.trainLoss.allSatisfy { $0.value.isFinite })
  }
}

@Suite("Snapshots")
struct SnapshotTests {
  static func point(_ step: Int) -> MetricPoint { MetricPoint(step: step, value: Float(step) * 0.5) }

  /// The log keeps every point in order across chunks, and a copy taken mid-way (as a front end
  /// takes one with each snapshot) keeps what it saw while the original grows.
  @Test func aMetricLogKeepsEveryPointAndCopiesStayAsTheyWere() {
    let base = (1...10).map(Self.point)
    var log = MetricLog(base)
    #expect(log.count == 10 && log.points == base)
    var copies: [(Int, MetricLog)] = []
    for step in 11...(3 * MetricLog.chunkSize + 7) {
      log.append(Self.point(step))
      if step % 1000 == 0 { copies.append((step, log)) }
    }
    #expect(log.count == 3 * MetricLog.chunkSize + 7)
    #expect(log.points == (1...(3 * MetricLog.chunkSize + 7)).map(Self.point))
    #expect(log.last == Self.point(3 * MetricLog.chunkSize + 7))
    for (step, copy) in copies {
      #expect(copy.count == step && copy.points == (1...step).map(Self.point), "the copy at \(step)")
    }
    #expect(MetricLog().points.isEmpty && MetricLog().last == nil)
  }

  @Test func historyGoesInAndOutUnchanged() {
    var history = HistorySpec()
    history.trainLoss = (1...5000).map(Self.point)
    history.valLoss = [Self.point(100), Self.point(200)]
    history.events = [HistoryEvent(step: 7, kind: "backend", detail: "reference -> fast")]
    var snapshot = Snapshot()
    snapshot.history = history
    #expect(snapshot.history == history)
    snapshot.logs[.trainLoss]!.append(Self.point(5001))
    #expect(snapshot.history.trainLoss.count == 5001 && snapshot.trainLoss.last == Self.point(5001))
  }

  /// A backend swap while paused marks the loss chart where it happened, as one while running
  /// does; on an untrained session there is nothing to mark.
  @Test func aSwapWhilePausedIsAnEvent() throws {
    let engine = SessionEngine.withDefaultSession()
    run(engine, "backend fast")
    #expect(engine.spec.history.events.isEmpty && engine.takeEvents().isEmpty)
    run(engine, "backend reference", "stop max_steps 100000000", "train")
    waitUntil { engine.snapshot.step > 5 }
    run(engine, "pause")
    waitUntil { engine.trainingStatus == .paused }
    let step = engine.snapshot.step
    _ = engine.takeEvents()
    run(engine, "backend fast")
    #expect(engine.spec.history.events.last == HistoryEvent(step: step, kind: "backend", detail: "reference -> fast"))
    #expect(engine.takeEvents().contains { $0.kind == .backend && $0.text.hasPrefix("backend at step \(step): reference -> fast") })
    #expect(engine.snapshot.events.last?.kind == "backend")
    run(engine, "resume")
    waitUntil { engine.snapshot.step > step + 5 }
    run(engine, "stop")
    waitIdle(engine)
    #expect(engine.spec.history.events.contains { $0.kind == "backend" && $0.step == step })
  }
}
