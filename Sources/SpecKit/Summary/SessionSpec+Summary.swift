import Foundation

extension Activation {
  /// `relu`, `leaky_relu(0.2)`.
  public var summary: String {
    if case .leakyReLU(let alpha) = self { return "leaky_relu(\(short(alpha)))" }
    return name
  }
}

extension Initializer {
  /// `glorot_uniform`, `normal(0, 0.02)`.
  public var summary: String {
    switch self {
    case .constant(let value): "constant(\(short(value)))"
    case .uniform(let low, let high): "uniform(\(short(low)), \(short(high)))"
    case .normal(let mean, let std): "normal(\(short(mean)), \(short(std)))"
    default: name
    }
  }
}

extension OptimizerSpec {
  /// `adam lr=0.003 beta1=0.9 …`: every field, as the REPL's `optimizer` command takes them.
  public var summary: String {
    guard let object = json.objectValue else { return name }
    let fields = object.members.filter { $0.key != "type" }.map { "\($0.key)=\(JSONWriter.compact($0.value))" }
    return ([name] + fields).joined(separator: " ")
  }
}

extension ScheduleSpec {
  /// `cosine t_max=3000 eta_min=0.0`, and `from update N` when it does not start at 0.
  public var summary: String {
    guard case .object(var object) = json.kind else { return Self.fieldSummary(json) }
    object.members.removeAll { $0.key == "start" }
    return Self.fieldSummary(JSONValue(.object(object))) + (start > 0 ? " from update \(start)" : "")
  }

  static func fieldSummary(_ json: JSONValue) -> String {
    guard let object = json.objectValue else { return JSONWriter.compact(json) }
    let type = object["type"]?.stringValue ?? ""
    let fields = object.members.filter { $0.key != "type" }.map { "\($0.key)=\(JSONWriter.compact($0.value))" }
    return ([type] + fields).joined(separator: " ")
  }
}

extension DataSource {
  public var summary: String { ScheduleSpec.fieldSummary(json) }
}

extension StopRule {
  public var summary: String { ScheduleSpec.fieldSummary(json) }
}

extension SessionSpec {
  /// The text `specbench inspect` prints: layers with shapes and parameter counts, loss,
  /// optimizer, schedule, data, training plan, state and history.
  ///
  /// - Parameters:
  ///   - file: where the session was read from, shown in the heading.
  ///   - tensorsChecked: whether the state's tensors were loaded and checked (hash, names,
  ///     shapes), to say so.
  public func summary(file: String? = nil, tensorsChecked: Bool = false) -> String {
    var lines: [String] = []
    lines.append("Session \(JSONWriter.quoted(name))" + (file.map { "  (\($0), format version \(Self.currentVersion))" } ?? ""))
    lines.append("")
    lines.append("Model: input \(model.input)")
    if let shapes = try? model.layerShapes() {
      var table = TextTable(header: ["#", "name", "type", "output", "params", "details"], rightAligned: [0, 4])
      for (i, shape) in shapes.enumerated() {
        table.rows.append([
          String(i), shape.layer.name, shape.layer.kind.typeName, "\(shape.outputShape)", grouped(shape.parameterCount),
          details(shape.layer.kind),
        ])
      }
      lines += table.render()
      let buffers = shapes.flatMap(\.tensors).filter { $0.role == .buffer }.reduce(0) { $0 + $1.count }
      lines.append(
        "  trainable parameters: \(grouped(shapes.reduce(0) { $0 + $1.parameterCount }))"
          + (buffers > 0 ? "; non-trainable buffers: \(grouped(buffers))" : ""))
    } else {
      lines.append("  (the layer shapes do not chain; run `specbench validate` for details)")
    }
    if let variational = model.variational {
      lines.append("  variational (Bayes by Backprop): \(variational.layers.joined(separator: ", ")); \(variational.summary)")
    }
    lines.append("")
    lines.append("Loss:       \(ScheduleSpec.fieldSummary(loss.json))")
    let slots = optimizer.slots.map(\.slot.rawValue)
    lines.append("Optimizer:  \(optimizer.summary)")
    if case .lbfgs(let settings) = optimizer {
      let p = (try? parameterShapes().map(\.count).reduce(0, +)).map(String.init) ?? "P"
      lines.append(
        "            whole-model state: d, prev_flat_grad [\(p)]; old_dirs, old_stps [k ≤ \(settings.historySize), \(p)]; ro [k]; t, H_diag, prev_loss; n_iter, func_evals (I64)"
      )
    } else {
      lines.append("            state slots per parameter: \(slots.isEmpty ? "none" : slots.joined(separator: ", "))")
    }
    lines.append("Schedule:   \(schedule.summary)")
    var dataLine = "Data:       \(data.source.summary)"
    if data.validationFraction > 0 { dataLine += "; validation \(short(data.validationFraction * 100))%" }
    if let shape = data.source.knownShape { dataLine += "  → samples \(shape.input), \(shape.target)" }
    lines.append(dataLine)
    lines.append(
      "Training:   batch \(training.batchSize), \(training.shuffle ? "shuffled" : "in order"), seed \(training.seed); record every \(training.record.every), histograms every \(training.record.histogramsEvery)"
    )
    lines.append("            stop at the first of: " + training.stop.map(\.summary).joined(separator: "; "))
    lines.append("Backend:    \(backend)")
    if let state {
      lines.append(
        "State:      step \(grouped(state.step)), epoch \(state.epoch), tensors in \(state.tensors)"
          + (tensorsChecked ? " (hash, names and shapes checked)" : ""))
    } else {
      lines.append("State:      none; training starts from the seeded initializers")
    }
    if let posterior {
      var line =
        "Posterior:  laplace over \(posterior.subset.rawValue), \(posterior.hessian.rawValue) GGN of \(posterior.dataCount) samples at step \(grouped(posterior.step)), prior precision \(String(format: "%.4g", posterior.priorPrecision)) (\(posterior.priorTuning == .marglik ? "marginal likelihood" : "given"))"
      if let noise = posterior.noiseSigma { line += ", noise σ \(String(format: "%.4g", noise))" }
      line += "; predictive \(posterior.predictive.rawValue)" + (posterior.predictive == .mc ? " (\(posterior.samples) draws)" : "")
      lines.append(line)
    }
    var historyLine = "History:    \(counted(history.trainLoss.count, "training-loss point"))"
    if let last = history.trainLoss.last { historyLine += " (last \(String(format: "%.4g", last.value)) at step \(last.step))" }
    historyLine += ", \(counted(history.valLoss.count, "validation-loss point")), \(counted(history.events.count, "event"))"
    lines.append(historyLine)
    if let measured = history.measuresLine { lines.append("            " + measured) }
    lines.append("Journal:    \(counted(journal.count, "command"))")
    return lines.joined(separator: "\n")
  }

