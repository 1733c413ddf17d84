import SpecKit

/// The backends built into SpecBench, by name.
public enum BackendRegistry {
  /// Every backend, in the order `specbench backends` shows them.
  public static let all: [any Backend] = [ReferenceBackend(), FastBackend()]

  public static var names: [String] { all.map(\.name) }

  /// The backend called `name`.
  public static func named(_ name: String) throws(BackendError) -> any Backend {
    guard let backend = all.first(where: { $0.name == name }) else { throw .unknownBackend(name: name, known: names) }
    return backend
  }

  /// The capability matrix as text rows: one row per feature, one column per backend.
  public static func capabilityTable() -> [[String]] {
    var rows: [[String]] = [["feature"] + names]
    func section(_ title: String, _ names: [String], _ keyPath: KeyPath<Capabilities, Set<String>>) {
      for name in names {
        rows.append(["\(title) \(name)"] + all.map { $0.capabilities[keyPath: keyPath].contains(name) ? "yes" : "-" })
      }
    }
    section("layer", LayerSpec.typeNames, \.layers)
    section("activation", Activation.names, \.activations)
    section("loss", LossSpec.names, \.losses)
    section("optimizer", OptimizerSpec.names, \.optimizers)
    section("schedule", ScheduleSpec.names, \.schedules)
    return rows
  }
}
