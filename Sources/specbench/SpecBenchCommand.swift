import ArgumentParser
import Backends
import Datasets
import Foundation
import Session
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
      Bench.self, Posterior.self, CalibrationCommand.self, Predict.self, CompareCommand.self, CacheCommand.self,
    ],
    defaultSubcommand: Repl.self
  )

  /// Makes the standard streams safe to use (a closed one is never reused for a file; a reader
  /// that went away is a failed write, not death by SIGPIPE), then runs the verb. A verb whose
  /// output could not be written exits with status 1.
  static func main() {
    Console.prepare()
    main(nil)
    if let failure = Console.outputFailure {
      Console.error("specbench: \(failure)")
      Foundation.exit(1)
    }
  }
}

/// Prints a line of a verb's output (control characters from files made visible).
func say(_ text: String) { Console.write(text + "\n") }

/// `--allow-data DIR`: folders outside the session's own from which its data files may be read.
struct DataAccessOptions: ParsableArguments {
  @Option(
    name: .customLong("allow-data"),
    help: "Also read data files from this folder (repeatable). A session file names data only inside its own folder otherwise.")
  var allowData: [String] = []

  func apply() { for folder in allowData { DataAccess.allow(folder) } }

  /// Allows the folders, then loads the session `file` (a failure is printed, exit status 1).
  func load(_ file: String) throws -> SessionBundle {
    apply()
    do { return try SessionFile.load(file) } catch { throw fail(error) }
  }
}

/// The settings of the jax backend (`--devices`, `--processes`, `--hosts`, `--coordinator`),
/// handed to the backend as its options; a backend that takes none refuses them.
struct BackendSettings: ParsableArguments {
  @Option(help: "jax: the devices of each process to train on, data-parallel (CPU devices are forced on a CPU host).")
  var devices: Int?

  @Option(help: "jax: worker processes joined by jax.distributed on this host, each with --devices devices.")
  var processes: Int?

  @Option(help: "jax: hosts to start one worker process on each, through ssh (SPECBENCH_JAX_SSH), comma-separated.")
  var hosts: String?

  @Option(help: "jax: the group's coordinator, HOST:PORT (default: the first host, port 8476).")
  var coordinator: String?

  var options: [BackendOption] {
    [("devices", devices.map(String.init)), ("processes", processes.map(String.init)), ("hosts", hosts), ("coordinator", coordinator)]
      .compactMap { key, value in value.map { BackendOption(key: key, value: $0) } }
  }
}

/// A step count from the command line: a whole number from 0 to the most steps a session counts.
func parseStepCount(_ text: String, option: String) throws -> Int {
  guard let value = Int(text) else {
    throw ValidationError("\(option) \(text): expected a whole number of steps, such as 500")
  }
  guard value >= 0 else { throw ValidationError("\(option) \(text): the number of steps must be 0 or more") }
  guard value <= StateSpec.stepLimit else {
    throw ValidationError("\(option) \(text): at most \(StateSpec.stepLimit) steps (2^53)")
  }
  return value
}

/// Checks, before any work, a path a verb will save a session to (the save checks it again):
/// a degenerate path or a special file is refused at once rather than after training.
func checkSaveTarget(_ path: String) throws {
  let paths = SessionFile.paths(for: path)
  do {
    if path != paths.json { _ = try FileAccess.writableTarget(path, what: "a session") }
    _ = try FileAccess.writableTarget(paths.json, what: "a session")
  } catch {
    throw fail(error)
  }
}

/// Prints a SpecKit error to standard error and exits with status 1.
func fail(_ error: SpecError) -> ExitCode { failWith(error.description) }

/// Prints a message to standard error and exits with status 1.
func failWith(_ message: String) -> ExitCode {
  Console.error(message)
  return ExitCode(1)
}
