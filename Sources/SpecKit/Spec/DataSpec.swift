/// Where samples come from, and how many are held out for validation.
public struct DataSpec: Hashable, Sendable {
  public var source: DataSource
  /// The share of samples held out (chosen by a seeded shuffle) for validation loss; in [0, 1).
  public var validationFraction: Double

  public init(source: DataSource, validationFraction: Double = 0) {
    self.source = source
    self.validationFraction = validationFraction
  }

  public var json: JSONValue {
    guard case .object(var object) = source.json.kind else { return source.json }
    object.members.append(.init(key: "validation_fraction", value: .double(validationFraction)))
    return JSONValue(.object(object))
  }

  static func read(_ value: JSONValue, at path: JSONPath, log: IssueLog) -> DataSpec? {
    guard var r = ObjectReader(value, at: path, log: log, what: "a data object such as {\"type\": \"spirals\", \"samples\": 600}") else {
      return nil
    }
    defer { r.finish() }
    let fraction = r.number("validation_fraction", default: 0, .halfOpen(0, 1))
    guard let source = DataSource.read(&r, at: path, log: log) else { return nil }
    return DataSpec(source: source, validationFraction: fraction)
  }
}

/// What the samples' targets are: class indices or real values.
public enum TargetKind: Hashable, Sendable, CustomStringConvertible {
  /// Class indices in 0..<count.
  case classes(Int)
  /// Real-valued targets of this width (regression).
  case values(width: Int)

  public var description: String {
    switch self {
    case .classes(let n): "\(n) classes"
    case .values(let width): "regression targets of width \(width)"
    }
  }
}

/// The shapes a data source produces, when they are known without reading any file.
public struct DataShape: Hashable, Sendable {
  public var input: [Int]
  public var target: TargetKind

  public init(input: [Int], target: TargetKind) {
    self.input = input
    self.target = target
  }
}

/// A data source: the synthetic generators, files, or a dataset shipped with SpecBench.
public enum DataSource: Hashable, Sendable {
  case spirals(samples: Int, classes: Int, noise: Double, seed: UInt64)
  case moons(samples: Int, noise: Double, seed: UInt64)
  case circles(samples: Int, noise: Double, factor: Double, seed: UInt64)
  case xor(samples: Int, noise: Double, seed: UInt64)
  case blobs(samples: Int, centers: Int, features: Int, std: Double, seed: UInt64)
  /// Regression: target sin(x) for x in [−π, π].
  case sine(samples: Int, noise: Double, seed: UInt64)
  case csv(CSVSource)
  /// MNIST-style IDX files (paths relative to the spec file); inputs scaled to [0, 1].
  case idx(images: String, labels: String)
  case builtin(name: String)
  /// NumPy's own files: two `.npy` files, or two arrays of one `.npz` archive.
  case numpy(NumPySource)

  public static let names = ["spirals", "moons", "circles", "xor", "blobs", "sine", "csv", "idx", "builtin", "npy", "npz"]

  /// The datasets shipped with SpecBench, with their shapes.
  public static let builtinCatalog: [String: DataShape] = [
    "iris": DataShape(input: [4], target: .classes(3)),
    "digits": DataShape(input: [1, 8, 8], target: .classes(10)),
  ]

  /// NumPy arrays: inputs `[N, …]` and targets `[N]` or `[N, k]` (docs/spec-format.md, "npy and npz").
  public struct NumPySource: Hashable, Sendable {
    public enum Files: Hashable, Sendable {
      /// Two `.npy` files (paths relative to the spec file).
      case npy(inputs: String, targets: String)
      /// Two arrays of one `.npz` archive, by name.
      case npz(path: String, inputs: String, targets: String)
    }
    public var files: Files
    /// What the targets are; nil follows their dtype (integers: classes; floats: values).
    public var task: CSVSource.Task?
    /// Every input value is multiplied by it (1/255 for `uint8` images).
    public var scale: Double

    public init(files: Files, task: CSVSource.Task? = nil, scale: Double = 1) {
      (self.files, self.task, self.scale) = (files, task, scale)
    }
  }

  /// A delimited text file (path relative to the spec file).
  public struct CSVSource: Hashable, Sendable {
    public var path: String
    /// The target column: by header name, or by 0-based index.
    public var target: Column
    public var header = true
    public var delimiter: Character = ","
    public var task: Task
    /// Standardise every input column to mean 0, standard deviation 1.
    public var normalize = false

    public enum Column: Hashable, Sendable {
      case name(String)
      case index(Int)
    }

