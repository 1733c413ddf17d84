import SpecKit
import TermPlot

/// Charts of a session's recorded history, shared by `specbench inspect` and the front ends.
public enum HistoryPlots {
  /// What a chart of the recorded metrics shows (`plot loss|accuracy|mae|r2`).
  public enum Metrics: String, CaseIterable, Sendable {
    case loss, accuracy, mae, r2

    /// The history's metrics it draws.
    public var metrics: [Metric] { series.map(\.0) }

    /// Its series: the batch metric and the validation one, by the history's names.
    var series: [(Metric, String)] {
      switch self {
      case .loss: [(.trainLoss, "train"), (.valLoss, "validation")]
      case .accuracy: [(.trainAccuracy, "batch"), (.valAccuracy, "validation")]
      case .mae: [(.trainMAE, "batch"), (.valMAE, "validation")]
      case .r2: [(.valR2, "validation")]
      }
    }

    public var title: String {
      switch self {
      case .loss: "loss"
      case .accuracy: "accuracy (%)"
      case .mae: "mean absolute error"
      case .r2: "R² (validation)"
      }
    }

    /// Why a session has no points of it.
    public var missing: String {
      switch self {
      case .loss: "no losses recorded yet; train first"
      case .accuracy:
        "no accuracy recorded: it is recorded for class targets (softmax_cross_entropy, sigmoid_binary_cross_entropy) once training runs"
      case .mae: "no MAE recorded: it is recorded for mse and huber on value targets once training runs"
      case .r2: "no R² recorded: it is recorded at each evaluation of a validation split, for mse and huber on value targets"
      }
    }
  }

  /// Training and validation loss over steps, with a marker at every backend, optimizer, load
  /// and model event; nil when nothing was recorded.
  public static func lossChart(_ history: HistorySpec, logScale: Bool = false, smoothing: Double = 0, charset: Charset = .unicode)
    -> LineChart?
  {
    chart(.loss, history, logScale: logScale, smoothing: smoothing, charset: charset)
  }

  /// A chart of recorded metrics from a history; nil when none of its metrics has a point.
  public static func chart(
    _ what: Metrics, _ history: HistorySpec, logScale: Bool = false, smoothing: Double = 0, charset: Charset = .unicode
  ) -> LineChart? {
    chart(
      what,
      series: { metric, name, scale in
        let points = history[metric]
        return points.isEmpty ? nil : .init(name: name, points: points.map { LineChart.Point(Double($0.step), Double($0.value) * scale) })
      }, events: history.events, logScale: logScale, smoothing: smoothing, charset: charset)
  }

  /// The same chart from a snapshot's logs, read chunk by chunk (a front end draws it every
  /// frame, however long the run).
  public static func chart(
    _ what: Metrics, _ snapshot: Snapshot, logScale: Bool = false, smoothing: Double = 0, charset: Charset = .unicode
  ) -> LineChart? {
    chart(
      what,
      series: { metric, name, scale in
        guard let log = snapshot.logs[metric], log.count > 0 else { return nil }
        return .init(name: name, summarized: log, scale: scale)
      }, events: snapshot.events, logScale: logScale, smoothing: smoothing, charset: charset)
  }

  /// `series` makes a metric's series (nil without points) from its name in the legend and the
  /// scale of its values.
  static func chart(
    _ what: Metrics, series: (Metric, String, Double) -> LineChart.Series?, events: [HistoryEvent], logScale: Bool, smoothing: Double,
    charset: Charset
  ) -> LineChart? {
    let scale = what == .accuracy ? 100.0 : 1.0
    let series = what.series.compactMap { metric, name in series(metric, name, scale) }
    guard !series.isEmpty else { return nil }
    return LineChart(
      title: what.title + (logScale ? " (log)" : ""), series: series, markers: markers(events), logScale: logScale, smoothing: smoothing,
      charset: charset)
  }

  /// The steps of the events that change what training does: a backend swap, an optimizer or
  /// model change, a load.
  static func markers(_ events: [HistoryEvent]) -> [Double] {
    events.filter { ["backend", "optimizer", "load", "model"].contains($0.kind) }.map { Double($0.step) }
  }

  /// The learning rate: the rates the recorded updates used ("used", every change included),
  /// then the schedule's rate from the current step through `last` ("planned"), with markers at
  /// the current step and at optimizer changes. Without recorded rates (a session saved before
  /// version 3), the schedule's from step 1.
  public static func learningRateChart(
    _ spec: SessionSpec, used: MetricLog = MetricLog(), events: [HistoryEvent] = [], through last: Int?, current: Int,
    logScale: Bool = false, charset: Charset = .unicode
  ) -> LineChart {
    let recorded = used.count > 0
    let first = recorded ? current + 1 : 1
    let end = max(last ?? 0, current, recorded ? current : 100)
    var series: [LineChart.Series] = []
    if recorded { series.append(.init(name: "used", summarized: used)) }
    if end >= first {
      let stride = max(1, (end - first) / 400)
      let planned = Swift.stride(from: first, through: end, by: stride).map {
        LineChart.Point(Double($0), spec.schedule.learningRate(at: $0, base: spec.optimizer.learningRate))
      }
      series.append(.init(name: recorded ? "planned" : "lr", points: planned))
    }
    return LineChart(
      title: "learning rate (\(spec.schedule.summary))", series: series,
      markers: (current > 0 ? [Double(current)] : []) + markers(events.filter { $0.kind == "optimizer" }),
      logScale: logScale, charset: charset)
  }
}
