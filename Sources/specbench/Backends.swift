import ArgumentParser
import Backends
import Interchange

struct BackendsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "backends",
    abstract: "Show which backend supports which layer, activation, loss, optimizer and schedule, and what each export format carries."
  )

  func run() throws {
    for backend in BackendRegistry.builtIn.all { say("\(backend.name): \(backend.summary)") }
    say("")
    printTable(BackendRegistry.builtIn.capabilityTable())
    // The exporters: every layer, activation and optimizer of the format goes out to each of
    // them; what each file can carry differs.
    say("")
    printTable(
      [["export (specbench export --to …)", "onnx", "safetensors", "pytorch", "keras"]]
        + ExportFormat.carries.map { [$0.what, $0.onnx, $0.safetensors, $0.pytorch, $0.keras] })
  }
}

/// Columns padded to their widest cell.
private func printTable(_ rows: [[String]]) {
  let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
  for row in rows {
    say(
      row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        .trimmingTrailingSpaces)
  }
}

extension String {
  fileprivate var trimmingTrailingSpaces: String {
    var text = self
    while text.hasSuffix(" ") { text.removeLast() }
    return text
  }
}
