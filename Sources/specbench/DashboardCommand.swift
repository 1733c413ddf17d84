import ArgumentParser
import Dashboard
import Foundation
import REPL
import Session
import SpecKit
import TermPlot

struct DashboardCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dashboard",
    abstract: "The full-screen dashboard: live loss, weight histograms, model, optimizer and events.",
    discussion: """
      Opens the session (or the built-in one) in the dashboard; q leaves it for the REPL on the \
      same session, where dashboard opens it again. With --snapshot, renders one frame to a text \
      file instead, without a terminal. Themes come from themes/*.json (see docs/dashboard.md).
      """
  )

  @Argument(help: "A session file to open (NAME.json), or a workspace folder saved by a workbench of several runs.")
  var file: String?

  @Option(help: "Write one frame to this file as text and exit (no terminal needed); - prints it.")
  var snapshot: String?

  @Option(help: "The frame's size for --snapshot, as WIDTHxHEIGHT.")
  var size: String = "120x40"

  @Option(help: "The theme to start with (a name from themes/).")
  var theme: String?

  @Option(help: "Colours in the --snapshot text: none, 8, 256 or truecolor (ANSI escape sequences).")
  var color: String = "none"

  @OptionGroup var access: DataAccessOptions

  func run() throws {
    access.apply()
    let bench = try openWorkbench(file)
    let themes = ThemeLibrary.load(folders: ThemeLibrary.defaultFolders())
    if let snapshot {
      try writeSnapshot(bench, themes: themes, to: snapshot)
      return
    }
    guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
      throw failWith("the dashboard needs a terminal; --snapshot FILE renders a frame to a file without one")
    }
    let repl = makeRepl(bench, themes: themes, themeName: theme)
    let status = repl.run(startInDashboard: true)
    if status != 0 { throw ExitCode(status) }
  }

  func writeSnapshot(_ bench: Workbench, themes: ThemeLibrary, to path: String) throws {
    let engine = bench.current
    let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
    guard parts.count == 2, parts.allSatisfy({ $0 > 0 && $0 <= 1000 }) else {
      throw failWith("--size \(size): expected WIDTHxHEIGHT such as 120x40")
    }
    let depths = ["none": ColorDepth.none, "8": .basic, "256": .palette256, "truecolor": .direct]
    guard let depth = depths[color] else { throw failWith("--color \(color): expected none, 8, 256 or truecolor") }
    for problem in themes.problems { Console.error(problem) }
    var chosen = themes.themes[0]
    if let theme {
      guard let named = themes.named(theme) else {
        throw failWith("no theme named \"\(theme)\"; themes: \(themes.themes.map(\.name).joined(separator: ", "))")
      }
      chosen = named
    }
    var input = DashboardInput(spec: engine.spec, snapshot: engine.snapshot, hasUnsavedChanges: false, themeName: chosen.name)
    input.runs = bench.runs.count > 1 ? bench.rows : []
    let grid = DashboardView.render(input, state: DashboardState(), width: parts[0], height: parts[1])
    let text = depth == .none ? grid.plainText : grid.ansiText(palette: chosen.ansiPalette(depth: depth))
    // `-` is standard output (a closed or full one is an error); /dev/stdout, a terminal or a
    // FIFO get the frame written through; a file is replaced atomically; a folder, a block
    // device or a dangling path is refused.
    if path == "-" {
      guard Console.write(text + "\n", raw: true) else {
        throw failWith("cannot write the frame: \(Console.outputFailure ?? "standard output failed")")
      }
      return
    }
    do { try AtomicFile.writeOrStream(Array((text + "\n").utf8), to: path, what: "a dashboard frame") } catch { throw fail(error) }
  }
}

/// The session in FILE, the runs of a workspace folder, or the built-in default session.
func openWorkbench(_ file: String?) throws -> Workbench {
  do { return try Workbench.open(file) } catch { throw fail(error) }
}

/// The REPL, able to open the dashboard.
func makeRepl(_ bench: Workbench, themes: ThemeLibrary? = nil, themeName: String? = nil) -> InteractiveRepl {
  let repl = InteractiveRepl(workbench: bench)
  var library = themes
  var first = themeName
  // The dashboard opens again as it was left.
  var state = DashboardState()
  repl.openDashboard = { bench, shouldStop in
    let themes = library ?? ThemeLibrary.load(folders: ThemeLibrary.defaultFolders())
    library = themes
    defer { first = nil }
    return DashboardLoop.run(bench: bench, themes: themes, themeName: first, state: &state, shouldStop: shouldStop)
  }
  return repl
}
