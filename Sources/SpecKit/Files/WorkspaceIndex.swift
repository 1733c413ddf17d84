/// The index of a workspace folder, `workspace.json` (docs/spec-format.md, "Workspaces"): the
/// runs of a workbench in order, each with its session file and the timeline of its training,
/// and the run that is current. Read strictly: every problem is reported with its JSON path
/// and position, unknown keys included, and every name and file is checked before any file is
/// opened (a file name never leaves the folder).
public struct WorkspaceIndex: Hashable, Sendable {
  public struct Run: Hashable, Sendable {
    public var name: String
    /// The session file, a plain name in the folder (`NAME.json`).
    public var file: String
    /// `[step, seconds trained]` pairs.
    public var timeline: [(step: Int, seconds: Double)]

    public init(name: String, file: String, timeline: [(step: Int, seconds: Double)] = []) {
      (self.name, self.file, self.timeline) = (name, file, timeline)
    }

    public static func == (a: Run, b: Run) -> Bool {
      a.name == b.name && a.file == b.file && a.timeline.elementsEqual(b.timeline) { $0.step == $1.step && $0.seconds == $1.seconds }
    }

    public func hash(into hasher: inout Hasher) {
      hasher.combine(name)
      hasher.combine(file)
      for point in timeline {
        hasher.combine(point.step)
        hasher.combine(point.seconds)
      }
    }
  }

  public static let formatName = "specbench/workspace"
  public static let currentVersion = 1
  /// The index's own file name in the folder.
  public static let fileName = "workspace.json"
  public static let runLimit = 256
  public static let timelineLimit = 2000
  public static let nameLimit = 64

  public var runs: [Run]
  public var current: String

  public init(runs: [Run], current: String) { (self.runs, self.current) = (runs, current) }

  /// Whether `name` is a run name: 1 to 64 of ASCII letters, digits and `. _ = , + -`, not
  /// starting with `.` or `-`.
  public static func isRunName(_ name: String) -> Bool {
    !name.isEmpty && name.count <= nameLimit && !name.hasPrefix(".") && !name.hasPrefix("-")
      && name.unicodeScalars.allSatisfy(isRunNameCharacter)
  }

  /// An ASCII letter or digit, or one of `. _ = , + -`.
  public static func isRunNameCharacter(_ scalar: Unicode.Scalar) -> Bool {
    scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "._=,+-".unicodeScalars.contains(scalar))
  }

  /// Whether `file` is a session file name in the folder itself: no `/`, not hidden, `.json`.
  public static func isFileName(_ file: String) -> Bool {
    file.count > 5 && file.count <= 255 && file.hasSuffix(".json") && !file.hasPrefix(".") && !file.contains("/")
      && !file.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
  }

  public var json: JSONValue {
    .object([
      "format": .string(Self.formatName), "version": .int(Self.currentVersion), "current": .string(current),
      "runs": .array(
        runs.map { run in
          .object([
            "name": .string(run.name), "file": .string(run.file),
            "timeline": .array(run.timeline.map { .array([.int($0.step), JSONValue(.number(JSONNumber($0.seconds)))]) }),
          ])
        }),
    ])
  }

  public var canonicalText: String { JSONWriter.canonical(json) }

  /// Reads an index from its bytes; `file` names it in messages.
  public static func decode(_ bytes: some Collection<UInt8>, file: String? = nil) throws(SpecError) -> WorkspaceIndex {
    let root: JSONValue
    do { root = try JSONParser.parse(bytes) } catch { throw .syntax(file: file, error) }
    let log = IssueLog()
    guard var reader = ObjectReader(root, at: .root, log: log, what: "a workspace index {\"format\": \"specbench/workspace\", ...}") else {
      throw .invalid(file: file, log.issues)
    }
    if let format = reader.required("format"), format.stringValue != formatName {
      reader.wrong("format", format, expected: "\"\(formatName)\"")
    }
    if reader.has("version"), let version = reader.raw("version"), let number = version.numberValue?.int, number > currentVersion {
      throw .newerVersion(file: file, found: number, supported: currentVersion)
    }
    _ = reader.integer("version", Rule("an integer from 1 to \(currentVersion)") { (1...currentVersion).contains($0) })
    let current = reader.string("current", .nonEmpty)
    let runsValue = reader.raw("runs")
    var runs: [Run] = []
    if runsValue == nil { log.report(JSONPath.root + "runs", "is required but missing", at: root.location) }
    if let runsValue, let elements = runsValue.arrayValue, elements.count > runLimit || elements.isEmpty {
      log.report(JSONPath.root + "runs", "must hold 1 to \(runLimit) runs, got \(elements.count)", at: runsValue.location)
    } else if runsValue != nil {
      runs = reader.array("runs") { value, path in readRun(value, at: path, log: log) }
    }
    reader.finish()
    var names: Set<String> = []
    var files: Set<String> = []
    for (i, run) in runs.enumerated() {
      if !names.insert(run.name).inserted { log.report(JSONPath.root + "runs" + i + "name", "repeats the run name \(run.name)", at: nil) }
      if !files.insert(run.file).inserted { log.report(JSONPath.root + "runs" + i + "file", "repeats the file \(run.file)", at: nil) }
    }
    if !runs.isEmpty, !current.isEmpty, !names.contains(current) {
      log.report(
        JSONPath.root + "current", "names no run of the index (\(runs.map(\.name).joined(separator: ", ")))",
        at: root.location(of: "current"))
    }
    guard log.isEmpty else {
      throw .invalid(
        file: file,
        log.issues.map { issue in
          var issue = issue
          if issue.location == nil { issue.location = root.location(of: issue.path) }
          return issue
        })
    }
    return WorkspaceIndex(runs: runs, current: current)
  }

  static func readRun(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> Run? {
    guard var reader = ObjectReader(value, at: path, log: log, what: "a run {\"name\": …, \"file\": …}") else { return nil }
    let name = reader.string(
      "name", Rule("a run name: 1 to \(nameLimit) letters, digits and . _ = , + -, not starting with . or -") { isRunName($0) })
    let file = reader.string("file", Rule("a session file name in the folder (no /, not hidden, ending in .json)") { isFileName($0) })
    var timeline: [(step: Int, seconds: Double)] = []
    if let raw = reader.raw("timeline") {
      if let points = raw.arrayValue, points.count <= timelineLimit {
        for (i, point) in points.enumerated() {
          guard let pair = point.arrayValue, pair.count == 2, let step = pair[0].numberValue?.int, step >= 0,
            let seconds = pair[1].numberValue?.double, seconds.isFinite, seconds >= 0,
            step >= (timeline.last?.step ?? 0), seconds >= (timeline.last?.seconds ?? 0)
          else {
            log.report(
              path + "timeline" + i,
              "must be [step, seconds]: a step and seconds from 0, neither smaller than the point before, got \(point.excerpt())",
              at: point.location)
            break
          }
          timeline.append((step, seconds))
        }
      } else {
        log.report(path + "timeline", "must be an array of at most \(timelineLimit) [step, seconds] pairs", at: raw.location)
      }
    }
    reader.finish()
    return Run(name: name, file: file, timeline: timeline)
  }
}
