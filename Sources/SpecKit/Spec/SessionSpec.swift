/// A whole experiment: model, loss, optimizer and schedule, data, training plan, preferred
/// backend, and — once training has begun — its state, the commands that built it and what it
/// recorded. The in-memory form of a session file (`docs/spec-format.md`).
public struct SessionSpec: Hashable, Sendable {
  /// The value of the `format` key.
  public static let formatName = "specbench/session"
  /// The newest format version this build reads and the one it writes.
  public static let currentVersion = 6

  public var name: String
  public var model: ModelSpec
  public var loss: LossSpec
  public var optimizer: OptimizerSpec
  public var schedule: ScheduleSpec
  public var data: DataSpec
  public var training: TrainingSpec
  /// The preferred backend's name; any backend may load the file.
  public var backend: String
  /// Nil until the session has state; then the tensors live in a `.safetensors` beside the file.
  public var state: StateSpec?
  /// A Laplace posterior of the state's weights (format version 5), or nil.
  public var posterior: PosteriorSpec?
  /// The commands that built the session, oldest first.
  public var journal: [String]
  public var history: HistorySpec

  public init(
    name: String, model: ModelSpec, loss: LossSpec, optimizer: OptimizerSpec, schedule: ScheduleSpec = .constant,
    data: DataSpec, training: TrainingSpec = TrainingSpec(), backend: String = "reference", state: StateSpec? = nil,
    journal: [String] = [], history: HistorySpec = HistorySpec(), posterior: PosteriorSpec? = nil
  ) {
    self.posterior = posterior
    (self.name, self.model, self.loss, self.optimizer, self.schedule) = (name, model, loss, optimizer, schedule)
    (self.data, self.training, self.backend, self.state, self.journal, self.history) = (data, training, backend, state, journal, history)
  }

  /// The spec as a JSON value, every field written (defaults included).
  public var json: JSONValue {
    .object([
      "format": .string(Self.formatName), "version": .int(Self.currentVersion), "name": .string(name),
      "model": model.json, "loss": loss.json, "optimizer": optimizer.json, "schedule": schedule.json,
      "data": data.json, "training": training.json, "backend": .string(backend),
      "state": state?.json ?? .null, "posterior": posterior?.json ?? .null, "journal": .array(journal.map { .string($0) }),
      "history": history.json,
    ])
  }

  /// The canonical file text: sorted keys, two-space indentation, final newline. Equal specs give
  /// identical bytes.
  public var canonicalText: String { JSONWriter.canonical(json) }

  /// Reads a session from JSON text.
  ///
  /// - Parameters:
  ///   - text: UTF-8 bytes of the file.
  ///   - file: the path, used only in messages.
  ///   - defaultName: the name to use when the file has no `name` (the file's base name).
  /// - Throws: `SpecError.syntax` with line and column for text that is not JSON;
  ///   `.newerVersion` for a file from a newer SpecBench; `.invalid` with every problem found.
  public static func decode(_ text: some Collection<UInt8>, file: String? = nil, defaultName: String = "session") throws(SpecError)
    -> SessionSpec
  {
    let root: JSONValue
    do { root = try JSONParser.parse(text) } catch { throw .syntax(file: file, error) }
    return try decode(root, file: file, defaultName: defaultName)
  }

  /// Reads a session from a parsed JSON value (see `decode(_:file:defaultName:)`).
  public static func decode(
    _ root: JSONValue, file: String? = nil, defaultName: String = "session", migrations: [Int: Migration] = SpecMigrations.steps
  ) throws(SpecError) -> SessionSpec {
    let log = IssueLog()
    guard let object = root.objectValue else {
      throw .invalid(
        file: file,
        [
          SpecIssue(
            path: .root, message: "must be a session object {\"format\": \"specbench/session\", ...}, got \(root.excerpt())",
            location: root.location)
        ])
    }
    var document = root
    var fileVersion = currentVersion
    if let version = object["version"], let number = version.numberValue?.int, number >= 1 {
      fileVersion = number
      if number > currentVersion { throw .newerVersion(file: file, found: number, supported: currentVersion) }
      if number < currentVersion {
        do { document = try SpecMigrations.migrate(root, from: number, to: currentVersion, steps: migrations) } catch {
          throw .invalid(file: file, [error])
        }
      }
    }
    let spec = read(document, log: log, defaultName: defaultName, fileVersion: fileVersion)
    spec?.checkConsistency(log: log)
    guard let spec, log.isEmpty else {
      // Cross-field problems are found on values, not text: place them by their path.
      let placed = log.issues.map { issue in
        var issue = issue
        if issue.location == nil { issue.location = document.location(of: issue.path) }
        return issue
      }
      throw .invalid(file: file, IssueLog.sortedByLocation(placed))
    }
    return spec
  }

