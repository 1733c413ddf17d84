import Backends
import Bayes
import Datasets
import Foundation
import Interchange
import SpecKit
import TensorCore
import TermPlot

extension SessionEngine {
  /// Starts, pauses, resumes or stops training, or swaps its backend.
  func run(_ command: TrainingCommand) throws(CommandError) -> CommandOutcome {
    switch command {
    case .train(let steps, let wait):
      // Refused before anything changes when training cannot start.
      if training.hasWorker { throw CommandError("already training; pause, stop, or wait for it") }
      var trained = document
      let dropped = trained.dropPosterior(reason: "training moves the weights it was fitted at")
      let text = try training.start(trained, folder: folder, extraSteps: steps)
      document = trained
      if let dropped { pendingEvents.append(dropped) }
      return wait ? .waiting(text) : .done(text)
    case .pause:
      return .done(try training.pause())
    case .resume:
      return .done(try training.resume(document, folder: folder))
    case .stop:
      return .done(try training.stop(at: state?.step ?? 0))
    case .posterior(let action):
      return .done(try posterior(action))
    case .backend(let name, let options):
      let backend: any Backend
      do { backend = try backends.named(name).configured(options) } catch { throw CommandError(error.description) }
      if let reason = backend.unavailableReason { throw CommandError(reason) }
      let unsupported = backend.capabilities.unsupported(in: spec)
      if !unsupported.isEmpty {
        throw CommandError(
          "the \(backend.name) backend cannot train this session (\(unsupported.map(\.description).joined(separator: "; "))); it stays on \(spec.backend)"
        )
      }
      let old = (try? backends.named(spec.backend))?.label ?? spec.backend
      document.spec.backend = backend.name
      document.hasUnsavedChanges = true
      training.configure(backend)
      if training.change(to: spec, backend: backend) {
        return .done("swapping \(old) -> \(backend.label) at the next step boundary")
      }
      // A paused or trained session marks the swap where it happened, as a running one does.
      if let state, old != backend.label {
        let detail = "\(old) -> \(backend.label)"
        document.spec.history.events.append(HistoryEvent(step: state.step, kind: "backend", detail: detail))
        pendingEvents.append(EngineEvent(.backend, "backend at step \(state.step): \(detail), state carried across"))
      }
      return .done("backend \(backend.label)")
    }
  }

  /// Looks at the session; changes nothing.
  func run(_ command: Query) throws(CommandError) -> CommandOutcome {
    switch command {
    case .status:
      return .done(statusText())
    case .show(let what):
      return .done(show(what))
    case .plot(let what, let logScale, let smoothing):
      return .drawing(plot(what, logScale: logScale, smoothing: smoothing))
    case .hist(let tensor):
      return .drawing(try histogram(tensor))
    case .filters(let layer, let channel):
      return .drawing(try filters(layer, channel: channel))
    case .backends:
      return .done(backends.all.map { "\($0.name): \($0.summary)" }.joined(separator: "\n"))
    case .history:
      return .done(
        spec.journal.enumerated().map { String(format: "%3d  ", $0.offset + 1) + $0.element }.joined(separator: "\n").nonEmpty
          ?? "no commands yet")
    case .help(let topic):
      return .done(try CommandTable.help(topic))
    case .evaluate(let part):
      return .done(try evaluate(part))
    case .predict(let samples):
      return .done(try predict(samples))
    case .calibration(let part):
      let bundle = try currentBundle(for: "calibration")
      let report = try Uncertainty.calibration(of: bundle, folder: folder, part: part)
      calibration = MeasuredCalibration(step: bundle.spec.state?.step ?? 0, spec: bundle.spec, report: report)
      return .done(report.text)
    }
  }

