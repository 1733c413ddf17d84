import Backends
import Datasets
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Session

/// The engine's contract with its front ends: typed commands, drawings rendered at the front
/// end's size, an explicit refresh, exports answered by the worker, one event format.
@Suite("The engine's contract with front ends", .serialized)
struct EngineContractTests {
  func engine() -> SessionEngine {
    let engine = SessionEngine.withDefaultSession()
    _ = engine.execute("stop max_steps 100000")
    return engine
  }

  @Test(arguments: [
    "train", "train 40", "train 40 --wait", "train --wait", "pause", "resume", "stop", "backend fast", "status", "show model", "plot loss",
    "plot lr --log", "plot loss --log --smooth 0.6", "hist dense1.weight", "backends", "history", "help", "help train", "save",
    "save \"my runs/a\"", "export onnx out.onnx --softmax", "load sessions/xor.json", "undo", "redo", "dashboard", "quit",
    "add dense 8 relu", "optimizer lr=0.003", "evaluate", "evaluate train", "show", "set input 1,28,28", "predict 0.5,-1.0 2.0,3.25",
    "posterior", "posterior off", "posterior subset=all hessian=kron prior=0.5 predictive=mc samples=30", "posterior noise=0.2",
    "calibration", "calibration validation", "variational dense2 prior=scale_mixture pi=0.3 kl_weight=0.01", "variational off",
    "add conv2d 16 3 relu padding=same", "add max_pool2d 2 stride=1,2", "add reshape 1,8,8", "filters conv2d1", "filters conv2d1 0",
    "data npz path=d.npz inputs=images targets=labels scale=0.00392156862745098",
    "fork wide", "fork back --from-step 100", "runs", "switch lr=0.01", "drop wide", "drop wide --force",
    "sweep optimizer.lr=0.001,0.01 layers[1].units=32,64", "sweep 'optimizer.betas=[0.9,0.99],[0.8,0.9]' --force", "compare",
    "compare a b --by time",
  ])
  func everyCommandsTextParsesBackToIt(_ line: String) throws {
    let command = try #require(try CommandParser.parse(line))
    #expect(try CommandParser.parse(command.text) == command, "\(line) → \(command.text)")
  }

  @Test func frontEndsRunTypedCommands() throws {
    let engine = engine()
    #expect(!engine.perform(.training(.train(steps: 30, wait: false))).failed)
    waitIdle(engine)
    #expect(engine.state?.step == 30)
    #expect(engine.perform(.training(.pause)).text == "not training; train starts it")
    // The journal holds the edits as typed; typed training commands are not edits.
    #expect(engine.spec.journal.last == "stop max_steps 100000")
    #expect(engine.perform(.edit(.batch(32), line: "batch 32")).text == "batch size 32")
    #expect(engine.spec.journal.last == "batch 32" && engine.spec.training.batchSize == 32)
  }

  @Test func aDrawingIsRenderedAtTheFrontEndsSize() throws {
    let engine = engine()
    guard case .drawing(let empty) = engine.execute("plot loss") else {
      Issue.record("plot gives a drawing")
      return
    }
    #expect(empty.render(width: 100).plainText == "no losses recorded yet; train first")
    _ = engine.execute("train 20 --wait")
    waitIdle(engine)
    for command in ["plot loss", "plot lr", "hist dense1.weight"] {
      guard case .drawing(let drawing) = engine.execute(command) else {
        Issue.record("\(command) gives a drawing")
        continue
      }
      for width in [50, 120] {
        let grid = drawing.render(width: width)
        #expect(grid.width == width, "\(command) at \(width)")
        #expect(grid.plainText.split(separator: "\n").allSatisfy { $0.count <= width })
      }
    }
  }

  @Test func propertiesNeverMutateRefreshDoes() throws {
    let engine = engine()
    _ = engine.execute("train 25")
    waitUntil { !engine.isTraining }
    // The worker has finished; until a refresh the engine still holds the session as it was.
    for _ in 0..<3 {
      _ = engine.snapshot
      _ = engine.trainingStatus
      _ = engine.isTraining
    }
    // (The live snapshot is the worker's, read under its lock.)
    #expect(engine.snapshot.step == 25)
    #expect(engine.state == nil && engine.spec.history.trainLoss.isEmpty)
    engine.refresh()
    #expect(engine.state?.step == 25 && engine.spec.history.trainLoss.count == 25)
  }

