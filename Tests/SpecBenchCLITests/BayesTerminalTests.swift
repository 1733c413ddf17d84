import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

/// The posterior and variational layers at the prompt and in the dashboard, under tmux.
@Suite("Bayes in the terminal", .serialized)
struct BayesTerminalTests {
  @Test func aPosteriorAtThePromptThenItsUncertaintyAndSigmaInTheDashboard() throws {
    let folder = temporaryFolder()
    try FileManager.default.copyItem(atPath: repositoryPath("sessions/blobs-laplace.json"), toPath: folder + "/b.json")
    let terminal = try TmuxSession.specbench("b.json", from: folder, width: 160, height: 50)
    try terminal.waitFor { $0.contains("blobs-laplace [fast idle]>") }
    try terminal.type("stop max_steps 400", until: "stop at the first of")
    try terminal.type("train --wait", until: "[stopped] stopped by max_steps at step 400")
    var screen = try terminal.type("posterior", until: "reliability of laplace last_layer full probit")
    #expect(screen.contains("posterior: laplace over last_layer (195 parameters), full GGN of 300 samples"), "\(screen)")
    #expect(screen.contains("point ") && screen.contains("laplace last_layer full probit"), "\(screen)")
    #expect(screen.range(of: #"\d\.\d\d–\d\.\d\d  │[█┃| ]+│ \d\.\d{3}"#, options: .regularExpression) != nil, "\(screen)")
    // The dashboard shows the predictive uncertainty at these weights.
    try terminal.send("dashboard", "Enter")
    screen = try terminal.waitFor { DashboardTerminalTests.allPanes($0) }
    let optimizer = DashboardTerminalTests.pane("optimizer · adam", in: screen).joined(separator: "\n")
    #expect(optimizer.contains("uncertainty: laplace last_layer full probit on validation: NLL"), "\(optimizer)")
    // Variational layers from the dashboard's command line: the posterior goes, σ is a histogram.
    try terminal.send(":")
    try terminal.send("-l", "variational dense3 train_samples=2")
    try terminal.send("Enter")
    screen = try terminal.waitFor { $0.contains("removed the last_layer Laplace posterior") }
    #expect(!DashboardTerminalTests.pane("optimizer · adam", in: screen).joined().contains("uncertainty:"), "\(screen)")
    // The histogram pane (Tab), the third layer (↓ ↓), its fourth tensor (→ → →): σ beside ρ.
    try terminal.send("Tab", "Down", "Down", "Right", "Right", "Right")
    screen = try terminal.waitFor { $0.contains("─ histogram · dense3.weight_sigma @ step 400") }
    try terminal.send("Left")
    screen = try terminal.waitFor { $0.contains("─ histogram · dense3.weight_rho @ step 400") }
    try terminal.send("q")
    try terminal.waitFor { $0.contains("blobs-laplace [fast idle *]>") }
    try terminal.type("stop max_steps 420", until: "stop at the first of")
    try terminal.type("train --wait", until: "[stopped] stopped by max_steps at step 420")
    screen = try terminal.type("hist dense3.weight_rho", until: "dense3.weight_rho")
    screen = try terminal.type("calibration", until: "reliability of variational (32 draws)")
    #expect(screen.contains("mean network") && screen.contains("variational (32 draws)"), "\(screen)")
    try terminal.type("save v", until: "saved v.json")
    try terminal.send("quit", "Enter")
    #expect(try terminal.waitFor { $0.contains("EXIT=") }.contains("EXIT=0"))
    let saved = try SessionFile.load(folder + "/v.json")
    #expect(saved.spec.model.variational?.layers == ["dense3"] && saved.spec.posterior == nil)
    #expect(saved.tensors?["param/dense3.weight_rho"]?.scalars.contains { $0 != -5 } == true)
  }
}