  /// `posterior`: fits a Laplace posterior around the weights as they stand (training neither
  /// running nor paused, so that they stay there) and shows its calibration; `posterior off`
  /// removes it.
  func posterior(_ action: PosteriorAction) throws(CommandError) -> String {
    guard !training.hasWorker, training.status != .paused else {
      throw CommandError(
        "posterior: training is \(training.hasWorker ? "running" : "paused"); stop it first (stop), so that the weights stay where the posterior is fitted"
      )
    }
    switch action {
    case .off:
      guard let event = document.dropPosterior(reason: "posterior off") else {
        throw CommandError("posterior off: the session has no posterior")
      }
      pendingEvents.append(event)
      return "posterior removed; predictions are the point network's"
    case .fit(let request):
      let (fitted, fit) = try Uncertainty.fitPosterior(document.bundle, folder: folder, request: request)
      let summary = Uncertainty.fitSummary(fit)
      document.attachPosterior(from: fitted, detail: summary)
      var lines = [summary]
      if let report = try? Uncertainty.calibration(of: fitted, folder: folder) {
        calibration = MeasuredCalibration(step: fitted.spec.state?.step ?? 0, spec: fitted.spec, report: report)
        lines.append(report.text)
      }
      return lines.joined(separator: "\n")
    }
  }

  /// `predict`: each sample through the data's preprocessing (a csv's standardisation) and the
  /// model; a classifier's answer is its most likely class with the probabilities.
  func predict(_ samples: [[Double]]) throws(CommandError) -> String {
    let width = spec.model.input.reduce(1, *)
    if let bad = samples.firstIndex(where: { $0.count != width }) {
      throw CommandError(
        "predict: sample \(bad + 1) has \(samples[bad].count) values, but the model takes \(width) (input \(spec.model.input))")
    }
    let (bundle, trainer, split, names) = try modelOnItsData(for: "predict")
    do throws(any Error) {
      var inputs = Tensor(shape: [samples.count] + bundle.spec.model.input, scalars: samples.flatMap { $0.map { Float($0) } })
      if let standardization = split.standardization { inputs = standardization.apply(to: inputs) }
      // A session with a posterior or variational layers answers with its predictive.
      if let method = Uncertainty.bayesianMethod(of: bundle.spec), let tensors = bundle.tensors {
        let predictor = try Predictor(spec: bundle.spec, tensors: tensors, method: method, train: split.train)
        let prediction = predictor.predict(inputs)
        let lines = samples.indices.map { row in
          samples[row].map { ProgressLine.significant($0) }.joined(separator: ",") + " → "
            + Uncertainty.text(prediction, row, classNames: names)
        }
        return (lines + ["(\(Uncertainty.label(method, spec: bundle.spec)) predictive)"]).joined(separator: "\n")
      }
      let outputs = try trainer.predict(inputs)
      let columns = outputs.rowWidth
      return samples.indices.map { row in
        let values = Array(outputs.scalars[(row * columns)..<((row + 1) * columns)])
        let label = samples[row].map { ProgressLine.significant($0) }.joined(separator: ",")
        switch bundle.spec.loss {
        case .softmaxCrossEntropy:
          let top = values.max() ?? 0
          let exps = values.map { exp(Double($0 - top)) }
          let total = exps.reduce(0, +)
          let best = exps.indices.max { exps[$0] < exps[$1] } ?? 0
          let probabilities = exps.indices.map { "\(EvaluationReport.name(of: $0, in: names)) \(String(format: "%.3f", exps[$0] / total))" }
          return "\(label) → \(EvaluationReport.name(of: best, in: names)) (\(probabilities.joined(separator: ", ")))"
        case .sigmoidBinaryCrossEntropy:
          return "\(label) → " + values.map { String(format: "%.3f", 1 / (1 + exp(-Double($0)))) }.joined(separator: ", ")
        case .mse, .huber:
          return "\(label) → " + values.map { ProgressLine.significant(Double($0)) }.joined(separator: ", ")
        }
      }.joined(separator: "\n")
    } catch {
      throw CommandError("predict: \(error)")
    }
  }

