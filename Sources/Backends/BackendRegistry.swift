import Dispatch
import SpecKit
import Synchronization

/// The backends a program offers, by name: a value handed to the session engine (and to the
/// commands that train), so that a backend can carry settings of its own — an interpreter, a
/// device count, an address — and a program or a test can offer other backends than the
/// built-in ones.
public struct BackendRegistry: Sendable {
  /// Every backend, in the order `specbench backends` shows them.
  public var all: [any Backend]

  public init(_ backends: [any Backend]) { all = backends }

  /// The backends built into SpecBench: reference, fast, and jax (an engine in another
  /// process, available where Python has jax).
  public static let builtIn = BackendRegistry([ReferenceBackend(), FastBackend(), JaxBackend()])

  /// This registry with `backend` in place of the one of the same name (a backend with new
  /// settings), or added at the end.
  public func replacing(_ backend: any Backend) -> BackendRegistry {
    var copy = self
    if let index = all.firstIndex(where: { $0.name == backend.name }) { copy.all[index] = backend } else { copy.all.append(backend) }
    return copy
  }

  public var names: [String] { all.map(\.name) }

  /// The backend called `name`.
  public func named(_ name: String) throws(BackendError) -> any Backend {
    guard let backend = all.first(where: { $0.name == name }) else { throw .unknownBackend(name: name, known: names) }
    return backend
  }

  /// The capability matrix as text rows: one row per feature, one column per backend.
  public func capabilityTable() -> [[String]] {
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
    rows.append(["variational layers (model.variational)"] + all.map { $0.capabilities.variational ? "yes" : "-" })
    // A Laplace posterior is computed from the state, on no backend: every backend's session may have one.
    rows.append(["Laplace posterior (posterior)"] + all.map { _ in "yes (no backend needed)" })
    return rows
  }
}

/// Whether each backend can run here, found out once and in the background: asking jax means
/// starting Python, which a front end must not wait for at every frame.
public enum BackendAvailability {
  private static let state = Mutex<(unavailable: [String: Bool], pending: Set<String>)>(([:], []))

  private static func key(_ backend: any Backend) -> String { String(reflecting: backend) }

  /// True once `backend` is known not to run here; false while that is not known yet (and
  /// then finding out starts).
  public static func isKnownUnavailable(_ backend: any Backend) -> Bool {
    let key = key(backend)
    let (known, start): (Bool?, Bool) = state.withLock { s in
      if let known = s.unavailable[key] { return (known, false) }
      return (nil, s.pending.insert(key).inserted)
    }
    if let known { return known }
    if start {
      DispatchQueue.global(qos: .utility).async {
        let unavailable = backend.unavailableReason != nil
        state.withLock { s in
          s.unavailable[key] = unavailable
          s.pending.remove(key)
        }
      }
    }
    return false
  }
}
