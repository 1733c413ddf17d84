import Foundation
import Session
import SpecKit
import TermPlot

extension DashboardView {
  static func paneTitle(_ pane: DashboardPane, _ input: DashboardInput, _ state: DashboardState) -> String {
    switch pane {
    case .loss:
      return "\(state.chart.rawValue) · smoothing \(state.smoothing)" + (state.logScale ? " · log" : "")
    case .histogram:
      guard let name = state.selectedTensorName(in: input.layerTensors) else { return "histogram" }
      return "histogram · \(name) @ step \(grouped(input.snapshot.histogramStep))"
    case .model:
      return "model · \(grouped(input.spec.model.parameterCount)) parameters"
    case .optimizer:
      return "optimizer · \(input.spec.optimizer.name)"
    case .events:
      return "events" + (state.logScroll > 0 ? " · \(state.logScroll) newer below" : "")
    case .runs:
      return "runs · ↵ switch · v overlay · space start/pause"
    }
  }

  static func lossPane(_ input: DashboardInput, _ state: DashboardState, _ frame: Frame, _ charset: Charset) -> Grid {
    // Other runs overlaid: each run's batch loss in its own colour, the current run's first.
    if state.chart == .loss, !input.overlay.isEmpty {
      var series: [LineChart.Series] = []
      if let log = input.snapshot.logs[.trainLoss], log.count > 0 {
        series.append(LineChart.Series(name: input.runs.first(where: \.isCurrent)?.name ?? input.spec.name, summarized: log))
      }
      series += input.overlay
      let chart = LineChart(
        title: "batch loss" + (state.logScale ? " (log)" : ""), series: series, logScale: state.logScale, smoothing: state.smoothing,
        charset: charset)
      return chart.render(width: frame.width, height: frame.height)
    }
    guard
      let chart = HistoryPlots.chart(state.chart, input.snapshot, logScale: state.logScale, smoothing: state.smoothing, charset: charset)
    else {
      var grid = Grid(width: frame.width, height: frame.height)
      let text = state.chart == .loss ? "no losses recorded yet — space starts training" : state.chart.missing
      for (row, line) in wrap(text, width: max(1, frame.width - 2)).prefix(frame.height).enumerated() {
        grid.write(line, x: 1, y: frame.height / 2 + row, role: .label)
      }
      return grid
    }
    return chart.render(width: frame.width, height: frame.height)
  }

  /// The runs: the current one marked `*`, the overlaid ones `+`, the selected one highlighted
  /// while the pane has the focus.
  static func runsPane(_ input: DashboardInput, _ state: DashboardState, _ frame: Frame, focused: Bool) -> Grid {
    var grid = Grid(width: frame.width, height: frame.height)
    let rows = input.runs
    let visible = max(1, frame.height)
    let selected = min(state.selectedRun, max(0, rows.count - 1))
    let first = max(0, min(selected - visible + 1, rows.count - visible))
    let nameWidth = min(24, rows.map(\.name.count).max() ?? 4)
    for (row, run) in rows.enumerated().dropFirst(first).prefix(visible) {
      let marks = (run.isCurrent ? "*" : " ") + (state.overlaid.contains(run.name) ? "+" : " ")
      let name = String(run.name.prefix(nameWidth)).padding(toLength: nameWidth, withPad: " ", startingAt: 0)
      let loss = run.loss.map { "loss " + ProgressLine.significant(Double($0)) } ?? ""
      let text =
        "\(marks) \(name) \(run.status.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)) step \(grouped(run.step))  \(loss)"
      let y = row - first
      grid.write(String(text.prefix(frame.width)), x: 0, y: y, role: run.isCurrent ? .title : .text)
      if focused && row == selected { grid.highlight(x: 0, y: y, width: frame.width, role: .selected) }
    }
    return grid
  }