  /// The session as it stands (at a step boundary while training), a trainer of it on its own
  /// backend, its data split as training sees it, and the data's class names: what `evaluate`
  /// and `predict` run.
  func modelOnItsData(for verb: String) throws(CommandError) -> (
    bundle: SessionBundle, trainer: any Trainer, split: DataSplit, classNames: [String]?
  ) {
    let bundle = try currentBundle(for: verb)
    do throws(any Error) {
      let (split, names) = try DataSplit.of(bundle.spec, relativeTo: folder)
      let trainer = try backends.named(bundle.spec.backend).makeTrainer(spec: bundle.spec, state: try bundle.trainingState(), data: split)
      return (bundle, trainer, split, names)
    } catch {
      throw CommandError("\(verb): \(error)")
    }
  }

  /// `evaluate`: the session as it stands (at a step boundary while training), on one split.
  func evaluate(_ requested: DataPart?) throws(CommandError) -> String {
    let (_, trainer, split, names) = try modelOnItsData(for: "evaluate")
    let part = requested ?? (split.validation == nil ? .train : .validation)
    guard let data = part == .train ? split.train : split.validation else {
      throw CommandError("evaluate: the session has no validation split (data.validation_fraction is 0); evaluate train")
    }
    do throws(any Error) {
      let loss = try trainer.evaluate(part)?.loss ?? .nan
      let outputs = try trainer.predict(data.inputs.materialized(for: "evaluate"))
      return EvaluationReport.make(
        split: part, loss: loss, outputs: outputs.reshaped([outputs.rows, outputs.rowWidth]), targets: data.targets, classNames: names
      ).text
    } catch {
      throw CommandError("evaluate: \(error)")
    }
  }

  /// Saves, exports, loads; undo and redo.
  func run(_ command: FileCommand) throws(CommandError) -> CommandOutcome {
    switch command {
    case .save(let target):
      pendingEvents.append(EngineEvent(.saved, try save(to: target)))
      return .done("")
    case .export(let format, let target, let softmax):
      return .done(try export(format, to: target, softmax: softmax))
    case .load(let file):
      guard !training.hasWorker else { throw CommandError("training is running; stop it before loading another session") }
      let bundle: SessionBundle
      do { bundle = try SessionFile.load(file) } catch { throw CommandError(error.description) }
      document.replace(with: bundle, path: SessionFile.paths(for: file).json)
      training.forgetSession()
      return .done(
        "loaded \(spec.name) from \(path!)" + (state.map { " at step \($0.step)" } ?? "") + " (undo goes back to the previous session)")
    case .undo, .redo:
      guard !training.hasWorker else { throw CommandError("training is running; pause it before undo or redo") }
      return .done(try document.step(back: command == .undo))
    }
  }

  func statusText() -> String {
    let s = snapshot
    var parts = [
      "\(s.status.rawValue) at step \(s.step)" + (s.plannedStep.map { "/\($0)" } ?? ""), "epoch \(s.epoch)", "backend \(s.backend)",
    ]
    parts += s.metricReadings().map(\.text)
    if let lr = s.learningRate { parts.append("lr \(ProgressLine.significant(lr))") }
    if let report = s.optimizerReport { parts.append(report) }
    if s.status == .running, let rate = s.stepsPerSecond {
      parts.append("\(Int(rate.rounded())) steps/s")
      if let planned = s.plannedStep, planned > s.step, rate > 0 {
        parts.append("ETA \(ProgressLine.duration(Double(planned - s.step) / rate))")
      }
    }
    return parts.joined(separator: ", ")
  }

  func show(_ what: Query.Part) -> String {
    let summary = spec.summary().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    func lines(from prefix: String, through end: (String) -> Bool) -> String {
      guard let first = summary.firstIndex(where: { $0.hasPrefix(prefix) }) else { return "" }
      let rest = summary[first...]
      let last = rest.firstIndex(where: end) ?? rest.endIndex
      return rest[first..<last].joined(separator: "\n")
    }
    switch what {
    case .model:
      return spec.model.layers.isEmpty
        ? "Model: input \(spec.model.input), no layers yet (add dense 64 relu)" : lines(from: "Model:") { $0.isEmpty }
    case .optimizer: return lines(from: "Optimizer:") { $0.hasPrefix("Data:") }
    case .data: return lines(from: "Data:") { $0.hasPrefix("Training:") }
    case .training: return lines(from: "Training:") { $0.hasPrefix("State:") }
    case .spec: return spec.canonicalText.trimmingCharacters(in: .newlines)
    case .overview: return summary.joined(separator: "\n").trimmingCharacters(in: .newlines)
    }
  }

