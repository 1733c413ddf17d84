import Backends
import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

@testable import Session

/// Waits until no run of the workbench trains, then takes in what they published.
func waitIdle(_ bench: Workbench, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
  waitUntil(seconds: 120, sourceLocation: sourceLocation) { !bench.isTraining }
  bench.refresh()
}

@Suite("Workbench of runs", .serialized)
struct WorkbenchTests {
  /// A small session on the reference backend (bit-for-bit comparisons), built as a user would.
  func bench() -> Workbench {
    let engine = SessionEngine(bundle: SessionBundle(spec: SessionEngine.emptySpec(name: "base", input: [2])))
    for line in EngineTests.build { run(engine, line) }
    run(engine, "backend reference", "stop max_steps 100000")
    return Workbench(engine, name: "base")
  }

  func state(_ bench: Workbench, _ name: String) throws -> TrainingState {
    try #require(bench.run(named: name)?.engine.state, "\(name) has a state")
  }

  @Test func aForkTrainedKStepsEqualsTheOriginalTrainedKSteps() throws {
    let bench = bench()
    run(bench, "train 30")
    waitIdle(bench)
    #expect(bench.execute("fork copy").text.hasPrefix("forked base at step 30 into copy, now the current run"))
    #expect(bench.currentName == "copy" && bench.runs.count == 2)
    #expect(try state(bench, "copy").tensors == state(bench, "base").tensors)
    run(bench, "train 25", "switch base", "train 25")
    waitIdle(bench)
    let (copy, base) = (try state(bench, "copy"), try state(bench, "base"))
    #expect(copy.step == 55 && base.step == 55)
    #expect(copy.tensors == base.tensors, "the fork and the original part after 25 more steps")
    #expect(copy.index == base.index && copy.epoch == base.epoch)
    // The fork's history is the original's, with the fork marked.
    let forkHistory = try #require(bench.run(named: "copy")?.engine.spec.history)
    #expect(forkHistory.trainLoss == bench.current.spec.history.trainLoss)
    #expect(forkHistory.events.contains { $0.kind == "fork" && $0.step == 30 && $0.detail == "forked from base at step 30" })
    #expect(bench.run(named: "copy")?.engine.spec.name == "copy")
  }

  @Test func aForkWhileTrainingTakesTheStateAtAStepBoundary() throws {
    let bench = bench()
    run(bench, "stop max_steps 400", "train")
    let outcome = bench.execute("fork during")
    #expect(!outcome.failed, "\(outcome.text)")
    let at = try #require(bench.current.state?.step)
    run(bench, "stop max_steps 400", "train")
    waitIdle(bench)
    #expect(try state(bench, "during").step == 400 && state(bench, "base").step == 400)
    #expect(try state(bench, "during").tensors == state(bench, "base").tensors, "forked at step \(at), both at 400")
  }

  @Test func forkFromAnEarlierStepReplaysExactlyOrRefuses() throws {
    let bench = bench()
    run(bench, "train 60")
    waitIdle(bench)
    let at60 = try state(bench, "base")
    run(bench, "fork early --from-step 20")
    #expect(try state(bench, "early").step == 20)
    #expect(bench.current.spec.history.trainLoss.allSatisfy { $0.step <= 20 })
    run(bench, "train 40")
    waitIdle(bench)
    #expect(try state(bench, "early").tensors == at60.tensors, "replayed to 20, trained to 60: the original's state")
    // A run changed on the way cannot be replayed past the change.
    run(bench, "switch base", "optimizer lr=0.05", "train 20")
    waitIdle(bench)
    let refused = bench.execute("fork late --from-step 70")
    #expect(refused.failed && refused.text.contains("cannot be replayed exactly to step 70"), "\(refused.text)")
    #expect(refused.text.contains("the losses differ from step 62 on"), "\(refused.text)")
    #expect(bench.run(named: "late") == nil && bench.runs.count == 2)
    // Before the change, the replay takes the spec the run had then (undo holds it).
    run(bench, "fork before --from-step 61")
    #expect(try state(bench, "before").step == 61)
    #expect(bench.current.spec.optimizer.learningRate == 0.01, "the fork has the learning rate of step 61")
    run(bench, "switch base", "fork at60 --from-step 60")
    #expect(try state(bench, "at60").tensors == at60.tensors)
    run(bench, "switch base")
    for (line, message) in [
      ("fork x --from-step 500", "base is at step 80; --from-step takes a step from 0 to 80"),
      ("fork base", "fork: a run named base exists; runs lists them"),
      ("fork ../x", "fork: a run's name is 1 to 64 letters, digits and . _ = , + - (not starting with . or -), got \"../x\""),
    ] {
      let outcome = bench.execute(line)
      #expect(outcome.failed && outcome.text.contains(message), "\(line): \(outcome.text)")
    }
  }

