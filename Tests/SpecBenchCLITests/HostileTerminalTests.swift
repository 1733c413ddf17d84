import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The REPL on a real terminal (tmux) against what used to end it: terminals the dashboard
/// cannot draw on, commands that need too much memory, a hostile session name in the prompt,
/// and SIGTERM or SIGHUP with unsaved work.
@Suite("The REPL against hostile input", .enabled(if: TmuxSession.isAvailable, "tmux is not installed: skipped"))
struct HostileTerminalTests {
  @Test(arguments: [
    ("dumb", "cannot move its cursor"), ("no-such-terminal-type", "is unknown here"),
  ])
  func theDashboardRefusesATerminalItCannotDrawOnAndTheSessionGoesOn(_ term: String, _ message: String) throws {
    let folder = temporaryFolder("specbench-term")
    let terminal = try TmuxSession.specbench(from: folder, environment: "TERM=\(term)", width: 120, height: 30)
    try terminal.waitFor { $0.contains("spirals [fast idle]>") }
    try terminal.send("batch 7", "Enter")
    try terminal.send("dashboard", "Enter")
    // (Long lines wrap on the 120-column screen: read it as one line.)
    let screen = try terminal.waitFor { $0.replacingOccurrences(of: "\n", with: "").contains(message) }
    let flat = screen.replacingOccurrences(of: "\n", with: "")
    #expect(flat.contains("error: the dashboard cannot start"), "\(screen)")
    #expect(flat.contains("TERM=\"\(term)\""), "\(screen)")
    #expect(screen.contains("\nerror: the dashboard cannot start"), "the message starts its own line: \(screen)")
    // The session is alive, with its change.
    try terminal.send("save after", "Enter")
    let saved = try terminal.waitFor { $0.contains("[saved] saved after.json") }
    #expect(saved.contains("[saved] saved after.json"), "\(saved)")
    #expect(try SessionFile.load(folder + "/after.json").spec.training.batchSize == 7)
    try terminal.send("quit", "Enter")
    #expect(try terminal.waitFor { $0.contains("EXIT=") }.contains("EXIT=0"))
  }

  @Test func aHistoryFileThatIsAFIFOIsNeverRead() throws {
    let folder = temporaryFolder("specbench-term")
    try FileManager.default.createDirectory(atPath: folder + "/state/specbench", withIntermediateDirectories: true)
    #expect(mkfifo(folder + "/state/specbench/history", 0o600) == 0)
    let terminal = try TmuxSession.specbench(from: folder, width: 160, height: 30)
    let screen = try terminal.waitFor { $0.contains("spirals [fast idle]>") }
    let flat = screen.replacingOccurrences(of: "\n", with: "")
    #expect(flat.contains("is a FIFO (named pipe), not a regular file; history is not read or saved"), "\(screen)")
    try terminal.send("quit", "Enter")
    #expect(try terminal.waitFor { $0.contains("EXIT=") }.contains("EXIT=0"), "quitting does not block on the FIFO either")
  }

  @Test func commandsThatCannotFitFailAndThePromptComesBack() throws {
    let folder = temporaryFolder("specbench-term")
    let terminal = try TmuxSession.specbench(from: folder, width: 160, height: 40)
    try terminal.waitFor { $0.contains("spirals [fast idle]>") }
    for line in ["add dense 1000000000", "add dense 9223372036854775807", "data spirals samples=1000000000000"] {
      try terminal.send(line, "Enter")
    }
    let screen = try terminal.waitFor { $0.contains("data.samples") }
    #expect(screen.components(separatedBy: "error: ").count - 1 == 3, "\(screen)")
    try terminal.send("show model", "Enter")
    let model = try terminal.waitFor { $0.contains("dense3") && $0.contains("Model:") }
    let table = model.components(separatedBy: "Model:").last ?? ""
    #expect(table.contains("dense3") && !table.contains("dense4"), "the refused layers were not added: \(model)")
    try terminal.send("quit", "Enter")
    #expect(try terminal.waitFor { $0.contains("EXIT=") }.contains("EXIT=0"))
  }

  @Test func aHostileSessionNameNeverReachesTheTerminalRaw() throws {
    let folder = temporaryFolder("specbench-term")
    var bundle = try SessionFile.load(repositoryPath("sessions/xor.json"))
    bundle.spec.name = "evil\u{1B}]2;OWNED\u{07}\u{1B}[2J"
    try SessionFile.save(bundle, to: folder + "/evil")
    let terminal = try TmuxSession.specbench("evil.json", from: folder, width: 120, height: 30)
    let screen = try terminal.waitFor { $0.contains("evil^[]2;OWNED^G^[[2J [reference idle]>") }
    #expect(screen.contains("evil^[]2;OWNED^G^[[2J [reference idle]>"), "the prompt shows the escapes visibly: \(screen)")
    // The pane's title was not set by the name.
    let title = try runProcess(which("tmux")!, ["-L", "specbench-tests", "display-message", "-p", "-t", terminal.name, "#{pane_title}"])
    #expect(!title.stdout.contains("OWNED"), "\(title.stdout)")
    try terminal.send("history", "Enter")
    try terminal.send("quit", "Enter")
    try terminal.send("quit", "Enter")
    #expect(try terminal.waitFor { $0.contains("EXIT=") }.contains("EXIT=0"))
  }

  @Test(arguments: [SIGTERM, SIGHUP])
  func aSignalWithUnsavedChangesSavesARecoveryCopy(_ signalNumber: Int32) throws {
    let folder = temporaryFolder("specbench-term")
    try FileManager.default.copyItem(atPath: repositoryPath("sessions/xor.json"), toPath: folder + "/work.json")
    let terminal = try TmuxSession.specbench(folder + "/work.json", from: folder, history: folder, width: 120, height: 30)
    try terminal.waitFor { $0.contains("xor [reference idle]>") }
    try terminal.send("batch 9", "Enter")
    try terminal.waitFor { $0.contains("batch size 9") }
    let pids = ReplHangupTests.specbenchProcesses(opening: folder + "/work.json")
    #expect(pids.count == 1)
    for pid in pids { kill(pid, signalNumber) }
    let screen = try terminal.waitFor { $0.contains("EXIT=") }.replacingOccurrences(of: "\n", with: "")
    #expect(screen.contains("unsaved changes in xor were saved to \(folder)/state/specbench/recovered/xor-"), "\(screen)")
    let recovered = try FileManager.default.contentsOfDirectory(atPath: folder + "/state/specbench/recovered").filter {
      $0.hasSuffix(".json")
    }
    #expect(recovered.count == 1)
    let bundle = try SessionFile.load(folder + "/state/specbench/recovered/" + recovered[0])
    #expect(bundle.spec.training.batchSize == 9)
    // The session's own file is untouched.
    #expect(try SessionFile.load(folder + "/work.json").spec.training.batchSize == 16)
  }
}