  func plot(_ what: Query.Chart, logScale: Bool, smoothing: Double?) -> Drawing {
    let height = 16
    let s = snapshot
    guard let metrics = HistoryPlots.Metrics(rawValue: what.rawValue) else {
      let last = s.plannedStep ?? TrainingRun.plannedStep(spec: spec, from: s.step, extraSteps: nil)
      let chart = HistoryPlots.learningRateChart(
        spec, used: s.logs[.learningRate] ?? MetricLog(), events: s.events, through: last, current: s.step, logScale: logScale)
      return .chart(chart, height: height)
    }
    guard let chart = HistoryPlots.chart(metrics, s, logScale: logScale, smoothing: smoothing ?? 0) else {
      return .note(metrics.missing)
    }
    return .chart(chart, height: height)
  }

  /// The first filters of a conv2d layer (as many as 32), each its `[kh, kw]` kernel for one
  /// input channel of its group, from the weights as they stand.
  func filters(_ name: String, channel: Int?) throws(CommandError) -> Drawing {
    let convs = spec.model.layers.compactMap { layer -> (String, Conv2DLayer)? in
      if case .conv2d(let conv) = layer.kind { (layer.name, conv) } else { nil }
    }
    guard let (layer, conv) = convs.first(where: { $0.0 == name }) else {
      let names = convs.map(\.0)
      throw CommandError(
        "filters: no conv2d layer \(TextExcerpt.quoted(name)); "
          + (names.isEmpty ? "the model has none (add conv2d FILTERS KERNEL)" : "its conv2d layers are \(names.joined(separator: ", "))")
          + (Suggestion.nearest(to: name, in: names).map { " — did you mean \"\($0)\"?" } ?? ""))
    }
    guard let weight = snapshot.tensorValues[layer + ".weight"],
      let shape = try? spec.model.layerShapes().first(where: { $0.layer.name == layer }),
      let tensorShape = shape.tensors.first?.shape, tensorShape.count == 4
    else { throw CommandError("filters: \(layer) has no weights yet") }
    let (filters, perGroup, kh, kw) = (tensorShape[0], tensorShape[1], tensorShape[2], tensorShape[3])
    let c = channel ?? 0
    guard c < perGroup else {
      throw CommandError(
        "filters: \(layer)'s filters each read \(perGroup) input channel\(perGroup == 1 ? "" : "s") (0 to \(perGroup - 1)); got \(c)")
    }
    let shown = min(filters, 32)
    let images = (0..<shown).map { o in
      let base = (o * perGroup + c) * kh * kw
      return FilterImages.Image(caption: "#\(o)", values: Array(weight[base..<base + kh * kw]))
    }
    let title =
      "\(layer).weight: \(shown == filters ? "" : "the first \(shown) of ")\(filters) filters \(kh)×\(kw)"
      + (perGroup > 1 || conv.groups > 1 ? ", input channel \(c) of \(perGroup)\(conv.groups > 1 ? " in its group" : "")" : "")
    return .filters(FilterImages(title: title, images: images, rows: kh, columns: kw))
  }

  func histogram(_ tensor: String) throws(CommandError) -> Drawing {
    let values = snapshot.tensorValues
    if values.isEmpty {
      do { _ = try spec.model.layerShapes() } catch {
        throw CommandError("the model's shapes do not chain yet: \(error.issues.first?.message ?? "\(error)")")
      }
    }
    guard let found = values[tensor] else {
      let names = values.keys.sorted()
      throw CommandError(
        "no tensor \"\(tensor)\"; tensors: \(names.joined(separator: ", "))"
          + (Suggestion.nearest(to: tensor, in: names).map { " — did you mean \"\($0)\"?" } ?? ""))
    }
    return .histogram(title: tensor, values: found.map(Double.init), height: 12)
  }

