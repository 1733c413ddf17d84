/// Reads one part of a spec from JSON with the same rules, defaults and messages as a session
/// file (the command language builds these objects from `key=value` words).
public enum SpecParts {
  public static func layer(_ json: JSONValue, at path: JSONPath) throws(SpecError) -> (name: String?, kind: LayerSpec.Kind) {
    let part = try read { log in LayerSpec.read(json, at: path, log: log) }
    return (part.name, part.kind)
  }

  public static func data(_ json: JSONValue, at path: JSONPath = "data") throws(SpecError) -> DataSpec {
    try read { log in DataSpec.read(json, at: path, log: log) }
  }

  public static func loss(_ json: JSONValue, at path: JSONPath = "loss") throws(SpecError) -> LossSpec {
    try read { log in LossSpec.read(json, at: path, log: log) }
  }

  public static func optimizer(_ json: JSONValue, at path: JSONPath = "optimizer") throws(SpecError) -> OptimizerSpec {
    try read { log in OptimizerSpec.read(json, at: path, log: log) }
  }

  public static func schedule(_ json: JSONValue, at path: JSONPath = "schedule") throws(SpecError) -> ScheduleSpec {
    try read { log in ScheduleSpec.read(json, at: path, log: log) }
  }

  public static func variational(_ json: JSONValue, at path: JSONPath = "model.variational") throws(SpecError) -> VariationalSpec {
    try read { log in VariationalSpec.read(json, at: path, log: log) }
  }

  public static func stopRule(_ json: JSONValue, at path: JSONPath) throws(SpecError) -> StopRule {
    try read { log in StopRule.read(json, at: path, log: log) }
  }

  /// Every field-level and cross-field problem of a whole spec built in code (an unfinished
  /// session in the workbench), as if it had been read from its file.
  public static func problems(of spec: SessionSpec) -> [SpecIssue] {
    do {
      _ = try SessionSpec.decode(spec.json)
      return []
    } catch {
      if case .invalid(_, let issues) = error { return issues }
      return [SpecIssue(path: .root, message: error.description)]
    }
  }

  private static func read<T>(_ body: (IssueLog) -> T?) throws(SpecError) -> T {
    let log = IssueLog()
    let value = body(log)
    guard let value, log.isEmpty else { throw .invalid(file: nil, log.issues) }
    return value
  }
}
