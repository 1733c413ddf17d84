import ArgumentParser
import Backends
import Bayes
import Datasets
import Foundation
import Session
import SpecKit
import TensorCore

struct Posterior: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Fit a Laplace posterior around a trained session's weights and show its calibration.",
    discussion: """
      A Gaussian around the weights with the generalised Gauss-Newton matrix of the summed loss \
      over the training data: the last layer with the full matrix by default, or every layer \
      with a diagonal or Kronecker-factored one. The prior precision is tuned by the marginal \
      likelihood unless given. Prints the calibration of the point network and the posterior \
      (accuracy, NLL, ECE, Brier; for regression NLL and predictive deviations) on the \
      validation split (or the training data), with a reliability diagram; --json prints one \
      JSON object. --save writes the session with its posterior. See docs/bayes.md.
      """
  )

  @Argument(help: "The session file (NAME.json), trained.")
  var file: String

  @Option(help: "Where to save the session with its posterior (PATH.json and its binary files).")
  var save: String?

  @Option(help: "last_layer or all.")
  var subset = "last_layer"

  @Option(help: "full, diag or kron.")
  var hessian = "full"

  @Option(name: .customLong("prior-precision"), help: "The prior precision (default: tuned by the marginal likelihood).")
  var priorPrecision: Double?

  @Option(name: .customLong("noise-sigma"), help: "mse: the noise's standard deviation (default: the training residuals' RMS).")
  var noiseSigma: Double?

  @Option(help: "probit or mc.")
  var predictive = "probit"

  @Option(help: "Draws of the mc predictive.")
  var samples = 100

  @Flag(help: "Print one JSON object: the posterior, its evidence and the calibration.")
  var json = false

  @OptionGroup var access: DataAccessOptions

  func run() throws {
    let bundle = try access.load(file)
    // The options as the workbench's `posterior` settings, one word each: one reader for both.
    var settings = ["subset=\(subset)", "hessian=\(hessian)", "predictive=\(predictive)", "samples=\(samples)"]
    settings.append("prior=" + (priorPrecision.map { "\($0)" } ?? "tune"))
    if let noiseSigma { settings.append("noise=\(noiseSigma)") }
    let request: LaplaceFit.Request
    do {
      guard case .fit(let parsed) = try CommandParser.posterior(settings) else { throw failWith("posterior: nothing to fit") }
      request = parsed
    } catch let error as CommandError {
      throw failWith(error.message.replacingOccurrences(of: "posterior: ", with: ""))
    }
    let folder = PathText.folder(file)
    let fitted: (bundle: SessionBundle, fit: LaplaceFit.Result)
    let calibration: Uncertainty.Calibration
    do {
      fitted = try Uncertainty.fitPosterior(bundle, folder: folder, request: request)
      calibration = try Uncertainty.calibration(of: fitted.bundle, folder: folder)
    } catch {
      throw failWith(error.message)
    }
    if let save {
      do { try SessionFile.save(fitted.bundle, to: save) } catch { throw fail(error) }
    }
    if json {
      say(
        JSONWriter.compact(
          .object([
            "posterior": fitted.bundle.spec.posterior!.json, "log_marginal_likelihood": .double(fitted.fit.logMarginalLikelihood),
            "log_likelihood": .double(fitted.fit.logLikelihood), "calibration": calibration.json,
            "saved": save.map { .string(SessionFile.paths(for: $0).json) } ?? .null,
          ])))
      return
    }
    say(Uncertainty.fitSummary(fitted.fit))
    say(calibration.text)
    say(save.map { "saved \(SessionFile.paths(for: $0).json)" } ?? "not saved; --save PATH writes the session with its posterior")
  }
}

