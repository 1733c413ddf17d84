import ArgumentParser
import Foundation
import Session
import SpecKit

struct Validate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Check a session file and print every problem with its JSON path.",
    discussion: """
      Checks the JSON, every field and default, the shapes through the model, the loss against
      the model and the data, and — when the session has state — the tensor file's hash, names
      and shapes. Exits 0 only when there is no problem; problems go to standard error as
      FILE:LINE:COLUMN: PATH: MESSAGE.
      """
  )

  @Argument(help: "The session file (NAME.json).")
  var file: String

  @Flag(help: "Print the result as one JSON object on standard output.")
  var json = false

  func run() throws {
    do {
      let bundle = try SessionFile.load(file)
      let spec = bundle.spec
      if json {
        say(JSONWriter.compact(.object(["valid": .bool(true), "file": .string(file), "problems": .array([])])))
      } else {
        let params = spec.model.parameterCount
        let state = spec.state.map { "state at step \($0.step)" } ?? "no state"
        say("\(file): valid — \(spec.model.layers.count) layers, \(params) trainable parameters, \(state)")
      }
    } catch {
      if json {
        say(JSONWriter.compact(.object(["valid": .bool(false), "file": .string(file), "problems": .array(problems(error))])))
        throw ExitCode(1)
      }
      throw fail(error)
    }
  }

  /// The error as JSON problem objects: path, message, and line/column when known.
  private func problems(_ error: SpecError) -> [JSONValue] {
    switch error {
    case .invalid(_, let issues):
      return issues.map { issue in
        var members: [JSONObject.Member] = [
          .init(key: "path", value: .string(issue.path.description)), .init(key: "message", value: .string(issue.message)),
        ]
        if let location = issue.location {
          members += [.init(key: "line", value: .int(location.line)), .init(key: "column", value: .int(location.column))]
        }
        return .object(members)
      }
    case .syntax(_, let syntax):
      return [
        .object([
          "path": .string(""), "message": .string("not valid JSON: " + syntax.message), "line": .int(syntax.location.line),
          "column": .int(syntax.location.column),
        ])
      ]
    default:
      return [.object(["path": .string(""), "message": .string(error.description)])]
    }
  }
}
