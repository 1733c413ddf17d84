import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

/// A CNN at the prompt and in the dashboard, under tmux: its model table, its filters as grey
/// images, its histograms per convolution weight.
@Suite("Images in the terminal", .serialized)
struct ImageTerminalTests {
  @Test func theDigitsCNNsFiltersAtThePromptAndItsWeightsInTheDashboard() throws {
    let folder = temporaryFolder()
    try FileManager.default.copyItem(atPath: repositoryPath("sessions/digits-cnn.json"), toPath: folder + "/d.json")
    let terminal = try TmuxSession.specbench("d.json", from: folder, width: 140, height: 50)
    try terminal.waitFor { $0.contains("digits-cnn [fast idle]>") }
    var screen = try terminal.type("show model", until: "trainable parameters: 2,730")
    #expect(screen.contains("conv2d2      conv2d      [20, 4, 4]   1,820"), "\(screen)")
    try terminal.type("stop max_steps 100", until: "stop at the first of")
    try terminal.type("train --wait", until: "[stopped] stopped by max_steps at step 100")
    screen = try terminal.type("filters conv2d1", until: "conv2d1.weight: 10 filters 3×3")
    #expect(screen.contains("#9") && screen.contains("scale: blank = "), "\(screen)")
    #expect(screen.unicodeScalars.contains { "▒▓█".unicodeScalars.contains($0) }, "\(screen)")
    // The dashboard's histogram pane (Tab) on the first layer: its convolution weight.
    try terminal.send("dashboard", "Enter")
    screen = try terminal.waitFor { DashboardTerminalTests.allPanes($0) }
    try terminal.send("Tab")
    screen = try terminal.waitFor { $0.contains("─ histogram · conv2d1.weight @ step 100") }
    try terminal.send("Down")
    screen = try terminal.waitFor { $0.contains("─ histogram · conv2d2.weight @ step 100") }
    try terminal.send("q")
    try terminal.waitFor { $0.contains("digits-cnn [fast idle *]>") }
    try terminal.type("quit", until: "quit (or Ctrl-D) again discards them")
    try terminal.send("quit", "Enter")
    #expect(try terminal.waitFor { $0.contains("EXIT=") }.contains("EXIT=0"))
  }
}
