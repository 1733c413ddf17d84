import ArgumentParser
import SpecKit

struct Init: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write a session with its initial state (seeded initializers); trains nothing.",
    discussion: """
      The saved session is at step 0: parameters and buffers from their initializers, optimizer
      slots at their starting values, generators at their seeded positions. Any state and
      history the input had are not carried over; its journal is.
      """
  )

  @Argument(help: "The session file to start from (NAME.json).")
  var file: String

  @Option(help: "Where to write: PATH.json and PATH.safetensors (PATH may end in .json).")
  var save: String

  func run() throws {
    do {
      var spec = try SessionFile.load(file).spec
      spec.history = HistorySpec()
      spec.state = nil
      let written = try SessionFile.save(SessionBundle(spec: spec, state: try spec.initialTrainingState()), to: save)
      let paths = SessionFile.paths(for: save)
      let count = (try? written.stateLayout().count) ?? 0
      say("wrote \(paths.json) and \(paths.tensors) (\(count) tensors, step 0)")
    } catch {
      throw fail(error)
    }
  }
}