    public enum Task: String, Hashable, Sendable {
      case classification
      case regression
    }

    public init(path: String, target: Column, header: Bool = true, delimiter: Character = ",", task: Task, normalize: Bool = false) {
      (self.path, self.target, self.header, self.delimiter, self.task, self.normalize) = (path, target, header, delimiter, task, normalize)
    }
  }

  public var typeName: String {
    switch self {
    case .spirals: "spirals"
    case .moons: "moons"
    case .circles: "circles"
    case .xor: "xor"
    case .blobs: "blobs"
    case .sine: "sine"
    case .csv: "csv"
    case .idx: "idx"
    case .builtin: "builtin"
    case .numpy(let source):
      switch source.files {
      case .npy: "npy"
      case .npz: "npz"
      }
    }
  }

  /// The input and target shapes, or nil for file sources (known only once the file is read).
  /// The files this source reads, as written (relative to the spec's folder, or absolute).
  public var files: [String] {
    switch self {
    case .csv(let csv): [csv.path]
    case .idx(let images, let labels): [images, labels]
    case .numpy(let source):
      switch source.files {
      case .npy(let inputs, let targets): [inputs, targets]
      case .npz(let path, _, _): [path]
      }
    default: []
    }
  }

  /// The source with its relative file paths rewritten for a spec that moves from the folder
  /// `old` to the folder `new` (both absolute), so that they still name the same files.
  /// Absolute paths stay as they are.
  package func rebased(from old: String, to new: String) -> DataSource {
    func move(_ path: String) -> String {
      path.hasPrefix("/") ? path : PathText.relative(from: new, to: PathText.absolute(path, from: old))
    }
    switch self {
    case .csv(var csv):
      csv.path = move(csv.path)
      return .csv(csv)
    case .idx(let images, let labels): return .idx(images: move(images), labels: move(labels))
    case .numpy(var source):
      switch source.files {
      case .npy(let inputs, let targets): source.files = .npy(inputs: move(inputs), targets: move(targets))
      case .npz(let path, let inputs, let targets): source.files = .npz(path: move(path), inputs: inputs, targets: targets)
      }
      return .numpy(source)
    default: return self
    }
  }

  /// Whether a model taking `modelInput` takes this source's samples of shape `samples`: the
  /// same shape, or for `idx` (whose samples were `[rows, cols]` before version 6 and are `[1,
  /// rows, cols]` since) the shape without its channel.
  public func accepts(modelInput: [Int], samples: [Int]) -> Bool {
    if modelInput == samples { return true }
    if case .idx = self { return [1] + modelInput == samples }
    return false
  }

  public var knownShape: DataShape? {
    switch self {
    case .spirals(_, let classes, _, _): DataShape(input: [2], target: .classes(classes))
    case .moons, .circles, .xor: DataShape(input: [2], target: .classes(2))
    case .blobs(_, let centers, let features, _, _): DataShape(input: [features], target: .classes(centers))
    case .sine: DataShape(input: [1], target: .values(width: 1))
    case .csv, .idx, .numpy: nil
    case .builtin(let name): Self.builtinCatalog[name]
    }
  }

  public var json: JSONValue {
    var members: [(String, JSONValue)] = []
    switch self {
    case .spirals(let samples, let classes, let noise, let seed):
      members = [("samples", .int(samples)), ("classes", .int(classes)), ("noise", .double(noise)), ("seed", .seed(seed))]
    case .moons(let samples, let noise, let seed), .xor(let samples, let noise, let seed), .sine(let samples, let noise, let seed):
      members = [("samples", .int(samples)), ("noise", .double(noise)), ("seed", .seed(seed))]
    case .circles(let samples, let noise, let factor, let seed):
      members = [("samples", .int(samples)), ("noise", .double(noise)), ("factor", .double(factor)), ("seed", .seed(seed))]
    case .blobs(let samples, let centers, let features, let std, let seed):
      members = [
        ("samples", .int(samples)), ("centers", .int(centers)), ("features", .int(features)), ("std", .double(std)),
        ("seed", .seed(seed)),
      ]
    case .csv(let csv):
      let target: JSONValue =
        switch csv.target {
        case .name(let name): .string(name)
        case .index(let index): .int(index)
        }
      members = [
        ("path", .string(csv.path)), ("target", target), ("header", .bool(csv.header)),
        ("delimiter", .string(String(csv.delimiter))), ("task", .string(csv.task.rawValue)), ("normalize", .bool(csv.normalize)),
      ]
    case .idx(let images, let labels):
      members = [("images", .string(images)), ("labels", .string(labels))]
    case .builtin(let name):
      members = [("name", .string(name))]
    case .numpy(let source):
      switch source.files {
      case .npy(let inputs, let targets): members = [("inputs", .string(inputs)), ("targets", .string(targets))]
      case .npz(let path, let inputs, let targets):
        members = [("path", .string(path)), ("inputs", .string(inputs)), ("targets", .string(targets))]
      }
      members += [("task", source.task.map { .string($0.rawValue) } ?? .null), ("scale", .double(source.scale))]
    }
    return .object([JSONObject.Member(key: "type", value: .string(typeName))] + members.map { JSONObject.Member(key: $0.0, value: $0.1) })
  }

