import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

@Suite("specbench run on a terminal", .enabled(if: TmuxSession.isAvailable, "tmux is not installed: skipped"))
struct TerminalTests {
  @Test func aLiveProgressLineThenCtrlCStopsAtAStepBoundaryAndSaves() throws {
    let folder = temporaryFolder()
    let command =
      "cd \(repositoryRoot.path) && \(specbenchExecutable) run sessions/xor.json --steps 100000000 --save \(folder)/xor; echo EXIT=$?; sleep 60"
    let terminal = try TmuxSession(command)
    // The progress line appears and keeps moving.
    let first = try terminal.waitFor { $0.contains("steps/s") && $0.contains("ETA") }
    #expect(first.contains("step ") && first.contains("/100000000  batch loss "), "\(first)")
    let progressLines = first.split(separator: "\n").filter { $0.hasPrefix("step ") }
    #expect(progressLines.count == 1, "one live line, redrawn in place: \(first)")
    try terminal.send("C-c")
    let end = try terminal.waitFor { $0.contains("EXIT=") }
    #expect(end.contains("stopped by interrupted at step "), "\(end)")
    #expect(end.contains("EXIT=0"))
    #expect(end.contains("saved \(folder)/xor.json at step "))
    let saved = try SessionFile.load(folder + "/xor.json")
    let step = try #require(saved.spec.state?.step)
    #expect(step > 0 && step < 100_000_000)
    #expect(saved.spec.history.events.last?.detail.hasPrefix("interrupted after \(step) steps") == true)
  }
}

/// Loading a large CSV on a terminal: a progress line, and Ctrl-C stops the read with nothing
/// changed — on the command line (`run`) and in the REPL (`data …`), where the session keeps its
/// data.
@Suite("Loading large data on a terminal", .enabled(if: TmuxSession.isAvailable, "tmux is not installed: skipped"))
struct LoadTerminalTests {
  /// A CSV of about 120 MB (a header, a label and 100 integer columns), written quickly.
  static func largeCSV(in folder: String) throws -> String {
    let path = folder + "/large.csv"
    var block = ""
    for row in 0..<1_000 { block += "\(row % 3)," + (0..<100).map { String(($0 * 7 + row) % 256) }.joined(separator: ",") + "\n" }
    let header = "label," + (0..<100).map { "p\($0)" }.joined(separator: ",") + "\n"
    guard
      let handle = FileHandle(forWritingAtPath: path)
        ?? { FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil }()
    else { throw TestFailure("cannot write \(path)") }
    handle.write(Data(header.utf8))
    let data = Data(block.utf8)
    for _ in 0..<300 { handle.write(data) }
    try handle.close()
    return path
  }

  static func session(in folder: String) throws -> String {
    let text = """
      {"format": "specbench/session", "version": 6, "name": "large", "model": {"input": [100], "layers": [{"type": "dense", "units": 3}]},
       "loss": {"type": "softmax_cross_entropy"}, "optimizer": {"type": "sgd", "lr": 0.01},
       "data": {"type": "csv", "path": "large.csv", "target": "label", "task": "classification"}, "training": {"batch_size": 32}}
      """
    try Data(text.utf8).write(to: URL(fileURLWithPath: folder + "/large.json"))
    return folder + "/large.json"
  }

  @Test func runShowsTheLoadAndCtrlCStopsItWithNothingChanged() throws {
    let folder = temporaryFolder()
    _ = try Self.largeCSV(in: folder)
    let session = try Self.session(in: folder)
    let before = try Data(contentsOf: URL(fileURLWithPath: session))
    let terminal = try TmuxSession(
      "cd \(folder) && SPECBENCH_CACHE=off \(specbenchExecutable) run \(session) --steps 10 --save \(session); echo EXIT=$?; sleep 60")
    let loading = try terminal.waitFor { $0.contains("reading large.csv: ") }
    #expect(loading.contains("% (") && loading.contains("Ctrl-C stops it"), "\(loading)")
    try terminal.send("C-c")
    let end = try terminal.waitFor { $0.contains("EXIT=") }
    #expect(end.contains("reading \(folder)/large.csv was interrupted; nothing was changed"), "\(end)")
    #expect(end.contains("EXIT=130"), "\(end)")
    #expect(try Data(contentsOf: URL(fileURLWithPath: session)) == before)
  }

  @Test func theREPLsDataCommandShowsTheLoadAndCtrlCKeepsTheSessionsData() throws {
    let folder = temporaryFolder()
    _ = try Self.largeCSV(in: folder)
    let terminal = try TmuxSession("cd \(folder) && SPECBENCH_CACHE=off \(specbenchExecutable) repl", width: 160, height: 40)
    try terminal.waitFor { $0.contains("spirals [fast idle]>") }
    try terminal.send("data csv path=large.csv target=label task=classification", "Enter")
    let loading = try terminal.waitFor { $0.contains("reading large.csv: ") }
    #expect(loading.contains("Ctrl-C stops it"), "\(loading)")
    try terminal.send("C-c")
    let end = try terminal.waitFor { $0.contains("was interrupted; nothing was changed") }
    #expect(end.contains("error: data: reading "), "\(end)")
    // The session keeps its data: spirals.
    try terminal.send("show data", "Enter")
    let shown = try terminal.waitFor { $0.contains("Data:       ") && $0.contains("[fast idle]>") }
    let line = shown.split(separator: "\n").first { $0.hasPrefix("Data:") }
    #expect(line?.contains("spirals samples=600") == true, "\(shown)")
  }

  /// The dashboard's `:data …` draws the read's progress on its bottom line; Ctrl-C stops the read
  /// and the session keeps its data.
  @Test func theDashboardShowsTheLoadOnItsBottomLineAndCtrlCKeepsTheSessionsData() throws {
    let folder = temporaryFolder()
    _ = try Self.largeCSV(in: folder)
    let terminal = try TmuxSession("cd \(folder) && SPECBENCH_CACHE=off \(specbenchExecutable) dashboard", width: 160, height: 40)
    try terminal.waitFor { $0.contains("─ events") && $0.contains("q REPL") }
    try terminal.send(":")
    try terminal.send("-l", "data csv path=large.csv target=label task=classification")
    try terminal.waitFor { $0.contains(":data csv path=large.csv target=label task=classification█") }
    try terminal.send("Enter")
    let loading = try terminal.waitFor { $0.contains("reading large.csv: ") && $0.contains("; Ctrl-C or Esc stops it") }
    let bottom = loading.split(separator: "\n", omittingEmptySubsequences: false).last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    #expect(bottom?.hasPrefix("reading large.csv: ") == true, "the progress is the bottom line: \(loading)")
    try terminal.send("C-c")
    let end = try terminal.waitFor { $0.contains("was interrupted; nothing was changed") && $0.contains("q REPL") == false }
    #expect(end.contains("error: data: reading "), "\(end)")
    try terminal.send(":")
    try terminal.send("-l", "show data")
    try terminal.send("Enter")
    let shown = try terminal.waitFor { $0.contains("Data:") && $0.contains("spirals samples=600") }
    #expect(!shown.contains("Data:       csv"), "\(shown)")
  }
}
