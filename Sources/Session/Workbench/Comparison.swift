import SpecKit
import TermPlot

/// How far a run had trained at a moment of its training: the seconds it had spent training in
/// a workbench by the time it reached `step` (`compare --by time`).
public struct TimelinePoint: Hashable, Sendable {
  public var step: Int
  public var seconds: Double

  public init(step: Int, seconds: Double) { (self.step, self.seconds) = (step, seconds) }
}

/// What a comparison needs of one run: its name, its spec with the history, and what only a
/// live workbench knows (status, speed, the timeline).
public struct ComparedRun: Sendable {
  public var name: String
  public var spec: SessionSpec
  /// `idle`, `running`, `paused`, or `file` for a session read from a file.
  public var status: String
  /// The step it has trained to.
  public var step: Int
  public var stepsPerSecond: Double?
  public var timeline: [TimelinePoint]

  public init(
    name: String, spec: SessionSpec, status: String, step: Int? = nil, stepsPerSecond: Double? = nil, timeline: [TimelinePoint] = []
  ) {
    (self.name, self.spec, self.status, self.stepsPerSecond, self.timeline) = (name, spec, status, stepsPerSecond, timeline)
    self.step = step ?? spec.state?.step ?? spec.history.trainLoss.last?.step ?? 0
  }

  /// The seconds at `step`, read off the timeline; nil without one.
  func seconds(at step: Int) -> Double? { timeline.seconds(at: step) }
}

extension [TimelinePoint] {
  /// The seconds at `step`: linear between the points, the first point's before them and the
  /// last one's after; nil for an empty timeline.
  func seconds(at step: Int) -> Double? {
    guard let first else { return nil }
    if step <= first.step { return first.seconds }
    var previous = first
    for point in dropFirst() {
      if step <= point.step {
        let span = Double(point.step - previous.step)
        return previous.seconds + (span > 0 ? Double(step - previous.step) / span * (point.seconds - previous.seconds) : 0)
      }
      previous = point
    }
    return previous.seconds
  }
}

/// Several runs side by side (`compare`, `specbench compare`): their training and validation
/// losses overlaid in one chart — a colour a run, the validation loss in its faint form —
/// aligned by step or by training time; a table of their final metrics; and the spec fields in
/// which they differ. A value: made from the runs, rendered at any width, or written as JSON.
public struct Comparison: Sendable {
  public let runs: [ComparedRun]
  public let axis: CompareAxis
  /// Runs left out of the chart and why (no timeline for `--by time`, nothing recorded).
  public let leftOut: [String]
  public let chart: LineChart?
  /// One row a run: name, status, step, batch loss, validation loss, accuracy, steps/s.
  public let metrics: [[String]]
  /// The fields in which the runs differ, each with every run's value (`—` where absent).
  public let differences: [(field: String, values: [String])]

  public static let metricHeader = ["run", "status", "step", "batch loss", "val loss", "accuracy", "steps/s"]

  public init(_ runs: [ComparedRun], by axis: CompareAxis = .step, charset: Charset = .unicode) {
    self.runs = runs
    self.axis = axis
    var series: [LineChart.Series] = []
    var leftOut: [String] = []
    for (index, run) in runs.enumerated() {
      let history = run.spec.history
      guard !history.trainLoss.isEmpty || !history.valLoss.isEmpty else {
        leftOut.append("\(run.name): no losses recorded yet")
        continue
      }
      if axis == .time && run.timeline.isEmpty {
        leftOut.append("\(run.name): no training time (it did not train in this workbench)")
        continue
      }
      func points(_ recorded: [MetricPoint]) -> [LineChart.Point] {
        recorded.map { point in
          LineChart.Point(axis == .time ? run.seconds(at: point.step)! : Double(point.step), Double(point.value))
        }
      }
      if !history.trainLoss.isEmpty {
        var train = LineChart.Series(name: run.name, points: points(history.trainLoss))
        train.colour = index
        series.append(train)
      }
      if !history.valLoss.isEmpty {
        var validation = LineChart.Series(name: "", points: points(history.valLoss))
        (validation.colour, validation.faint) = (index, true)
        series.append(validation)
      }
    }
    self.leftOut = leftOut
    let title = "loss by " + (axis == .time ? "training seconds" : "step") + (charset == .unicode ? " (┅ validation)" : " (. validation)")
    chart = series.isEmpty ? nil : LineChart(title: title, series: series, charset: charset)
    metrics = runs.map(Self.metricRow)
    differences = Self.differences(runs.map(\.spec))
  }

  static func metricRow(_ run: ComparedRun) -> [String] {
    let history = run.spec.history
    func text(_ value: Float?) -> String { value.map { ProgressLine.significant(Double($0)) } ?? "—" }
    let accuracy = (history[.valAccuracy].last ?? history[.trainAccuracy].last).map { Metric.valAccuracy.text(Double($0.value)) } ?? "—"
    return [
      run.name, run.status, String(run.step), text(history.trainLoss.last?.value), text(history.valLoss.last?.value), accuracy,
      run.stepsPerSecond.map { $0 >= 100 ? String(Int($0.rounded())) : ProgressLine.significant($0) } ?? "—",
    ]
  }