  @Test func aSweepNamesItsRunsAfterTheirValuesAndTrainsThemFromTheStart() throws {
    let bench = bench()
    run(bench, "stop max_steps 30", "train 10")
    waitIdle(bench)
    let text = bench.execute("sweep optimizer.lr=0.001,0.01 layers[2].units=3 training.seed=5,6").text
    #expect(text.hasPrefix("sweep of base: 4 runs, each from its seeded initial weights"), "\(text)")
    let names = bench.runs.map(\.name)
    #expect(
      names == ["base", "lr=0.001,units=3,seed=5", "lr=0.001,units=3,seed=6", "lr=0.01,units=3,seed=5", "lr=0.01,units=3,seed=6"])
    let engine = try #require(bench.run(named: "lr=0.01,units=3,seed=6")?.engine)
    #expect(engine.spec.optimizer.learningRate == 0.01 && engine.spec.training.seed == 6 && engine.spec.name == "lr=0.01,units=3,seed=6")
    #expect(engine.spec.history.events.first?.kind == "sweep")
    #expect(bench.currentName == "base", "a sweep leaves the current run current")
    waitIdle(bench)
    for run in bench.runs.dropFirst() { #expect(run.engine.state?.step == 30, "\(run.name) trained from step 0 to 30") }
    // A swept run equals the same spec trained on its own from its initial weights.
    var alone = bench.run(named: "lr=0.001,units=3,seed=5")!.engine.spec
    (alone.state, alone.history) = (nil, HistorySpec())
    #expect(TrainingRunTestSupport.train(alone, steps: 30).tensors == bench.run(named: "lr=0.001,units=3,seed=5")!.engine.state!.tensors)
    // The same values again get names of their own.
    run(bench, "sweep optimizer.lr=0.001")
    #expect(bench.runs.last?.name == "lr=0.001")
    run(bench, "sweep optimizer.lr=0.001")
    #expect(bench.runs.last?.name == "lr=0.001-2")
    waitIdle(bench)
  }

