import ArgumentParser
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
      print(bundle.spec.summary(file: file, tensorsChecked: bundle.tensors != nil))
    } catch {
      throw fail(error)
    }
  }
}
