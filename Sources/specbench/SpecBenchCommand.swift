import ArgumentParser
import Foundation
import SpecKit

/// The `specbench` command: argument parsing only; every verb calls into the library.
@main
struct SpecBenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "specbench",
    abstract: "A terminal workbench for machine-learning experiments built from backend-agnostic specs.",
    discussion: """
      Session files (NAME.json, plus NAME.safetensors once trained) describe a whole \
      experiment; see docs/spec-format.md. Example sessions are in sessions/.
      """,
    version: SpecBenchVersion.current,
    subcommands: [
      Repl.self, DashboardCommand.self, Run.self, Validate.self, Inspect.self, Init.self, Export.self, Import.self, BackendsCommand.self,
      Bench.self,
    ],
    defaultSubcommand: Repl.self
  )
}

/// Prints a SpecKit error to standard error and exits with status 1.
func fail(_ error: SpecError) -> ExitCode { failWith(error.description) }

/// Prints a message to standard error and exits with status 1.
func failWith(_ message: String) -> ExitCode {
  FileHandle.standardError.write(Data((message + "\n").utf8))
  return ExitCode(1)
}