  /// `1 event`, `3 events`.
  private func counted(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

  private func details(_ kind: LayerSpec.Kind) -> String {
    switch kind {
    case .dense(let dense):
      "\(dense.activation.summary); init \(dense.initializer.weight.summary)"
        + (dense.useBias ? "/\(dense.initializer.bias.summary)" : ", no bias")
    case .activation(let function): function.summary
    case .dropout(let rate): "rate \(short(rate))"
    case .flatten: ""
    case .layerNorm(let eps): "eps \(short(eps))"
    case .batchNorm(let eps, let momentum): "eps \(short(eps)), momentum \(short(momentum))"
    case .conv2d(let conv):
      "\(conv.filters) filters \(conv.window.kernel.height)×\(conv.window.kernel.width)"
        + windowDetails(conv.window) + (conv.groups == 1 ? "" : ", groups \(conv.groups)")
        + ", \(conv.activation.summary); init \(conv.initializer.weight.summary)"
        + (conv.useBias ? "/\(conv.initializer.bias.summary)" : ", no bias")
    case .maxPool2d(let pool), .avgPool2d(let pool):
      "\(pool.window.kernel.height)×\(pool.window.kernel.width)" + windowDetails(pool.window)
    case .globalAvgPool: "mean over height and width"
    case .reshape(let shape): "to \(shape)"
    }
  }

  /// A window's stride, padding and dilation where they are not the plain ones.
  private func windowDetails(_ window: Window) -> String {
    var parts: [String] = []
    if window.stride != Pair(1) {
      parts.append("stride \(window.stride.height == window.stride.width ? String(window.stride.height) : window.stride.description)")
    }
    switch window.padding {
    case .same: parts.append("padding same")
    case .explicit(let pair) where pair != Pair(0):
      parts.append("padding \(pair.height == pair.width ? String(pair.height) : pair.description)")
    default: break
    }
    if window.dilation != Pair(1) { parts.append("dilation \(window.dilation)") }
    return parts.map { ", " + $0 }.joined()
  }
}

extension HistorySpec {
  /// What the history says beyond the losses, for `inspect`: the last validation's accuracy,
  /// MAE and R², and the mean of the last 50 batches' accuracy or MAE; nil when it has none.
  var measuresLine: String? {
    var parts: [String] = []
    let validation = [Metric.valAccuracy, .valMAE, .valR2].compactMap { metric in
      self[metric].last.map { "\(metric == .valR2 ? "R²" : metric == .valMAE ? "MAE" : "accuracy") \(metric.text(Double($0.value)))" }
    }
    if let step = self[.valLoss].last?.step, !validation.isEmpty {
      parts.append("validation at step \(step): " + validation.joined(separator: ", "))
    }
    for metric in [Metric.trainAccuracy, .trainMAE] where !self[metric].isEmpty {
      let recent = self[metric].suffix(50)
      let mean = recent.reduce(0.0) { $0 + Double($1.value) } / Double(recent.count)
      parts.append(
        "\(metric == .trainAccuracy ? "accuracy" : "MAE") \(metric.text(mean)) over the last \(recent.count) recorded batches")
    }
    return parts.isEmpty ? nil : parts.joined(separator: "; ")
  }
}