struct CalibrationCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "calibration",
    abstract: "The calibration of a session's point network and its posterior or variational predictive.",
    discussion: """
      Accuracy, negative log-likelihood, expected calibration error (15 bins) and Brier score \
      for classes; NLL, RMSE and how often targets fall within one and two predictive deviations \
      for regression. On the validation split by default (the training data when there is none). \
      See docs/bayes.md.
      """
  )

  @Argument(help: "The session file (NAME.json), trained.")
  var file: String

  @Option(help: "train or validation.")
  var split: String?

  @Flag(help: "Print one JSON object.")
  var json = false

  @OptionGroup var access: DataAccessOptions

  func run() throws {
    let bundle = try access.load(file)
    var part: DataPart?
    if let split {
      guard let chosen = DataPart(rawValue: split) else { throw failWith("--split must be train or validation, got \(split)") }
      part = chosen
    }
    let calibration: Uncertainty.Calibration
    do { calibration = try Uncertainty.calibration(of: bundle, folder: PathText.folder(file), part: part) } catch {
      throw failWith(error.message.replacingOccurrences(of: "calibration: ", with: ""))
    }
    say(json ? JSONWriter.compact(calibration.json) : calibration.text)
  }
}

struct Predict: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "A trained session's predictions, with their uncertainty, for new samples.",
    discussion: """
      --data names a CSV laid out like the session's training CSV (for other data sources: the \
      input values of a sample per line, an optional last column the target, an optional \
      header), or a .json file holding a data object of the format. The session's own \
      preprocessing is applied. Classes: the probabilities (the predictive mean when the session \
      has a posterior or variational layers) with their uncertainty; regression: the mean and \
      standard deviation. When the file has targets, the calibration on it follows. --json \
      prints one JSON object per sample and then a summary line. See docs/bayes.md.
      """
  )

  @Argument(help: "The session file (NAME.json), trained.")
  var file: String

  @Option(help: "The samples: a CSV, or a .json data object.")
  var data: String

  @Option(
    help: "point, laplace or variational (default: the session's own: its posterior's, its variational layers', or the point network's).")
  var method: String?

  @Flag(help: "One JSON object per line: a line per sample, then {\"summary\": …}.")
  var json = false

  @OptionGroup var access: DataAccessOptions

  func run() throws {
    let bundle = try access.load(file)
    guard let tensors = bundle.tensors, bundle.spec.state != nil else {
      throw failWith("\(file): the session has not trained yet; train it first (specbench run \(file) --save …)")
    }
    let spec = bundle.spec
    let chosen: Predictor.Method
    switch method {
    case nil: chosen = Uncertainty.bayesianMethod(of: spec) ?? .point
    case "point": chosen = .point
    case "laplace": chosen = .laplace
    case "variational": chosen = .variational
    case let other?: throw failWith("--method must be point, laplace or variational, got \(other)")
    }
    let folder = PathText.folder(file)
    let split: DataSplit, classNames: [String]?
    do { (split, classNames) = try DataSplit.of(spec, relativeTo: folder) } catch { throw failWith("\(error)") }
    let samples: PredictionData.Samples
    do {
      // The file the user names is theirs to read, and so is a data object's own file beside it.
      samples = try DataAccess.allowing([PathText.folder(data)]) { () throws(DataError) in
        try PredictionData.load(data, spec: spec, classNames: classNames, standardization: split.standardization)
      }
    } catch {
      throw failWith("\(error)")
    }
    let predictor: Predictor
    do { predictor = try Predictor(spec: spec, tensors: tensors, method: chosen, train: split.train) } catch {
      throw failWith(error.description)
    }
    let prediction = predictor.predict(samples.inputs)
    let label = Uncertainty.label(chosen, spec: spec)
    let lines = (0..<prediction.count).map { n in
      json
        ? JSONWriter.compact(Uncertainty.json(prediction, n, classNames: classNames))
        : "\(n): " + Uncertainty.text(prediction, n, classNames: classNames)
    }
    for line in lines { say(line) }
    var summary: [JSONObject.Member] = [
      .init(key: "samples", value: .int(prediction.count)), .init(key: "predictive", value: .string(label)),
    ]
    if let targets = samples.targets {
      let report = CalibrationReport(prediction, targets: targets)
      summary.append(.init(key: "calibration", value: report.json))
      if !json {
        say(CalibrationReport.table([(label, report)]))
        for line in report.reliabilityDiagram() { say(line) }
      }
    }
    if json { say(JSONWriter.compact(.object(["summary": .object(summary)]))) }
  }
}