  /// Saves to `path` while training and checks that the answer came at once (not at the 30 s
  /// limit of an unanswered request).
  func saveIsAnsweredPromptly(
    _ engine: SessionEngine, to path: String, _ label: String, sourceLocation: Testing.SourceLocation = #_sourceLocation
  ) {
    let started = Date()
    let outcome = engine.execute("save \(path)")
    #expect(!outcome.failed, "\(label): \(outcome.text)", sourceLocation: sourceLocation)
    #expect(Date().timeIntervalSince(started) < 25, "\(label): the save waited for the 30 s limit", sourceLocation: sourceLocation)
    waitIdle(engine, sourceLocation: sourceLocation)
  }

  @Test func aSaveAsTrainingEndsIsAnsweredWithoutWaiting() throws {
    let folder = temporaryFolder()
    let engine = engine()
    // A save asked for just as a short run ends is answered — by the worker at its last
    // boundary, or with the session it ended with — never left to time out.
    for round in 0..<15 {
      _ = engine.execute("train \(1 + round % 3)")
      saveIsAnsweredPromptly(engine, to: "\(folder)/s\(round)", "round \(round)")
      let saved = try SessionFile.load("\(folder)/s\(round).json")
      #expect((saved.spec.state?.step ?? 0) <= engine.state?.step ?? 0)
    }
  }

  /// The window that made a save as a run ended wait 30 s: a request that reaches the worker
  /// after it answered its last requests, before the engine collects the finished run. It is
  /// answered at once with the session the run ended with.
  @Test func anExportAfterTheWorkerEndedIsAnsweredAtOnce() throws {
    let engine = engine()
    let run = try TrainingRun(
      bundle: engine.document.bundle, folder: "", backend: try BackendRegistry.builtIn.named(engine.spec.backend), recordLoad: false)
    let worker = TrainingWorker(run: run, extraSteps: 3)
    waitUntil { worker.shared.withLock { $0.finished } }
    let reply = TrainingWorker.ExportReply()
    let started = Date()
    worker.request(.export(reply))
    let bundle = try #require(reply.wait(seconds: 10), "answered")
    #expect(Date().timeIntervalSince(started) < 5)
    #expect(bundle.spec.state?.step == 3)
  }

