import Backends
import Bayes
import Datasets
import Foundation
import SpecKit
import TensorCore

/// Posteriors, predictives and calibration for a session (docs/bayes.md): what the `posterior`
/// and `calibration` commands of the workbench and `specbench posterior`, `calibration` and
/// `predict` share.
public enum Uncertainty {
  /// The calibration of a session's predictives on one split.
  public struct Calibration: Sendable {
    public var split: DataPart
    /// A row per predictive: the point network first, then the session's Bayesian one.
    public var rows: [(label: String, report: CalibrationReport)]

    /// The table and, for classes, the reliability diagram of the last predictive.
    public var text: String {
      var lines = ["calibration on \(split.rawValue) (\(rows.first?.report.samples ?? 0) samples)", CalibrationReport.table(rows)]
      if let last = rows.last, last.report.isClassification {
        lines.append("reliability of \(last.label) (15 bins of top-class confidence; | marks the confidence):")
        lines += last.report.reliabilityDiagram()
      }
      return lines.joined(separator: "\n")
    }

    public var json: JSONValue {
      .object([
        "split": .string(split.rawValue),
        "predictives": .object(rows.map { JSONObject.Member(key: $0.label, value: $0.report.json) }),
      ])
    }

    /// A line for status bars: the Bayesian predictive's figures against the point network's.
    public var summary: String {
      guard let point = rows.first?.report, let last = rows.last else { return "" }
      let r = last.report
      if r.isClassification {
        return String(
          format: "%@ on %@: NLL %.3f (point %.3f), ECE %.3f (point %.3f), accuracy %.1f %%", last.label, split.rawValue, r.nll, point.nll,
          r.ece, point.ece, 100 * r.accuracy)
      }
      return String(
        format: "%@ on %@: NLL %.3f (point %.3f), mean std %.4g, within 2 std %.1f %%", last.label, split.rawValue, r.nll, point.nll,
        r.meanStd, 100 * r.withinTwoStd)
    }
  }

  /// The session's own Bayesian predictive: its posterior's, its variational layers', or none.
  public static func bayesianMethod(of spec: SessionSpec) -> Predictor.Method? {
    if spec.posterior != nil { return .laplace }
    if spec.model.variational != nil { return .variational }
    return nil
  }

  /// How a predictive is labelled in tables.
  public static func label(_ method: Predictor.Method, spec: SessionSpec) -> String {
    switch method {
    case .point: spec.model.variational == nil ? "point" : "mean network"
    case .laplace: "laplace " + (spec.posterior.map { "\($0.subset.rawValue) \($0.hessian.rawValue) \($0.predictive.rawValue)" } ?? "")
    case .variational: "variational (\(spec.model.variational?.predictSamples ?? 0) draws)"
    }
  }

  /// The session's data as training splits it, read as the session is allowed to.
  static func split(of bundle: SessionBundle, folder: String) throws(CommandError) -> (DataSplit, [String]?) {
    do { return try DataSplit.of(bundle.spec, relativeTo: folder) } catch { throw CommandError("\(error)") }
  }

  /// The calibration of the point network and the session's Bayesian predictive on `part` (the
  /// validation split when there is one and `part` is nil, else the training data).
  public static func calibration(of bundle: SessionBundle, folder: String, part: DataPart? = nil) throws(CommandError) -> Calibration {
    guard let tensors = bundle.tensors, bundle.spec.state != nil else {
      throw CommandError("calibration: the session has not trained yet; train first")
    }
    let (split, _) = try Self.split(of: bundle, folder: folder)
    let chosen: DataPart = part ?? (split.validation == nil ? .train : .validation)
    guard let data = chosen == .train ? split.train : split.validation else {
      throw CommandError("calibration: the session has no validation split (data.validation_fraction is 0); use calibration train")
    }
    var rows: [(String, CalibrationReport)] = []
    for method in [Predictor.Method.point] + (bayesianMethod(of: bundle.spec).map { [$0] } ?? []) {
      do {
        let predictor = try Predictor(spec: bundle.spec, tensors: tensors, method: method, train: split.train)
        rows.append((label(method, spec: bundle.spec), CalibrationReport(predictor.predict(data.inputs), targets: data.targets)))
      } catch {
        throw CommandError("calibration: \(error)")
      }
    }
    return Calibration(split: chosen, rows: rows)
  }

