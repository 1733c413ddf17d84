import ArgumentParser
import Foundation
import REPL
import Session
import SpecKit

struct Repl: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "The interactive workbench (the default): build, train, plot and save sessions.",
    discussion: """
      With no FILE, a built-in session (three spirals, a 2-64-64-3 MLP, Adam) is loaded so that \
      train works at once. When standard input is not a terminal, commands are read from it line \
      by line (specbench < script.txt); the exit status is 1 if any command failed.
      """
  )

  @Argument(help: "A session file to open (NAME.json), or a workspace folder saved by a workbench of several runs.")
  var file: String?

  @OptionGroup var access: DataAccessOptions

  func run() throws {
    access.apply()
    let bench = try openWorkbench(file)
    let status = isatty(STDIN_FILENO) == 1 ? makeRepl(bench).run() : ScriptRunner.run(bench)
    if status != 0 { throw ExitCode(status) }
  }
}
