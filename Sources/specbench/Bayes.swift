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
    var words = ["posterior", "subset=\(subset)", "hessian=\(hessian)", "predictive=\(predictive)", "samples=\(samples)"]
    words.append("prior=" + (priorPrecision.map { "\($0)" } ?? "tune"))
    if let noiseSigma { words.append("noise=\(noiseSigma)") }
    let request: LaplaceFit.Request
    switch try? CommandParser.parse(words.joined(separator: " ")) {
    case .training(.posterior(.fit(let parsed)))?: request = parsed
    default:
      do { _ = try CommandParser.parse(words.joined(separator: " ")) } catch {
        throw failWith(error.message.replacingOccurrences(of: "posterior: ", with: ""))
      }
      throw failWith("could not read the settings")
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
    func className(_ c: Int) -> String { classNames.map { $0.indices.contains(c) ? $0[c] : String(c) } ?? String(c) }
    var lines: [String] = []
    for n in 0..<prediction.count {
      let row = n * prediction.width
      if prediction.kind == .classes {
        let best = prediction.predictedClass(n)
        var members: [JSONObject.Member] = [
          .init(key: "index", value: .int(n)), .init(key: "class", value: .string(className(best))),
          .init(key: "probabilities", value: .array((0..<prediction.width).map { .double(prediction.probabilities[row + $0]) })),
          .init(key: "entropy", value: .double(prediction.entropy(n))),
        ]
        if let std = prediction.probabilityStd {
          members.append(.init(key: "probability_std", value: .array((0..<prediction.width).map { .double(std[row + $0]) })))
        }
        if let std = prediction.logitStd {
          let width = std.count / max(prediction.count, 1)
          members.append(.init(key: "logit_std", value: .array((0..<width).map { .double(std[n * width + $0]) })))
        }
        if json {
          lines.append(JSONWriter.compact(.object(members)))
        } else {
          let probabilities = (0..<prediction.width).map {
            "\(className($0)) \(String(format: "%.3f", prediction.probabilities[row + $0]))"
          }
          lines.append(
            "\(n): \(className(best)) (\(probabilities.joined(separator: ", "))), entropy \(String(format: "%.3f", prediction.entropy(n)))")
        }
      } else {
        if json {
          lines.append(
            JSONWriter.compact(
              .object([
                "index": .int(n), "mean": .array((0..<prediction.width).map { .double(prediction.mean[row + $0]) }),
                "std": .array((0..<prediction.width).map { .double(prediction.std[row + $0]) }),
              ])))
        } else {
          lines.append(
            "\(n): "
              + (0..<prediction.width).map { String(format: "%.5g ± %.3g", prediction.mean[row + $0], prediction.std[row + $0]) }.joined(
                separator: ", "))
        }
      }
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