  /// Reads a document already migrated to the current version; `fileVersion` is the version the
  /// file was written in, for the parts whose migration is not a rewrite of the JSON (version
  /// 1's history points, which move to the metrics file).
  static func read(_ root: JSONValue, log: IssueLog, defaultName: String, fileVersion: Int) -> SessionSpec? {
    guard var r = ObjectReader(root, at: .root, log: log) else { return nil }
    defer { r.finish() }
    _ = r.string("format", Rule(JSONWriter.quoted(formatName)) { $0 == formatName })
    _ = r.integer("version", Rule("a format version from 1 to \(currentVersion)") { $0 == currentVersion })
    let name = r.string("name", default: defaultName, .nonEmpty)
    let model = r.required("model").flatMap { ModelSpec.read($0, at: "model", log: log) }
    let loss = r.required("loss").flatMap { LossSpec.read($0, at: "loss", log: log) }
    let optimizer = r.required("optimizer").flatMap { OptimizerSpec.read($0, at: "optimizer", log: log) }
    let schedule = r.raw("schedule").map { ScheduleSpec.read($0, at: "schedule", log: log) } ?? .constant
    let data = r.required("data").flatMap { DataSpec.read($0, at: "data", log: log) }
    let training = r.raw("training").map { TrainingSpec.read($0, at: "training", log: log) } ?? TrainingSpec()
    let backend = r.string("backend", default: "reference", Rule("a backend name such as \"reference\"") { LayerSpec.isValidName($0) })
    var state: StateSpec?
    if let raw = r.raw("state"), !raw.isNull { state = StateSpec.read(raw, at: "state", log: log) }
    var posterior: PosteriorSpec?
    if let raw = r.raw("posterior"), !raw.isNull { posterior = PosteriorSpec.read(raw, at: "posterior", log: log) }
    let journal = r.array("journal", default: []) { value, path -> String? in
      guard let line = value.stringValue else {
        log.report(path, "must be a command line (a string), got \(value.excerpt())", at: value.location)
        return nil
      }
      return line
    }
    let history = r.raw("history").map { HistorySpec.read($0, at: "history", version: fileVersion, log: log) } ?? HistorySpec()
    guard let model, let loss, let optimizer, let schedule, let data else { return nil }
    return SessionSpec(
      name: name, model: model, loss: loss, optimizer: optimizer, schedule: schedule, data: data, training: training,
      backend: backend, state: state, journal: journal, history: history, posterior: posterior)
  }
}

/// A step that rewrites a document of one format version into the next.
public typealias Migration = @Sendable (JSONValue) throws(SpecIssue) -> JSONValue

/// Version migration: each step turns version n into n + 1; a file is carried through every step
/// from its version to the current one before it is read.
///
/// Version 1 → 2 moves the history's points out of the JSON into the metrics file: not a
/// rewrite of the document, so its step leaves the JSON as it is and the reader reads version
/// 1's `history` itself (`HistorySpec.read(_:at:version:log:)`); `SessionFile.save` then writes
/// the current version. Version 2 → 3 adds metrics names that version 2's `points` may not hold: a
/// version-2 document is a version-3 one as it is, so its step changes only `version`. Version
/// 3 → 4 adds the `lbfgs` optimizer and `I64` counts in the state file, which no version-3 file
/// holds: its step changes only `version` too. Version 4 → 5 adds `model.variational` and
/// `posterior`, which no version-4 file holds: its step changes only `version`. Version 5 → 6 adds
/// the image layers and the `npy`, `npz` and `digits` data, which no version-5 file holds: its
/// step changes only `version`.
public enum SpecMigrations {
  public static let steps: [Int: Migration] = [
    1: { document throws(SpecIssue) in document },
    2: { document throws(SpecIssue) in document },
    3: { document throws(SpecIssue) in document },
    4: { document throws(SpecIssue) in document },
    5: { document throws(SpecIssue) in document },
  ]

  /// Runs the steps from `version` up to `target`, setting `version` after each.
  public static func migrate(_ root: JSONValue, from version: Int, to target: Int, steps: [Int: Migration]) throws(SpecIssue) -> JSONValue {
    var document = root
    for v in version..<target {
      guard let step = steps[v] else {
        throw SpecIssue(
          path: "version", message: "version \(v) files cannot be read by this SpecBench (no migration from \(v) to \(v + 1))",
          location: root.objectValue?["version"]?.location)
      }
      document = try step(document)
      guard case .object(var object) = document.kind else {
        throw SpecIssue(path: .root, message: "migration from version \(v) did not produce an object")
      }
      if let i = object.members.firstIndex(where: { $0.key == "version" }) { object.members[i].value = .int(v + 1) }
      document = JSONValue(.object(object), location: document.location)
    }
    return document
  }
}

/// This SpecBench's version, as `specbench --version` prints it and exporters record it.
public enum SpecBenchVersion {
  public static let current = "0.1.0"
}