  @Test func aSweepThatCannotBeMadeMakesNoRun() throws {
    let bench = bench()
    let values = (1...17).map { "0.00\($0)" }.joined(separator: ",")
    for (line, message) in [
      ("sweep optimizer.lr=\(values)", "sweep: 17 runs is more than 16 at once; add --force to train them all, or sweep fewer values"),
      ("sweep optimizer.lrr=0.1", "sweep: optimizer.lrr: optimizer has no field lrr (it has "),
      ("sweep layers[9].units=3", "sweep: layers[9].units: model.layers has 3 entries; index 9 is past them"),
      ("sweep layers[0].units=8,abc", "sweep: layers[0].units=abc: "),
      ("sweep optimizer.lr=0.1,-1", "sweep: optimizer.lr=-1: "),
      ("sweep optimizer.lr=0.1,0.1", "sweep: optimizer.lr repeats a value"),
      ("sweep optimizer.lr=", "sweep: expected FIELD=V1,V2,…"),
    ] {
      let outcome = bench.execute(line)
      #expect(outcome.failed && outcome.text.contains(message), "\(line): \(outcome.text)")
      #expect(bench.runs.count == 1, "\(line) made no run")
    }
    let ceiling = (1...17).map { "\($0)" }.joined(separator: ",")
    let huge = bench.execute("sweep training.seed=\(ceiling) training.batch_size=\(ceiling) --force")
    #expect(
      huge.failed && huge.text.contains("289 runs beside the 1 there are is more than a workbench holds (256, what a workspace saves)"),
      "\(huge.text)")
    // A grid whose size overflows is refused by its count, never enumerated.
    let axes = (0..<20).map { axis in "layers[0].\(axis)=" + (0..<10).map(String.init).joined(separator: ",") }
    let overflowing = (try? CommandParser.parse("sweep " + axes.joined(separator: " ") + " --force")).flatMap { $0 }
    let refusal = try #require(overflowing.map { bench.perform($0) })
    #expect(refusal.failed && refusal.text.contains("more than 2^63 runs"), "\(refusal.text)")
    #expect(bench.runs.count == 1)
  }

  @Test func compareTablesTheRunsAndTheFieldsInWhichTheyDiffer() throws {
    let bench = bench()
    run(bench, "stop max_steps 20", "sweep optimizer.lr=0.001,0.01 layers[0].units=8")
    waitIdle(bench)
    guard case .drawing(.comparison(let comparison)) = bench.execute("compare lr=0.001,units=8 lr=0.01,units=8") else {
      Issue.record("compare draws a comparison")
      return
    }
    #expect(comparison.runs.map(\.name) == ["lr=0.001,units=8", "lr=0.01,units=8"])
    #expect(comparison.differences.map(\.field) == ["optimizer.lr"])
    #expect(comparison.differences.first?.values == ["0.001", "0.01"])
    #expect(comparison.metrics.map { $0[2] } == ["20", "20"])
    #expect(comparison.chart?.series.map(\.name) == ["lr=0.001,units=8", "lr=0.01,units=8"])
    #expect(comparison.chart?.series.map(\.colour) == [0, 1])
    let all = Comparison(bench.runs.map { bench.compared($0) })
    #expect(all.differences.map(\.field) == ["model.layers[0].units", "optimizer.lr"])
    #expect(all.differences[0].values == ["16", "8", "8"] && all.leftOut == ["base: no losses recorded yet"])
    let text = bench.execute("compare").text
    #expect(text.contains("model.layers[0].units") && text.contains("not in the chart: base: no losses recorded yet"), "\(text)")
    let missing = bench.execute("compare lr=0.5")
    #expect(missing.failed && missing.text.hasPrefix("compare: no run named \"lr=0.5\"; runs: base, lr=0.001,units=8, lr=0.01,units=8"))
    // By time: every swept run trained here, so each has a timeline from 0 s.
    guard case .drawing(.comparison(let byTime)) = bench.execute("compare --by time") else {
      Issue.record("compare --by time draws a comparison")
      return
    }
    #expect(byTime.leftOut == ["base: no losses recorded yet"])
    for run in bench.runs.dropFirst() {
      #expect(run.timeline.first == TimelinePoint(step: 0, seconds: 0) && run.timeline.last?.step == 20, "\(run.timeline)")
    }
  }

  @Test func dropAsksForUnsavedWorkAndKeepsOneRun() throws {
    let bench = bench()
    run(bench, "fork a", "fork b", "switch a")
    let refused = bench.execute("drop b")
    #expect(refused.failed && refused.text == "drop: b has unsaved work; switch b then save PATH keeps it, or drop b --force discards it")
    run(bench, "drop b --force")
    #expect(bench.runs.map(\.name) == ["base", "a"] && bench.currentName == "a")
    run(bench, "drop a --force")
    #expect(bench.currentName == "base")
    let last = bench.execute("drop base --force")
    #expect(last.failed && last.text.contains("the only run"))
    #expect(bench.execute("switch nowhere").text.hasPrefix("switch: no run named \"nowhere\""))
  }

  @Test func aWorkspaceSavedAndReopenedHoldsEveryRunBitForBit() throws {
    let folder = temporaryFolder()
    let bench = bench()
    run(bench, "stop max_steps 25", "train", "sweep optimizer.lr=0.001,0.02")
    waitIdle(bench)
    run(bench, "fork idle", "switch lr=0.02")
    let saved = bench.execute("save \(folder)/ws")
    #expect(!saved.failed && saved.text.hasPrefix("saved the workspace \(folder)/ws: 4 runs, current lr=0.02"), "\(saved.text)")
    #expect(!bench.hasUnsavedChanges)
    let index = try WorkspaceIndex.decode(try FileAccess.read("\(folder)/ws/workspace.json"))
    #expect(index.runs.map(\.file) == ["base.json", "lr=0.001.json", "lr=0.02.json", "idle.json"])
    let reopened = try Workbench.open("\(folder)/ws")
    #expect(reopened.runs.map(\.name) == bench.runs.map(\.name) && reopened.currentName == "lr=0.02")
    for (a, b) in zip(bench.runs, reopened.runs) {
      // The spec, history and journal as they were; the state and metrics records name the
      // files written, which the live session gets at its next save.
      func settled(_ spec: SessionSpec) -> String {
        var spec = spec
        (spec.state, spec.history.metrics) = (nil, nil)
        return spec.canonicalText
      }
      let (mine, theirs) = (settled(a.engine.spec), settled(b.engine.spec))
      #expect(
        mine == theirs,
        "\(a.name)'s spec: \(zip(mine.split(separator: "\n"), theirs.split(separator: "\n")).first { $0 != $1 }.map { "\($0) ≠ \($1)" } ?? "lengths")"
      )
      #expect(a.engine.spec.history.points == b.engine.spec.history.points)
      #expect(a.engine.state?.tensors == b.engine.state?.tensors && a.engine.state?.step == b.engine.state?.step, "\(a.name)'s state")
      #expect(a.timeline == b.timeline, "\(a.name)'s timeline")
    }
    // Opened by its index file too; a second save goes to the same folder.
    #expect(try Workbench.open("\(folder)/ws/workspace.json").runs.count == 4)
    run(reopened, "train 5")
    waitIdle(reopened)
    #expect(reopened.execute("save").text.hasPrefix("saved the workspace \(folder)/ws: 4 runs"))
    // A workbench of several runs is a folder, not a file.
    let file = bench.execute("save \(folder)/one.json")
    #expect(file.failed && file.text.hasPrefix("save: 4 runs are saved as a folder, not one file"))
    let fresh = Workbench(SessionEngine.withDefaultSession())
    run(fresh, "fork other")
    #expect(fresh.execute("save").text.hasPrefix("save: a workbench of 2 runs is saved as a folder: save FOLDER"))
  }

  @Test func hostileWorkspaceIndexesAreRefusedWithTheirPlace() throws {
    let folder = temporaryFolder()
    let good = #"{"format": "specbench/workspace", "version": 1, "current": "a", "runs": [{"name": "a", "file": "a.json"}]}"#
    let cases: [(String, String)] = [
      ("{", "workspace.json:1:2"),
      (#"{"format": "specbench/session", "version": 1, "current": "a", "runs": []}"#, "format: must be \"specbench/workspace\""),
      (good.replacingOccurrences(of: "\"version\": 1", with: "\"version\": 9"), "newer"),
      (good.replacingOccurrences(of: "\"a.json\"", with: "\"../a.json\""), "runs[0].file: must be a session file name in the folder"),
      (good.replacingOccurrences(of: "\"a.json\"", with: "\"/etc/passwd.json\""), "runs[0].file: must be a session file name"),
      (good.replacingOccurrences(of: #""name": "a""#, with: #""name": "a/b""#), "runs[0].name: must be a run name"),
      (good.replacingOccurrences(of: #""current": "a""#, with: #""current": "z""#), "current: names no run of the index"),
      (good.replacingOccurrences(of: #""file": "a.json""#, with: #""file": "a.json", "colour": 3"#), "runs[0].colour: unknown key"),
      (
        good.replacingOccurrences(of: #""file": "a.json""#, with: #""file": "a.json", "timeline": [[5, 1.0], [3, 2.0]]"#),
        "runs[0].timeline[1]: must be [step, seconds]"
      ),
      (good.replacingOccurrences(of: #""file": "a.json""#, with: #""file": "a.json", "timeline": [[0, -1]]"#), "runs[0].timeline[0]"),
      (good, "a.json: no such file"),
    ]
    for (i, (text, message)) in cases.enumerated() {
      let ws = "\(folder)/ws\(i)"
      try FileManager.default.createDirectory(atPath: ws, withIntermediateDirectories: true)
      try Data(text.utf8).write(to: URL(fileURLWithPath: "\(ws)/workspace.json"))
      do {
        _ = try Workbench.open(ws)
        Issue.record("case \(i) opened: \(text)")
      } catch {
        #expect(error.description.contains(message), "case \(i): \(error.description)")
      }
    }
    // A FIFO in the index's place is refused at once, never opened for reading.
    let fifo = "\(folder)/fifo"
    try FileManager.default.createDirectory(atPath: fifo, withIntermediateDirectories: true)
    #expect(mkfifo("\(fifo)/workspace.json", 0o600) == 0)
    do {
      _ = try Workbench.open(fifo)
      Issue.record("a FIFO index opened")
    } catch {
      #expect(error.description.contains("FIFO"), "\(error.description)")
    }
    // A run name from an index is data: a control sequence in it never reaches the terminal.
    #expect(!WorkspaceIndex.isRunName("a\u{1B}[2J"))
  }
}