  @Test func aSaveRightAfterAPauseIsAnsweredAtThatBoundary() throws {
    let folder = temporaryFolder()
    let engine = engine()
    // Slow steps (a 512-wide layer on the plain loops), so that the pause and the save arrive
    // during one step and the worker finds both at the same boundary.
    for line in ["set dense2 units=512", "batch 600"] { #expect(!engine.execute(line).failed) }
    _ = engine.execute("train")
    waitUntil { engine.snapshot.step >= 1 }
    _ = engine.execute("pause")
    saveIsAnsweredPromptly(engine, to: "\(folder)/paused", "after pause")
    #expect(engine.trainingStatus == .paused)
    #expect(try SessionFile.load("\(folder)/paused.json").spec.state?.step == engine.state?.step)
  }

  @Test func theDocumentIsAValueThatEditsAndUndoesWithoutTraining() throws {
    let engine = engine()
    var document = engine.document
    let before = document
    let (message, _) = try document.apply(.batch(8), line: "batch 8", folder: ".", training: false)
    #expect(message == "batch size 8" && document.spec.training.batchSize == 8 && document.spec.journal.last == "batch 8")
    #expect(engine.spec.training.batchSize == 64, "the engine's document is another value")
    #expect(throws: CommandError.self) { try document.apply(.batch(16), line: "batch 16", folder: ".", training: true) }
    #expect(document.spec.training.batchSize == 8, "an edit refused while training changes nothing")
    #expect(try document.step(back: true) == "undid batch 8; the last change is now stop max_steps 100000")
    #expect(document.spec == before.spec)
    #expect(try document.step(back: false) == "redid batch 8" && document.spec.training.batchSize == 8)
  }

  /// "Save as" into another folder keeps the data: the relative CSV path is rewritten to name
  /// the same file from there, in the file and in the live session, which trains on.
  @Test func savingIntoAnotherFolderRebasesTheDataPath() throws {
    let root = temporaryFolder()
    try FileManager.default.createDirectory(atPath: root + "/a", withIntermediateDirectories: true)
    let rows = (0..<40).map { i in "\(Double(i) / 10),\(Double(i % 7) / 3),\(i % 2 == 0 ? "x" : "y")" }
    try ("f1,f2,label\n" + rows.joined(separator: "\n") + "\n").write(toFile: root + "/a/data.csv", atomically: true, encoding: .utf8)
    let engine = SessionEngine(bundle: SessionBundle(spec: SessionEngine.emptySpec(name: "c", input: [2])))
    for line in [
      "new c --input 2", "data csv path=\(root)/a/data.csv target=label task=classification normalize=true", "add dense 4 relu",
      "add dense 2", "stop max_steps 100000",
    ] {
      #expect(!engine.execute(line).failed, "\(line)")
    }
    #expect(!engine.execute("save \(root)/a/s").failed)
    // Written relative to the spec's folder: make it so, as a hand-written file would be.
    var local = try SessionFile.load(root + "/a/s.json")
    if case .csv(var csv) = local.spec.data.source {
      csv.path = "data.csv"
      local.spec.data.source = .csv(csv)
    }
    try SessionFile.save(local, to: root + "/a/s")
    let reopened = SessionEngine(bundle: try SessionFile.load(root + "/a/s.json"), path: root + "/a/s.json")
    let outcome = reopened.execute("save \(root)/b/s")
    #expect(!outcome.failed)
    #expect(reopened.takeEvents().contains { $0.kind == .saved && $0.text.contains("data paths now relative to \(root)/b: ../a/data.csv") })
    #expect(reopened.spec.data.source.files == ["../a/data.csv"])
    #expect(try SessionFile.load(root + "/b/s.json").spec.data.source.files == ["../a/data.csv"])
    // The live session trains on, reading the same file from its new folder.
    #expect(!reopened.execute("train 5").failed)
    waitIdle(reopened)
    #expect(reopened.state?.step == 5)
  }

  @Test func relativePathsBetweenFolders() {
    #expect(PathText.relative(from: "/r/b", to: "/r/a/data.csv") == "../a/data.csv")
    #expect(PathText.relative(from: "/r/a", to: "/r/a/sub/x.csv") == "sub/x.csv")
    #expect(PathText.relative(from: "/r/a/b/c", to: "/q/x") == "../../../../q/x")
    #expect(PathText.relative(from: "/", to: "/x/y") == "x/y")
    #expect(PathText.absolute("../a/./d.csv", from: "/r/b") == "/r/a/d.csv")
    let source = DataSource.csv(.init(path: "data.csv", target: .name("t"), task: .classification))
    #expect(source.rebased(from: "/r/a", to: "/r/b").files == ["../a/data.csv"])
    #expect(source.rebased(from: "/r/a", to: "/r/a").files == ["data.csv"])
    let absolute = DataSource.idx(images: "/d/i", labels: "l")
    #expect(absolute.rebased(from: "/r/a", to: "/r/b").files == ["/d/i", "../a/l"])
  }

  /// A schedule set on a trained session counts from that step (as a PyTorch scheduler counts
  /// from when it is created); one that would leave the rate at 0, or that ended before the run
  /// begins, is said out loud.
  @Test func aScheduleSetMidRunStartsThereAndAZeroRateIsSaid() throws {
    let engine = engine()
    _ = engine.execute("train 60 --wait")
    waitIdle(engine)
    let set = engine.execute("schedule warmup_cosine warmup_steps=5 t_max=30")
    #expect(
      set.text.hasPrefix("schedule: warmup_cosine warmup_steps=5 t_max=30 eta_min=0.0 from update 60 (counting from step 60, now)"),
      "\(set.text)")
    #expect(!set.text.contains("warning"))
    #expect(engine.spec.schedule.start == 60)
    // The first update of the next run warms up from there: a rate above 0 (the old rule, which
    // counted from update 1, gave eta_min = 0 for every update past 30).
    let lr = engine.spec.optimizer.learningRate
    #expect(engine.spec.schedule.learningRate(at: 61, base: lr) == lr / 5)
    let before = try #require(engine.state?.tensors[StateKey.parameter("dense1.weight")])
    let started = engine.execute("train 10 --wait")
    #expect(!started.text.contains("warning"), "\(started.text)")
    waitIdle(engine)
    #expect(engine.state?.tensors[StateKey.parameter("dense1.weight")] != before, "the weights moved")
    // An explicit start that puts the run past the schedule's end is said, when set and at train.
    let ended = engine.execute("schedule cosine t_max=30 start=0")
    #expect(ended.text.contains("warning: the cosine schedule ended at update 30 (it starts at update 0)"), "\(ended.text)")
    #expect(ended.text.contains("which is 0: the weights will not change"))
    let run = engine.execute("train 5 --wait")
    #expect(run.text.contains("\nwarning: the cosine schedule ended at update 30"), "\(run.text)")
    waitIdle(engine)
  }

