import ArgumentParser
import Foundation
import Session
import SpecKit

struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Summarise a session: layers, shapes, parameter counts, optimizer, data, state, history."
  )

  @Argument(help: "The session file (NAME.json).")
  var file: String

  func run() throws {
    do {
      let bundle = try SessionFile.load(file)
      say(bundle.spec.summary(file: file, tensorsChecked: bundle.tensors != nil))
      // On a colour terminal: smoothed, with the raw line faint behind it. Plain text cannot
      // tell the two apart, so it shows the raw values only.
      let colour = isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
      if let chart = HistoryPlots.lossChart(bundle.spec.history, smoothing: colour ? 0.6 : 0) {
        let grid = chart.render(width: 72, height: 14)
        say("")
        Console.write((colour ? grid.ansiText() : grid.plainText) + "\n", raw: true)
      }
    } catch {
      throw fail(error)
    }
  }
}