  static func histogramPane(_ input: DashboardInput, _ state: DashboardState, _ frame: Frame, _ charset: Charset) -> Grid {
    var grid = Grid(width: frame.width, height: frame.height)
    guard let name = state.selectedTensorName(in: input.layerTensors), let values = input.snapshot.tensorValues[name] else {
      grid.write("no tensor to show: the model has no parameters yet", x: 1, y: frame.height / 2, role: .label)
      return grid
    }
    // Side by side when both fit; otherwise the histogram alone.
    let sideBySide = frame.width >= 2 * DistributionChart.minimumSize.width + 4
    let leftWidth = sideBySide ? (frame.width - 1) / 2 : frame.width
    grid.paste(
      Histogram.render(values.map(Double.init), title: "now", width: leftWidth, height: frame.height, charset: charset), x: 0, y: 0)
    guard sideBySide else { return grid }
    // Before any refresh while training, the tensor as it is now makes the first column.
    let recorded = input.snapshot.distributions[name] ?? []
    let columns = (recorded.isEmpty ? DistributionColumn(step: input.snapshot.histogramStep, values: values).map { [$0] } ?? [] : recorded)
      .map { DistributionChart.Column(x: Double($0.step), quantiles: $0.quantiles.map(Double.init)) }
    let chart = DistributionChart(title: "over time (quantiles)", columns: columns, charset: charset)
    grid.paste(chart.render(width: frame.width - leftWidth - 1, height: frame.height), x: leftWidth + 1, y: 0)
    return grid
  }

  /// A table of the layers (type, output shape, parameters, gradient norm, update ratio), the
  /// selected one highlighted, and the selected tensor's line at the bottom.
  static func modelPane(_ input: DashboardInput, _ state: DashboardState, _ frame: Frame, focused: Bool) -> Grid {
    var grid = Grid(width: frame.width, height: frame.height)
    let shapes: [LayerShape]
    do { shapes = try input.spec.model.layerShapes() } catch {
      grid.write("the model does not chain yet:", x: 0, y: 0, role: .warning)
      grid.write(String((error.issues.first?.description ?? "\(error)").prefix(frame.width)), x: 0, y: 1, role: .label)
      return grid
    }
    guard !shapes.isEmpty else {
      grid.write("no layers yet — :add dense 64 relu", x: 0, y: 0, role: .label)
      return grid
    }
    let statistics = input.snapshot.tensorStatistics
    let rows: [[String]] = shapes.map { shape in
      let parameters = shape.tensors.filter { $0.role == .parameter }.map(\.name)
      let norms = parameters.compactMap { statistics[$0]?.gradientNorm }
      let gradient: Float? = norms.isEmpty ? nil : norms.reduce(0) { $0 + $1 * $1 }.squareRoot()
      let main = parameters.first { $0.hasSuffix(".weight") } ?? parameters.first
      return [
        shape.layer.name, typeText(shape.layer), "[" + shape.outputShape.map(String.init).joined(separator: ",") + "]",
        grouped(shape.parameterCount), scientific(gradient), scientific(main.flatMap { statistics[$0]?.updateRatio }),
      ]
    }
    let header = ["layer", "type", "output", "params", "‖grad‖", "upd/w"]
    var widths = header.indices.map { column in max(header[column].count, rows.map { $0[column].count }.max() ?? 0) }
    widths[0] = min(widths[0], 14)
    widths[1] = min(widths[1], 16)
    // Drop columns from the right until the table fits.
    var columns = header.count
    while columns > 2 && widths.prefix(columns).reduce(0, +) + columns - 1 > frame.width { columns -= 1 }
    func line(_ cells: [String]) -> String {
      (0..<columns).map { column in
        let text = String(cells[column].prefix(widths[column]))
        return column >= 3
          ? String(repeating: " ", count: widths[column] - text.count) + text
          : text.padding(toLength: widths[column], withPad: " ", startingAt: 0)
      }.joined(separator: " ")
    }
    grid.write(line(header), x: 0, y: 0, role: .title)
    let visibleRows = max(1, frame.height - 4)
    let first = max(0, min(state.selectedLayer - visibleRows + 1, rows.count - visibleRows))
    for (offset, index) in (first..<min(rows.count, first + visibleRows)).enumerated() {
      let y = 1 + offset
      grid.write(line(rows[index]), x: 0, y: y, role: .text)
      if index == state.selectedLayer { grid.highlight(x: 0, y: y, width: frame.width, role: focused ? .selected : .focus) }
    }
    if let name = state.selectedTensorName(in: input.layerTensors),
      let tensor = shapes.flatMap(\.tensors).first(where: { $0.name == name })
    {
      var lines = ["› \(name) [" + tensor.shape.map(String.init).joined(separator: ", ") + "]"]
      if let s = statistics[name] {
        let numbers = "‖grad‖ \(scientific(s.gradientNorm))  upd/w \(scientific(s.updateRatio))"
        if lines[0].count + 2 + numbers.count <= frame.width { lines[0] += "  " + numbers } else { lines.append("  " + numbers) }
      }
      for (offset, text) in lines.enumerated() {
        grid.write(String(text.prefix(frame.width)), x: 0, y: frame.height - lines.count + offset, role: .label)
      }
    }
    return grid
  }

