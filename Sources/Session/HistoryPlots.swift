import SpecKit
import TermPlot

/// Charts of a session's recorded history, shared by `specbench inspect` and the front ends.
public enum HistoryPlots {
  /// Training and validation loss over steps, with a marker at every backend, optimizer and load
  /// event; nil when nothing was recorded.
  public static func lossChart(_ history: HistorySpec, logScale: Bool = false, smoothing: Double = 0, charset: Charset = .unicode)
    -> LineChart?
  {
    lossChart(
      train: [history.trainLoss], validation: [history.valLoss], events: history.events, logScale: logScale, smoothing: smoothing,
      charset: charset)
  }

  /// The same chart from a snapshot's logs, read chunk by chunk (a front end draws it every
  /// frame, however long the run).
  public static func lossChart(_ snapshot: Snapshot, logScale: Bool = false, smoothing: Double = 0, charset: Charset = .unicode)
    -> LineChart?
  {
    lossChart(
      train: snapshot.trainLoss.pointChunks, validation: snapshot.valLoss.pointChunks, events: snapshot.events, logScale: logScale,
      smoothing: smoothing, charset: charset)
  }

  static func lossChart(
    train: [[MetricPoint]], validation: [[MetricPoint]], events: [HistoryEvent], logScale: Bool, smoothing: Double, charset: Charset
  ) -> LineChart? {
    func chunks(_ points: [[MetricPoint]]) -> [[LineChart.Point]] {
      points.map { $0.map { LineChart.Point(Double($0.step), Double($0.value)) } }
    }
    let (hasTrain, hasValidation) = (train.contains { !$0.isEmpty }, validation.contains { !$0.isEmpty })
    guard hasTrain || hasValidation else { return nil }
    var series = [LineChart.Series(name: "train", chunks: chunks(train))]
    if hasValidation { series.append(LineChart.Series(name: "validation", chunks: chunks(validation))) }
    let markers = events.filter { ["backend", "optimizer", "load", "model"].contains($0.kind) }.map { Double($0.step) }
    return LineChart(
      title: "loss" + (logScale ? " (log)" : ""), series: series, markers: markers, logScale: logScale, smoothing: smoothing,
      charset: charset)
  }

  /// The schedule's learning rate from step 1 through `last` (at least 100 steps, and past the
  /// current step), with a marker at the current step.
  public static func learningRateChart(
    _ spec: SessionSpec, through last: Int?, current: Int, logScale: Bool = false, charset: Charset = .unicode
  ) -> LineChart {
    let end = max(last ?? 0, current, 100)
    let stride = max(1, end / 400)
    let points = Swift.stride(from: 1, through: end, by: stride).map {
      LineChart.Point(Double($0), spec.schedule.learningRate(at: $0, base: spec.optimizer.learningRate))
    }
    return LineChart(
      title: "learning rate (\(spec.schedule.summary))", series: [.init(name: "lr", points: points)],
      markers: current > 0 ? [Double(current)] : [], logScale: logScale, charset: charset)
  }
}