  /// The spec's top-level keys that are not settings of the experiment: `compare` does not
  /// compare them and `sweep` does not set them.
  static let notSettings: Set<String> = ["name", "state", "history", "journal", "posterior", "format", "version"]

  /// The leaves of each spec's JSON (arrays of plain values as one leaf) apart from
  /// `notSettings`, and the paths at which they differ, in the order of the first spec's JSON.
  static func differences(_ specs: [SessionSpec]) -> [(field: String, values: [String])] {
    guard specs.count > 1 else { return [] }
    let leaves = specs.map { spec -> [(String, String)] in
      var found: [(String, String)] = []
      for member in spec.json.objectValue?.members ?? [] where !notSettings.contains(member.key) {
        flatten(member.value, path: member.key, into: &found)
      }
      return found
    }
    var order: [String] = []
    var seen: Set<String> = []
    for list in leaves {
      for (path, _) in list where seen.insert(path).inserted { order.append(path) }
    }
    let maps = leaves.map { Dictionary($0, uniquingKeysWith: { first, _ in first }) }
    return order.compactMap { path in
      let values = maps.map { $0[path] ?? "—" }
      return Set(values).count > 1 ? (path, values) : nil
    }
  }

  static func flatten(_ value: JSONValue, path: String, into found: inout [(String, String)]) {
    switch value.kind {
    case .object(let object):
      for member in object.members { flatten(member.value, path: path + "." + member.key, into: &found) }
    case .array(let elements) where elements.contains(where: { $0.objectValue != nil || $0.arrayValue != nil }):
      for (i, element) in elements.enumerated() { flatten(element, path: path + "[\(i)]", into: &found) }
    default:
      found.append((path, JSONWriter.compact(value)))
    }
  }

  /// The chart (`chartHeight` rows), the metrics table and the differences, `width` wide.
  public func render(width: Int, chartHeight: Int = 16) -> Grid {
    var parts: [Grid] = []
    if let chart { parts.append(chart.render(width: width, height: chartHeight)) }
    var notes = leftOut.map { "not in the chart: " + $0 }
    if chart == nil && leftOut.isEmpty { notes.append("no losses recorded yet; train first") }
    parts += notes.map(Self.line)
    parts.append(Self.line(""))
    parts.append(Table.render(header: Self.metricHeader, rows: metrics, alignments: [.left, .left] + Array(repeating: .right, count: 5)))
    parts.append(Self.line(""))
    if runs.count < 2 {
    } else if differences.isEmpty {
      parts.append(Self.line("the runs' specs are the same (apart from name, state and history)"))
    } else {
      parts.append(Table.render(header: ["field"] + runs.map(\.name), rows: differences.map { [$0.field] + $0.values }))
    }
    let height = parts.map(\.height).reduce(0, +)
    var grid = Grid(width: max(width, parts.map(\.width).max() ?? 0), height: height)
    var y = 0
    for part in parts {
      grid.paste(part, x: 0, y: y)
      y += part.height
    }
    return grid
  }

  static func line(_ text: String) -> Grid {
    var grid = Grid(width: max(1, text.count), height: 1)
    grid.write(text, x: 0, y: 0, role: .label)
    return grid
  }

  /// The comparison as JSON: the axis, each run's figures and its loss points on that axis,
  /// and the differing fields.
  public var json: JSONValue {
    func number(_ value: Double?) -> JSONValue { value.flatMap { $0.isFinite ? JSONValue.float(Float($0)) : nil } ?? .null }
    let runValues = runs.map { run -> JSONValue in
      let history = run.spec.history
      func points(_ recorded: [MetricPoint]) -> JSONValue {
        .array(
          recorded.compactMap { point in
            let x = axis == .time ? run.seconds(at: point.step) : Double(point.step)
            guard let x, point.value.isFinite else { return nil }
            return .array([axis == .time ? .float(Float(x)) : .int(point.step), .float(point.value)])
          })
      }
      return .object([
        "name": .string(run.name), "status": .string(run.status), "step": .int(run.step),
        "train_loss": number(history.trainLoss.last.map { Double($0.value) }),
        "val_loss": number(history.valLoss.last.map { Double($0.value) }),
        "accuracy": number((history[.valAccuracy].last ?? history[.trainAccuracy].last).map { Double($0.value) }),
        "steps_per_second": number(run.stepsPerSecond), "train_loss_points": points(history.trainLoss),
        "val_loss_points": points(history.valLoss),
      ])
    }
    return .object([
      "by": .string(axis.rawValue), "runs": .array(runValues),
      "differences": .array(
        differences.map { difference in
          .object(["field": .string(difference.field), "values": .array(difference.values.map { .string($0) })])
        }),
    ])
  }
}
