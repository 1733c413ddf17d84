import SpecKit
import TermPlot

/// Charts of a session's recorded history, shared by `specbench inspect` and the front ends.
public enum HistoryPlots {
  /// Training and validation loss over steps, with a marker at every backend, optimizer and load
  /// event; nil when nothing was recorded.
  public static func lossChart(_ history: HistorySpec, logScale: Bool = false, smoothing: Double = 0, charset: Charset = .unicode)
    -> LineChart?
  {
    guard !history.trainLoss.isEmpty || !history.valLoss.isEmpty else { return nil }
    var series = [LineChart.Series(name: "train", points: history.trainLoss.map { LineChart.Point(Double($0.step), Double($0.value)) })]
    if !history.valLoss.isEmpty {
      series.append(
        LineChart.Series(name: "validation", points: history.valLoss.map { LineChart.Point(Double($0.step), Double($0.value)) }))
    }
    let markers = history.events.filter { ["backend", "optimizer", "load"].contains($0.kind) }.map { Double($0.step) }
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