  /// One mistake, one message that names it and the likely fix; `show` alone gives an overview;
  /// `undo` says what it undid.
  @Test func messagesNameTheMistakeAndWhatWasDone() throws {
    let engine = engine()
    let typo = engine.execute("add dens 8")
    #expect(typo.failed)
    #expect(
      typo.text
        == "add: unknown layer type \"dens\"; types: dense, activation, dropout, flatten, layer_norm, batch_norm, conv2d, max_pool2d, avg_pool2d, global_avg_pool, reshape — did you mean \"dense\"?"
    )
    #expect(engine.execute("insert 0 laer_norm").text.hasPrefix("insert: unknown layer type \"laer_norm\""))
    let overview = engine.execute("show").text
    for part in ["Model:", "Optimizer:", "Data:", "Training:", "State:", "History:"] { #expect(overview.contains(part), "\(part)") }
    #expect(!engine.execute("add dense 8 relu").failed)
    #expect(engine.execute("undo").text == "undid add dense 8 relu; the last change is now stop max_steps 100000")
    #expect(engine.execute("redo").text == "redid add dense 8 relu")
  }

  /// `data csv path=…` reads the file when it is named; `export` makes missing folders, as
  /// `save` does.
  @Test func aDataFileIsCheckedWhenNamedAndExportsMakeTheirFolders() throws {
    let root = temporaryFolder()
    let engine = SessionEngine(bundle: SessionBundle(spec: SessionEngine.emptySpec(name: "d", input: [1])))
    let before = engine.spec
    let missing = engine.execute("data csv path=\(root)/elsewhere/missing.csv target=y task=classification")
    #expect(missing.failed && missing.text == "data: cannot read data file \(root)/elsewhere/missing.csv: no such file", "\(missing.text)")
    #expect(engine.spec == before, "a failed data command changes nothing")
    #expect(!DataAccess.allowedFolders.contains { $0.hasSuffix("/elsewhere") }, "nor allows its folder")
    try "x,y\n1,a\n2,b\n3,a\n".write(toFile: root + "/ok.csv", atomically: true, encoding: .utf8)
    let good = engine.execute("data csv path=\(root)/ok.csv target=y task=classification")
    #expect(good.text.hasSuffix("(3 samples)"), "\(good.text)")
    #expect(!engine.execute("add dense 2").failed)
    let exported = engine.execute("export onnx \(root)/new/sub/model")
    #expect(!exported.failed, "\(exported.text)")
    #expect(FileManager.default.fileExists(atPath: root + "/new/sub/model.onnx"))
    // The same for a Keras file.
    let keras = engine.execute("export keras \(root)/new/model")
    #expect(!keras.failed && keras.text.hasPrefix("wrote \(root)/new/model.keras"), "\(keras.text)")
    #expect(FileManager.default.fileExists(atPath: root + "/new/model.keras"))
  }