  static func read(_ r: inout ObjectReader, at path: JSONPath, log: IssueLog) -> DataSource? {
    guard let type = r.choice("type", names.map { ($0, $0) }, what: "data source") else { return nil }
    switch type {
    case "spirals":
      return .spirals(
        samples: r.integer("samples", .positive), classes: r.integer("classes", default: 2, .atLeast(2)),
        noise: r.number("noise", default: 0.1, .nonNegative), seed: r.seed("seed"))
    case "moons":
      return .moons(samples: r.integer("samples", .positive), noise: r.number("noise", default: 0.1, .nonNegative), seed: r.seed("seed"))
    case "circles":
      return .circles(
        samples: r.integer("samples", .positive), noise: r.number("noise", default: 0.05, .nonNegative),
        factor: r.number("factor", default: 0.5, .open(0, 1)), seed: r.seed("seed"))
    case "xor":
      return .xor(samples: r.integer("samples", .positive), noise: r.number("noise", default: 0, .nonNegative), seed: r.seed("seed"))
    case "blobs":
      return .blobs(
        samples: r.integer("samples", .positive), centers: r.integer("centers", default: 3, .atLeast(2)),
        features: r.integer("features", default: 2, .positive), std: r.number("std", default: 1.0, .positive), seed: r.seed("seed"))
    case "sine":
      return .sine(samples: r.integer("samples", .positive), noise: r.number("noise", default: 0.1, .nonNegative), seed: r.seed("seed"))
    case "csv":
      let file = r.string("path", .nonEmpty)
      let header = r.boolean("header", default: true)
      var target = CSVSource.Column.index(0)
      if let raw = r.required("target") {
        if let name = raw.stringValue, !name.isEmpty {
          target = .name(name)
          if !header {
            log.report(
              path + "target", "names a column, but header is false so columns have no names; give the column's 0-based index",
              at: raw.location)
          }
        } else if let index = raw.numberValue?.int, index >= 0 {
          target = .index(index)
        } else {
          r.wrong("target", raw, expected: "a column name (string) or a 0-based column index")
        }
      }
      let delimiter = r.string(
        "delimiter", default: ",", Rule("a single character such as \",\" or \"\\t\"") { $0.count == 1 && $0 != "\"" && $0 != "\n" })
      let task = r.choice("task", [("classification", CSVSource.Task.classification), ("regression", .regression)], what: "task")
      return .csv(
        CSVSource(
          path: file, target: target, header: header, delimiter: delimiter.first ?? ",", task: task ?? .classification,
          normalize: r.boolean("normalize", default: false)))
    case "idx":
      return .idx(images: r.string("images", .nonEmpty), labels: r.string("labels", .nonEmpty))
    case "npy", "npz":
      let files: NumPySource.Files =
        type == "npy"
        ? .npy(inputs: r.string("inputs", .nonEmpty), targets: r.string("targets", .nonEmpty))
        : .npz(
          path: r.string("path", .nonEmpty), inputs: r.string("inputs", default: "x", .nonEmpty),
          targets: r.string("targets", default: "y", .nonEmpty))
      var task: CSVSource.Task?
      if let raw = r.raw("task"), !raw.isNull {
        task = ObjectReader.choice(
          raw, at: path + "task", [("classification", .classification), ("regression", .regression)], what: "task", log: log)
      }
      return .numpy(NumPySource(files: files, task: task, scale: r.number("scale", default: 1, .float32)))
    default:
      let names = builtinCatalog.keys.sorted()
      return r.choice("name", names.map { ($0, DataSource.builtin(name: $0)) }, what: "builtin dataset")
    }
  }
}

extension JSONValue {
  /// A 64-bit seed as an exact JSON integer.
  static func seed(_ value: UInt64) -> JSONValue { JSONValue(.number(JSONNumber(value))) }
}