  /// The session as it stands, with its state: while training, as the worker exports it at
  /// its next step boundary (it answers the request; nothing polls).
  func currentBundle(for verb: String) throws(CommandError) -> SessionBundle {
    guard var bundle = try training.exportAtNextBoundary(for: verb) else { return document.bundle }
    bundle.spec.journal = spec.journal
    return bundle
  }

  /// `export FORMAT PATH`: the session (at a step boundary while training) in another format.
  func export(_ formatName: String, to target: String, softmax: Bool) throws(CommandError) -> String {
    let bundle = try currentBundle(for: "export")
    do {
      let result = try Exporter.export(
        bundle, to: try ExportFormat.named(formatName), path: target, folder: folder, softmax: softmax, protecting: path.map { [$0] } ?? [])
      return (["wrote " + result.files.joined(separator: " and ")] + result.leftOut.map { "  not carried: " + $0 }).joined(separator: "\n")
    } catch {
      throw CommandError("export: \(error)")
    }
  }

  /// Saves the session, unsaved changes and all, under the recovery folder
  /// (`$XDG_STATE_HOME/specbench/recovered/NAME-YYYYMMDD-HHMMSS.json`, or under
  /// `~/.local/state`): what the workbench does when SIGTERM or SIGHUP ends it with changes not
  /// saved, so that nothing is lost. The session's own file is never overwritten for it.
  ///
  /// - Returns: the path written, or the reason it could not be.
  public func saveRecoveryCopy(environment: [String: String] = ProcessInfo.processInfo.environment) -> Result<String, CommandError> {
    let base = environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.local/state")
    let safeName = String(
      spec.name.unicodeScalars.prefix(64).map {
        $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" ? Character($0) : "_"
      })
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyyMMdd-HHmmss"
    formatter.locale = Locale(identifier: "en_US_POSIX")
    let target = "\(base)/specbench/recovered/\(safeName.isEmpty ? "session" : safeName)-\(formatter.string(from: Date()))"
    let (keptPath, unsaved, keptData) = (path, hasUnsavedChanges, spec.data)
    do {
      _ = try save(to: target)
    } catch {
      return .failure(error)
    }
    // The recovery copy is not where the user keeps the session.
    (document.path, document.hasUnsavedChanges, document.spec.data) = (keptPath, unsaved, keptData)
    return .success(SessionFile.paths(for: target).json)
  }

  /// Saves the session to `target` (or where it belongs). Saved into another folder, its
  /// relative data paths are rewritten to name the same files from there — in the file and in
  /// the live session, which now belongs to the new file.
  func save(to target: String?) throws(CommandError) -> String {
    guard let destination = target ?? path else { throw CommandError("save: give a path the first time, such as save sessions/mine") }
    var bundle = try currentBundle(for: "save")
    let current = FileManager.default.currentDirectoryPath
    let (oldFolder, newFolder) = (
      PathText.absolute(folder, from: current),
      PathText.absolute(PathText.folderOrCurrent(SessionFile.paths(for: destination).json), from: current)
    )
    let source = spec.data.source.rebased(from: oldFolder, to: newFolder)
    bundle.spec.data.source = source
    do {
      let written = try SessionFile.save(bundle, to: destination)
      document.path = SessionFile.paths(for: destination).json
      document.hasUnsavedChanges = training.hasWorker
      var message = "saved \(path!)" + (written.state.map { " with its state at step \($0.step)" } ?? "")
      if source != spec.data.source {
        // The live session goes on reading the same files, now named from the new folder.
        document.spec.data.source = source
        for file in spec.data.source.files where !file.hasPrefix("/") {
          DataAccess.allow(PathText.folder(PathText.absolute(file, from: newFolder)))
        }
        let outside = source.files.filter { $0.hasPrefix("../") }
        message +=
          "; data paths now relative to \(newFolder): \(source.files.joined(separator: ", "))"
          + (outside.isEmpty
            ? "" : " (outside its folder: opening the file in a new SpecBench needs --allow-data or \(DataAccess.variable))")
      }
      return message
    } catch {
      throw CommandError(error.description)
    }
  }
}
