import ArgumentParser
import Backends

struct BackendsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "backends",
    abstract: "Show which backend supports which layer, activation, loss, optimizer and schedule."
  )

  func run() throws {
    for backend in BackendRegistry.all { print("\(backend.name): \(backend.summary)") }
    print("")
    let rows = BackendRegistry.capabilityTable()
    let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
      print(
        row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
          .trimmingTrailingSpaces)
    }
  }
}

extension String {
  fileprivate var trimmingTrailingSpaces: String {
    var text = self
    while text.hasSuffix(" ") { text.removeLast() }
    return text
  }
}
