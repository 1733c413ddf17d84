import Foundation
import SpecKit
import TensorCore

/// How well a predictive's probabilities (or deviations) match what happens (docs/bayes.md):
/// for classes the accuracy, the negative log-likelihood, the expected calibration error over
/// 15 equal-width confidence bins and the Brier score, with the bins for a reliability diagram;
/// for values the Gaussian negative log-likelihood, the RMSE, the mean predictive deviation and
/// how often the target falls within one and two deviations.
public struct CalibrationReport: Sendable, Equatable {
  public struct Bin: Sendable, Equatable {
    public var lower: Double
    public var upper: Double
    public var count: Int
    /// Mean top-class probability of the bin's samples.
    public var confidence: Double
    /// Their accuracy.
    public var accuracy: Double
  }

  public var samples: Int
  public var isClassification: Bool
  public var accuracy: Double = 0
  public var nll: Double = 0
  public var ece: Double = 0
  public var brier: Double = 0
  public var bins: [Bin] = []
  public var rmse: Double = 0
  public var meanStd: Double = 0
  public var withinOneStd: Double = 0
  public var withinTwoStd: Double = 0

  public static let binCount = 15
  /// The smallest probability a log is taken of (an underflowed 0 would make the NLL infinite).
  public static let probabilityFloor = 1e-300

  /// The report of `prediction` against `targets`.
  public init(_ prediction: Prediction, targets: Targets) {
    samples = prediction.count
    isClassification = prediction.kind == .classes
    let n = Double(max(samples, 1))
    switch targets {
    case .classes(let labels):
      let width = prediction.width
      var binCounts = [Int](repeating: 0, count: Self.binCount)
      var binConfidence = [Double](repeating: 0, count: Self.binCount), binCorrect = binConfidence
      var correct = 0.0
      for i in 0..<samples {
        let y = labels[i]
        let predicted = prediction.predictedClass(i)
        let confidence = prediction.probabilities[i * width + predicted]
        let hit = predicted == y ? 1.0 : 0
        correct += hit
        nll -= log(max(prediction.probabilities[i * width + y], Self.probabilityFloor))
        for c in 0..<width {
          let d = prediction.probabilities[i * width + c] - (c == y ? 1 : 0)
          brier += d * d
        }
        let b = min(Int(confidence * Double(Self.binCount)), Self.binCount - 1)
        binCounts[b] += 1
        binConfidence[b] += confidence
        binCorrect[b] += hit
      }
      accuracy = correct / n
      nll /= n
      brier /= n
      for b in 0..<Self.binCount where binCounts[b] > 0 {
        let count = Double(binCounts[b])
        let bin = Bin(
          lower: Double(b) / Double(Self.binCount), upper: Double(b + 1) / Double(Self.binCount), count: binCounts[b],
          confidence: binConfidence[b] / count, accuracy: binCorrect[b] / count)
        ece += count / n * abs(bin.accuracy - bin.confidence)
        bins.append(bin)
      }
    case .values(let values):
      let width = prediction.width
      let cells = Double(max(samples * width, 1))
      var squared = 0.0
      for i in 0..<samples * width {
        let (mu, sigma) = (prediction.mean[i], max(prediction.std[i], 1e-12))
        let r = Double(values.scalars[i]) - mu
        squared += r * r
        nll += 0.5 * log(2 * Double.pi * sigma * sigma) + r * r / (2 * sigma * sigma)
        meanStd += sigma
        if abs(r) <= sigma { withinOneStd += 1 }
        if abs(r) <= 2 * sigma { withinTwoStd += 1 }
      }
      nll /= cells
      rmse = (squared / cells).squareRoot()
      meanStd /= cells
      withinOneStd /= cells
      withinTwoStd /= cells
    }
  }

  public var json: JSONValue {
    if isClassification {
      return .object([
        "samples": .int(samples), "accuracy": .double(accuracy), "nll": .double(nll), "ece": .double(ece), "brier": .double(brier),
        "bins": .array(
          bins.map {
            .object([
              "lower": .double($0.lower), "upper": .double($0.upper), "count": .int($0.count), "confidence": .double($0.confidence),
              "accuracy": .double($0.accuracy),
            ])
          }),
      ])
    }
    return .object([
      "samples": .int(samples), "nll": .double(nll), "rmse": .double(rmse), "mean_std": .double(meanStd),
      "within_1_std": .double(withinOneStd), "within_2_std": .double(withinTwoStd),
    ])
  }

  /// A table with a row per predictive (`label`, report).
  public static func table(_ rows: [(label: String, report: CalibrationReport)]) -> String {
    guard let first = rows.first?.report else { return "" }
    let header: [String]
    let body: [[String]]
    if first.isClassification {
      header = ["predictive", "accuracy", "NLL", "ECE", "Brier"]
      body = rows.map {
        [$0.label, String(format: "%.1f %%", 100 * $0.report.accuracy), f4($0.report.nll), f4($0.report.ece), f4($0.report.brier)]
      }
    } else {
      header = ["predictive", "NLL", "RMSE", "mean std", "within 1 std", "within 2 std"]
      body = rows.map {
        [
          $0.label, f4($0.report.nll), f4($0.report.rmse), f4($0.report.meanStd), String(format: "%.1f %%", 100 * $0.report.withinOneStd),
          String(format: "%.1f %%", 100 * $0.report.withinTwoStd),
        ]
      }
    }
    let widths = header.indices.map { c in ([header[c]] + body.map { $0[c] }).map(\.count).max()! }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { c, text in
        c == 0
          ? text.padding(toLength: widths[c], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[c] - text.count) + text
      }.joined(separator: "  ")
    }
    return ([line(header)] + body.map(line)).joined(separator: "\n")
  }

  /// The reliability diagram as text, a line per non-empty bin: the accuracy as a bar of `width`
  /// cells, the confidence marked with `|` on it.
  public func reliabilityDiagram(width: Int = 30) -> [String] {
    guard isClassification else { return [] }
    var lines = ["confidence   accuracy" + String(repeating: " ", count: max(width - 7, 1)) + "acc    conf   samples"]
    for bin in bins {
      var bar = Array(repeating: Character(" "), count: width)
      let filled = Int((bin.accuracy * Double(width)).rounded())
      for i in 0..<min(filled, width) { bar[i] = "█" }
      let mark = min(Int((bin.confidence * Double(width)).rounded()), width - 1)
      bar[max(mark, 0)] = bar[max(mark, 0)] == "█" ? "┃" : "|"
      lines.append(
        String(format: "%.2f–%.2f  ", bin.lower, bin.upper) + "│" + String(bar) + "│ "
          + String(format: "%.3f  %.3f  %d", bin.accuracy, bin.confidence, bin.count))
    }
    return lines
  }

  static func f4(_ x: Double) -> String { x.isFinite ? String(format: "%.4f", x) : "\(x)" }
}