  /// An edit of a trained model is an event of the history, with its step, saved with it.
  @Test func aModelEditIsHistory() throws {
    let folder = temporaryFolder()
    let engine = engine()
    _ = engine.execute("train 12 --wait")
    waitIdle(engine)
    #expect(!engine.execute("insert 2 dense 64 relu").failed)
    let event = try #require(engine.spec.history.events.last)
    #expect(
      event.step == 12 && event.kind == "model" && event.detail.hasPrefix("insert 2 dense 64 relu: kept param/dense1.weight"), "\(event)")
    _ = engine.execute("save \(folder)/m")
    #expect(try SessionFile.load(folder + "/m.json").spec.history.events.contains(event))
    // Marked on the loss chart, where it happened.
    guard case .drawing(.chart(let chart, _)) = engine.execute("plot loss") else {
      Issue.record("plot loss gives a chart")
      return
    }
    #expect(chart.markers.contains(12), "\(chart.markers)")
  }

  /// What `new` chose stays editable (`set input`), and regression data picks a regression loss
  /// instead of failing at `train`.
  @Test func theInputIsEditableAndRegressionDataPicksARegressionLoss() throws {
    let root = temporaryFolder()
    try "a,b,y\n1,2,0.5\n2,3,0.7\n3,1,0.1\n4,4,0.9\n".write(toFile: root + "/r.csv", atomically: true, encoding: .utf8)
    let engine = SessionEngine(bundle: SessionBundle(spec: SessionEngine.emptySpec(name: "r", input: [1])))
    for line in ["new r --input 1", "add dense 4 relu", "add dense 1"] { #expect(!engine.execute(line).failed, "\(line)") }
    let data = engine.execute("data csv path=\(root)/r.csv target=y task=regression")
    #expect(data.text.hasSuffix("(4 samples); loss mse for regression (was softmax_cross_entropy; loss … chooses another)"), "\(data.text)")
    #expect(engine.spec.loss == .mse)
    #expect(engine.execute("set input 2").text == "input [2] (was [1])")
    #expect(engine.spec.model.input == [2])
    #expect(engine.execute("set input 0,3").text == "set input must be positive sizes separated by commas, such as 2 or 1,28,28; got 0,3")
    let trained = engine.execute("train 4 --wait")
    #expect(!trained.failed, "\(trained.text)")
    waitIdle(engine)
    #expect(engine.state?.step == 4)
    // On a trained model, a new input shape keeps what still fits: dense1's weight starts fresh.
    _ = engine.takeEvents()
    #expect(!engine.execute("set input 3").failed)
    let mapped = try #require(engine.takeEvents().first { $0.kind == .model })
    #expect(mapped.text.hasPrefix("kept param/dense1.bias") && mapped.text.hasSuffix("fresh param/dense1.weight"), "\(mapped.text)")
  }

  /// A new session belongs to no file, and undoing a load gives the old session its own place
  /// back: a later `save` never writes one session over another's file.
  @Test func newAndUndoneLoadsKeepEachSessionToItsFile() throws {
    let folder = temporaryFolder()
    let engine = engine()
    _ = engine.execute("save \(folder)/mine")
    let mine = try Data(contentsOf: URL(fileURLWithPath: folder + "/mine.json"))
    #expect(!engine.execute("new other --input 2").failed)
    #expect(engine.path == nil)
    #expect(engine.execute("save").text == "save: give a path the first time, such as save sessions/mine")
    #expect(engine.execute("undo").text.hasPrefix("undid new other --input 2"))
    #expect(engine.path == folder + "/mine.json")
    // load, then undo: back to this session and its file, and the loaded file is untouched.
    let xor = repositoryPath("sessions/xor.json")
    let xorBytes = try Data(contentsOf: URL(fileURLWithPath: xor))
    #expect(!engine.execute("load \(xor)").failed)
    #expect(engine.execute("undo").text == "undid load \(xor); the last change is now stop max_steps 100000")
    #expect(engine.path == folder + "/mine.json" && engine.spec.name == "spirals")
    #expect(engine.execute("redo").text == "redid load \(xor)")
    #expect(engine.path == xor)
    _ = engine.execute("undo")
    _ = engine.execute("batch 16")
    _ = engine.execute("save")
    #expect(try Data(contentsOf: URL(fileURLWithPath: xor)) == xorBytes, "the loaded file is never written by the undone session")
    #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/mine.json")) != mine)
  }

  /// `evaluate`: a confusion matrix and per-class precision and recall for a classifier (with
  /// the csv's class names), MAE, RMSE and R² for a regression; the numbers are the matrix's.
  @Test func evaluateReportsWhatAPractitionerLooksAt() throws {
    // Four samples, three classes: true 0,0,1,2; predicted 0,1,1,2.
    let logits = Tensor(shape: [4, 3], scalars: [5, 0, 0, 0, 5, 0, 0, 5, 0, 0, 0, 5])
    let report = EvaluationReport.make(
      split: .validation, loss: 0.5, outputs: logits, targets: .classes([0, 0, 1, 2]), classNames: ["cat", "dog", "owl"])
    let lines = report.text.split(separator: "\n").map(String.init)
    #expect(lines[0] == "validation: 4 samples, loss 0.5, accuracy 75.0% (3 of 4)")
    #expect(
      lines.contains { $0.hasPrefix("cat ") && $0.split(separator: " ").map(String.init) == ["cat", "1", "1", "0"] }, "\(report.text)")
    #expect(lines.contains { $0.split(separator: " ").map(String.init) == ["cat", "100.0%", "50.0%", "66.7%", "2"] }, "\(report.text)")
    #expect(lines.contains { $0.split(separator: " ").map(String.init) == ["dog", "50.0%", "100.0%", "66.7%", "1"] }, "\(report.text)")
    // Regression: errors 1, −1, 0, 2 on targets 0, 2, 4, 6 (mean 3, total 20).
    let regression = EvaluationReport.make(
      split: .train, loss: 1.5, outputs: Tensor(shape: [4, 1], scalars: [1, 1, 4, 8]),
      targets: .values(Tensor(shape: [4, 1], scalars: [0, 2, 4, 6])), classNames: nil)
    #expect(regression.text == "train: 4 samples, loss 1.5, MAE 1, RMSE 1.225, R² 0.7000", "\(regression.text)")
    // Through the engine: the accuracy is the run's.
    let engine = engine()
    _ = engine.execute("train 200 --wait")
    waitIdle(engine)
    let evaluated = engine.execute("evaluate")
    #expect(evaluated.text.hasPrefix("train: 600 samples, loss "), "\(evaluated.text)")
    #expect(evaluated.text.contains("confusion matrix (rows: true class, columns: predicted)"))
    #expect(engine.execute("evaluate validation").text.hasPrefix("evaluate: the session has no validation split"))
  }

  /// `predict` takes raw rows as the data file has them: the session's standardisation is
  /// applied, and the answer names the csv's class.
  @Test func predictTakesRawRowsAndNamesTheClass() throws {
    let root = temporaryFolder()
    var generator = SplitMix64(seed: 3, stream: "predict-rows")
    var rows: [(size: Double, ratio: Double, kind: String)] = []
    for _ in 0..<160 {
      let size = Double(generator.nextUniform()) * 900 + 100, ratio = Double(generator.nextUniform())
      rows.append((size, ratio, (size - 100) / 900 + ratio > 1 ? "large" : "small"))
    }
    try ("size,ratio,kind\n" + rows.map { "\($0.size),\($0.ratio),\($0.kind)" }.joined(separator: "\n") + "\n").write(
      toFile: root + "/rows.csv", atomically: true, encoding: .utf8)
    let engine = SessionEngine(bundle: SessionBundle(spec: SessionEngine.emptySpec(name: "p", input: [2])))
    for line in [
      "new p --input 2", "data csv path=\(root)/rows.csv target=kind task=classification normalize=true", "add dense 8 tanh", "add dense 2",
      "optimizer adam lr=0.05", "batch 16", "backend reference",
    ] {
      #expect(!engine.execute(line).failed, "\(line)")
    }
    _ = engine.execute("train 300 --wait")
    waitIdle(engine)
    let sample = rows.prefix(40)
    let answer = engine.execute("predict " + sample.map { "\($0.size),\($0.ratio)" }.joined(separator: " ")).text
    let lines = answer.split(separator: "\n").map(String.init)
    #expect(lines.count == 40, "\(answer)")
    let right = zip(lines, sample).filter { line, row in line.contains("→ \(row.kind) (") }.count
    #expect(right >= 34, "\(right) of 40 right on raw rows: \(answer)")
    #expect(lines[0].contains("large ") && lines[0].contains("small "), "the probabilities name the classes: \(lines[0])")
    #expect(engine.execute("predict 1,2,3").text == "predict: sample 1 has 3 values, but the model takes 2 (input [2])")
  }

  @Test func everyEventHasOneFormat() throws {
    let engine = engine()
    _ = engine.execute("train 5 --wait")
    waitIdle(engine)
    let events = engine.takeEvents()
    #expect(events.map(\.kind) == [.started, .stopped])
    #expect(events.allSatisfy { $0.line == "[\($0.kind.rawValue)] \($0.text)" && $0.description == $0.line })
    #expect(events.last?.line.hasPrefix("[stopped] stopped by steps at step 5") == true, "\(events)")
  }
}
