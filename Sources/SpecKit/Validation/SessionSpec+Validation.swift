extension SessionSpec {
  /// Every problem of the spec that only shows across fields: shapes through the model, the
  /// model against the data, the loss against the model's output, stop rules against the data.
  /// Field-level rules are enforced when a file is read; a spec built in code should be checked
  /// with this before it is trained or saved.
  public func validate() -> [SpecIssue] {
    let log = IssueLog()
    checkConsistency(log: log)
    return log.issues
  }

  /// The cross-field problems against data whose shapes are known only once it is read (csv,
  /// idx): the model's input and the loss against the data's samples and targets.
  public func problems(with dataShape: DataShape) -> [SpecIssue] {
    let log = IssueLog()
    checkConsistency(log: log, dataShape: dataShape)
    return log.issues
  }

  /// The cross-field checks; each runs only when the fields it reads had no problem of their
  /// own, so one mistake is reported once.
  func checkConsistency(log: IssueLog, dataShape knownShape: DataShape? = nil) {
    let modelClean = log.isClean(under: "model")
    let shapes = modelClean ? model.inferShapes(at: "model", log: log) : nil
    let dataShape = log.isClean(under: "data") ? knownShape ?? data.source.knownShape : nil

    if modelClean, let dataShape, !data.source.accepts(modelInput: model.input, samples: dataShape.input) {
      log.report(
        "model.input",
        "must be \(dataShape.input) to match the samples of data \(JSONWriter.quoted(data.source.typeName)), got \(model.input)", at: nil)
    }
    if let shapes, let last = shapes.last, log.isClean(under: "loss") {
      checkLoss(output: last, layerIndex: shapes.count - 1, target: dataShape?.target, log: log)
    }
    if shapes != nil, log.isClean(under: "data"), log.isClean(under: "training"), log.isClean(under: "optimizer") {
      for issue in resourceProblems() { log.report(issue.path, issue.message, at: nil) }
    }
    if let metrics = history.metrics, let state, metrics.file == state.tensors, log.isClean(under: "history"), log.isClean(under: "state") {
      log.report(
        "history.metrics.file",
        "must not be the state's tensor file (\(TextExcerpt.quoted(state.tensors))); the metrics have a file of their own, normally NAME.history.safetensors",
        at: nil)
    }
    if let posterior, log.isClean(under: "posterior"), log.isClean(under: "model"), log.isClean(under: "loss") {
      if let state, log.isClean(under: "state") {
        if posterior.step != state.step {
          log.report(
            "posterior.step",
            "is \(posterior.step), but the state is at step \(state.step); a posterior belongs to the weights it was fitted at: fit it again (posterior) or remove it",
            at: nil)
        }
      } else if state == nil {
        log.report("posterior", "a posterior needs trained weights, but state is null; train, then fit one (posterior)", at: nil)
      }
      if let problem = posteriorProblem(posterior) { log.report(problem.path, problem.message, at: nil) }
    }
    if log.isClean(under: "training") && log.isClean(under: "data") && data.validationFraction == 0 {
      for (i, rule) in training.stop.enumerated() {
        if case .earlyStopping = rule {
          log.report(
            JSONPath("training.stop") + i,
            "early_stopping watches the validation loss, but data.validation_fraction is 0; hold out some samples (e.g. 0.2) or use another rule",
            at: nil)
        }
      }
    }
  }

  private func checkLoss(output: LayerShape, layerIndex: Int, target: TargetKind?, log: IssueLog) {
    let where_ = "model.layers[\(layerIndex)] (\(output.layer.name)) outputs \(output.outputShape)"
    guard output.outputShape.count == 1 else {
      log.report("loss.type", "\(loss.name) needs a 1-D model output, but \(where_); add a flatten or dense layer at the end", at: nil)
      return
    }
    let width = output.outputShape[0]
    let source = JSONWriter.quoted(data.source.typeName)
    switch (loss, target) {
    case (.softmaxCrossEntropy, .classes(let classes)?):
      if width != classes {
        log.report(
          "loss.type", "softmax_cross_entropy over \(classes) classes needs the last layer to output [\(classes)], but \(where_)", at: nil)
      }
    case (.softmaxCrossEntropy, nil):
      if width < 2 { log.report("loss.type", "softmax_cross_entropy needs at least 2 outputs (one per class), but \(where_)", at: nil) }
    case (.sigmoidBinaryCrossEntropy, .classes(let classes)?):
      if classes != 2 {
        log.report(
          "loss.type",
          "sigmoid_binary_cross_entropy needs targets in {0, 1}, but data \(source) has \(classes) classes; use softmax_cross_entropy",
          at: nil)
      } else if width != 1 {
        log.report("loss.type", "sigmoid_binary_cross_entropy needs the last layer to output [1] (one logit), but \(where_)", at: nil)
      }
    case (.softmaxCrossEntropy, .values?), (.sigmoidBinaryCrossEntropy, .values?):
      log.report("loss.type", "\(loss.name) needs class labels, but data \(source) gives \(target!); use mse or huber", at: nil)
    case (.mse, .values(let targetWidth)?), (.huber, .values(let targetWidth)?):
      if width != targetWidth {
        log.report(
          "loss.type", "\(loss.name) needs the last layer to output [\(targetWidth)] like the targets of data \(source), but \(where_)",
          at: nil)
      }
    case (.mse, .classes(let classes)?), (.huber, .classes(let classes)?):
      // Class targets are compared one-hot.
      if width != classes {
        log.report(
          "loss.type",
          "\(loss.name) on \(classes) classes compares one-hot targets, so the last layer must output [\(classes)], but \(where_)", at: nil)
      }
    case (.sigmoidBinaryCrossEntropy, nil), (.mse, nil), (.huber, nil):
      break
    }
  }
}