  /// `dense relu`, `dropout 0.3`, `batch_norm`.
  static func typeText(_ layer: LayerSpec) -> String {
    switch layer.kind {
    case .dense(let dense): return dense.activation == .identity ? "dense" : "dense \(dense.activation.summary)"
    case .activation(let function): return "activation \(function.summary)"
    case .dropout(let rate): return "dropout \(ProgressLine.significant(rate))"
    default: return layer.kind.typeName
    }
  }

  static func optimizerPane(_ input: DashboardInput, _ frame: Frame, _ charset: Charset) -> Grid {
    var grid = Grid(width: frame.width, height: frame.height)
    let spec = input.spec, s = input.snapshot
    let optimizerLines =
      wrap(spec.optimizer.summary, width: frame.width) + (s.optimizerReport.map { wrap($0, width: frame.width) } ?? [])
    let lines =
      optimizerLines
      + wrap(
        "schedule \(spec.schedule.summary)" + (s.learningRate.map { " · lr now \(ProgressLine.significant($0))" } ?? ""), width: frame.width
      ) + (s.uncertainty.first.map { wrap("uncertainty: " + $0, width: frame.width) } ?? [])
      + s.uncertainty.dropFirst().map { String($0.prefix(frame.width)) }
    for (row, text) in lines.prefix(frame.height).enumerated() {
      grid.write(String(text.prefix(frame.width)), x: 0, y: row, role: row < optimizerLines.count ? .text : .label)
    }
    let chartHeight = frame.height - lines.count
    if chartHeight >= LineChart.minimumSize.height {
      let last = s.plannedStep ?? TrainingRun.plannedStep(spec: spec, from: s.step, extraSteps: nil)
      let chart = HistoryPlots.learningRateChart(
        spec, used: s.logs[.learningRate] ?? MetricLog(), events: s.events, through: last, current: s.step, charset: charset)
      grid.paste(chart.render(width: frame.width, height: chartHeight), x: 0, y: lines.count)
    }
    return grid
  }

  /// The newest log entries that fit, each wrapped to the pane's width (continuation lines
  /// indented), scrolled back by `logScroll` entries.
  static func eventsPane(_ state: DashboardState, _ frame: Frame) -> Grid {
    var grid = Grid(width: frame.width, height: frame.height)
    let end = max(0, state.log.count - state.logScroll)
    var rows: [(String, ColorRole)] = []
    for text in state.log[..<end].reversed() {
      let role: ColorRole =
        text.hasPrefix("[error]") || text.hasPrefix("[diverged]") || text.hasPrefix("error:")
        ? .warning : text.hasPrefix("›") ? .label : .text
      rows.insert(contentsOf: wrapLine(text, width: frame.width).map { ($0, role) }, at: 0)
      if rows.count >= frame.height { break }
    }
    for (row, (text, role)) in rows.suffix(frame.height).enumerated() {
      grid.write(text, x: 0, y: row, role: role)
    }
    if state.log.isEmpty {
      grid.write("training events, command results and errors appear here", x: 0, y: 0, role: .label)
    }
    return grid
  }

  /// One log entry in lines of at most `width` characters: broken at spaces where it can be,
  /// later lines indented by two.
  static func wrapLine(_ text: String, width: Int) -> [String] {
    guard text.count > width, width > 8 else { return [String(text.prefix(max(0, width)))] }
    var lines: [String] = []
    var rest = Substring(text)
    var limit = width
    while rest.count > limit {
      let head = rest.prefix(limit)
      let cut = head.lastIndex(of: " ").map { head.distance(from: head.startIndex, to: $0) } ?? limit
      let breakAt = cut > limit / 2 ? cut : limit
      lines.append((lines.isEmpty ? "" : "  ") + rest.prefix(breakAt))
      rest = rest.dropFirst(breakAt).drop { $0 == " " }
      limit = width - 2
    }
    if !rest.isEmpty { lines.append((lines.isEmpty ? "" : "  ") + rest) }
    return lines
  }

  /// Words of `text` in lines of at most `width` characters.
  static func wrap(_ text: String, width: Int) -> [String] {
    var lines: [String] = [], current = ""
    for word in text.split(separator: " ") {
      if !current.isEmpty && current.count + 1 + word.count > width {
        lines.append(current)
        current = ""
      }
      current += (current.isEmpty ? "" : " ") + word
    }
    if !current.isEmpty { lines.append(current) }
    return lines
  }
}
