import ArgumentParser
import Foundation
import Session
import SpecKit

struct CompareCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "compare",
    abstract: "Compare sessions: their losses in one chart, their final metrics, the spec fields in which they differ.",
    discussion: """
      Each argument is a session file, or a workspace folder (every run it holds). --by time \
      lines the runs up by the seconds they trained in a workbench (runs trained elsewhere are \
      left out of that chart). --json prints the same figures as JSON.
      """
  )

  @Argument(help: "Session files (NAME.json) or workspace folders.")
  var files: [String]

  @Option(help: "Line the runs up by step or by training time.")
  var by: String = "step"

  @Flag(help: "Print JSON instead of the chart and tables.")
  var json = false

  @Option(help: "The width of the chart and tables in text.")
  var width: Int = 100

  func run() throws {
    guard let axis = CompareAxis(rawValue: by) else { throw failWith("--by \(by): expected step or time") }
    guard (40...1000).contains(width) else { throw failWith("--width \(width): expected 40 to 1000 columns") }
    guard !files.isEmpty else { throw failWith("compare: name at least one session file or workspace folder") }
    var runs: [ComparedRun] = []
    for file in files {
      do {
        let bench = try Workbench.open(file)
        for run in bench.runs {
          let name = bench.runs.count > 1 || bench.folder != nil ? run.name : SessionFile.paths(for: file).name
          runs.append(
            ComparedRun(name: name, spec: run.engine.spec, status: "file", step: run.engine.state?.step, timeline: run.timeline))
        }
      } catch {
        throw fail(error)
      }
    }
    let comparison = Comparison(runs, by: axis)
    if json {
      say(JSONWriter.canonical(comparison.json).trimmingCharacters(in: .newlines))
      return
    }
    let colour = isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
    let grid = comparison.render(width: width)
    guard Console.write((colour ? grid.ansiText() : grid.plainText) + "\n", raw: true) else { throw ExitCode(1) }
  }
}
