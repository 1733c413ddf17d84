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