  /// The session with a Laplace posterior fitted to its weights, and what the fit found.
  public static func fitPosterior(_ bundle: SessionBundle, folder: String, request: LaplaceFit.Request) throws(CommandError) -> (
    bundle: SessionBundle, fit: LaplaceFit.Result
  ) {
    guard let tensors = bundle.tensors, bundle.spec.state != nil else {
      throw CommandError("posterior: the session has not trained yet; a posterior surrounds trained weights, so train first")
    }
    let (split, _) = try Self.split(of: bundle, folder: folder)
    var spec = bundle.spec
    let fit: LaplaceFit.Result
    do {
      // A new prior precision or predictive for the posterior the session has: its stored
      // curvature as it is; anything else: a new fit.
      if let retuned = try LaplaceFit.retune(spec: spec, tensors: tensors, train: split.train, request: request) {
        fit = retuned
      } else {
        spec.posterior = nil
        fit = try LaplaceFit.fit(spec: spec, tensors: withoutPosterior(tensors), train: split.train, request: request)
      }
    } catch {
      throw CommandError("posterior: \(error)")
    }
    spec.posterior = fit.settings
    var result = bundle
    result.spec = spec
    result.tensors = withoutPosterior(tensors).merging(fit.tensors) { _, new in new }
    return (result, fit)
  }

  /// The tensors without a posterior's.
  public static func withoutPosterior(_ tensors: [String: StoredTensor]) -> [String: StoredTensor] {
    tensors.filter { StateKey(name: $0.key)?.isPosterior != true }
  }

  /// Sample n of a prediction as text: the most probable class (by name) with every class's
  /// probability and the predictive entropy, or each value's mean ± standard deviation.
  public static func text(_ prediction: Prediction, _ n: Int, classNames: [String]?) -> String {
    let base = n * prediction.width
    guard prediction.kind == .classes else {
      return (0..<prediction.width).map {
        "\(ProgressLine.significant(prediction.mean[base + $0])) ± \(ProgressLine.significant(prediction.std[base + $0]))"
      }.joined(separator: ", ")
    }
    let probabilities = (0..<prediction.width).map {
      "\(EvaluationReport.name(of: $0, in: classNames)) \(String(format: "%.3f", prediction.probabilities[base + $0]))"
    }
    return "\(EvaluationReport.name(of: prediction.predictedClass(n), in: classNames)) (\(probabilities.joined(separator: ", "))), entropy "
      + String(format: "%.3f", prediction.entropy(n))
  }

  /// Sample n of a prediction as `specbench predict --json` writes it (docs/bayes.md).
  public static func json(_ prediction: Prediction, _ n: Int, classNames: [String]?) -> JSONValue {
    let base = n * prediction.width
    func row(_ values: [Double], width: Int) -> JSONValue { .array((0..<width).map { .double(values[n * width + $0]) }) }
    guard prediction.kind == .classes else {
      return .object([
        "index": .int(n), "mean": row(prediction.mean, width: prediction.width), "std": row(prediction.std, width: prediction.width),
      ])
    }
    var members: [JSONObject.Member] = [
      .init(key: "index", value: .int(n)),
      .init(key: "class", value: .string(EvaluationReport.name(of: prediction.predictedClass(n), in: classNames))),
      .init(key: "probabilities", value: .array((0..<prediction.width).map { .double(prediction.probabilities[base + $0]) })),
      .init(key: "entropy", value: .double(prediction.entropy(n))),
    ]
    if let std = prediction.probabilityStd { members.append(.init(key: "probability_std", value: row(std, width: prediction.width))) }
    if let std = prediction.logitStd {
      members.append(.init(key: "logit_std", value: row(std, width: std.count / max(prediction.count, 1))))
    }
    return .object(members)
  }

  /// What a fit says: the settings, the evidence and the prior precision's origin.
  public static func fitSummary(_ fit: LaplaceFit.Result) -> String {
    let s = fit.settings
    let prior = s.priorTuning == .marglik ? "tuned by the marginal likelihood" : "as given"
    let noise = s.noiseSigma.map { String(format: ", noise σ %.4g", $0) } ?? ""
    return String(
      format:
        "posterior: laplace over %@ (%d parameters), %@ GGN of %d samples%@, prior precision %.4g (%@)%@, log marginal likelihood %.4f; predictive %@",
      s.subset.rawValue, fit.posterior.parameterCount, s.hessian.rawValue, s.dataCount,
      fit.reusedCurvature ? " (the stored curvature)" : "",
      s.priorPrecision, prior, noise, fit.logMarginalLikelihood, s.predictive == .mc ? "mc with \(s.samples) draws" : "probit")
  }
}
