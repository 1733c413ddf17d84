import Backends
import Datasets
import Foundation
import SpecKit
import TensorCore
import TermPlot

/// What `evaluate` prints about one split: for a classifier, the accuracy, a confusion matrix
/// (rows: the true class; columns: the predicted one) and each class's precision, recall, F1
/// and support; for a regression, the mean absolute error, the root mean squared error and R².
public struct EvaluationReport: Sendable {
  public var split: DataPart
  public var samples: Int
  public var loss: Float
  public var text: String

  /// The report of `outputs` (the model's, one row a sample) against `targets`.
  ///
  /// - Parameter classNames: the classes' names in label order (a csv's values), or nil for
  ///   their numbers.
  public static func make(
    split: DataPart, loss: Float, outputs: Tensor, targets: Targets, classNames: [String]?
  ) -> EvaluationReport {
    let rows = outputs.rows, width = outputs.rowWidth
    var lines = ["\(split.rawValue): \(rows) samples, loss \(ProgressLine.significant(Double(loss)))"]
    switch targets {
    case .classes(let labels):
      let classes = max(width, (labels.max() ?? 0) + 1)
      let names = (0..<classes).map { name(of: $0, in: classNames) }
      var matrix = Array(repeating: Array(repeating: 0, count: classes), count: classes)
      outputs.scalars.withUnsafeBufferPointer { scores in
        // A single output is a binary classifier's logit: class 1 when it is positive.
        for row in 0..<rows { matrix[labels[row]][LossSpec.predictedClass(scores, row: row, width: width)] += 1 }
      }
      let correct = (0..<classes).reduce(0) { $0 + matrix[$1][$1] }
      lines[0] += String(format: ", accuracy %.1f%% (%d of %d)", 100 * Double(correct) / Double(max(rows, 1)), correct, rows)
      lines.append("confusion matrix (rows: true class, columns: predicted)")
      let header = ["true \\ predicted"] + names
      let body = (0..<classes).map { t in [names[t]] + (0..<classes).map { String(matrix[t][$0]) } }
      lines.append(Table.render(header: header, rows: body).plainText)
      var perClass: [[String]] = []
      for c in 0..<classes {
        let truePositive = Double(matrix[c][c])
        let predicted = Double((0..<classes).reduce(0) { $0 + matrix[$1][c] })
        let actual = Double(matrix[c].reduce(0, +))
        let precision = predicted > 0 ? truePositive / predicted : .nan
        let recall = actual > 0 ? truePositive / actual : .nan
        let f1 = precision.isNaN || recall.isNaN ? .nan : precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
        perClass.append([names[c], percent(precision), percent(recall), percent(f1), String(Int(actual))])
      }
      lines.append(Table.render(header: ["class", "precision", "recall", "F1", "support"], rows: perClass).plainText)
    case .values(let values):
      var sums = RegressionSums(width: width)
      sums.add(output: outputs.reshaped([rows, width]), targets: values.reshaped([rows, width]))
      let r2 = sums.r2.map { String(format: "%.4f", $0) } ?? "n/a (constant targets)"
      lines[0] +=
        ", MAE \(ProgressLine.significant(sums.meanAbsoluteError ?? .nan)), RMSE \(ProgressLine.significant(sums.rootMeanSquaredError ?? .nan)), R² \(r2)"
    }
    return EvaluationReport(split: split, samples: rows, loss: loss, text: lines.joined(separator: "\n"))
  }

  static func name(of label: Int, in names: [String]?) -> String {
    guard let names, names.indices.contains(label) else { return String(label) }
    return TerminalText.sanitized(names[label], keepLayout: false)
  }

  static func percent(_ x: Double) -> String { x.isNaN ? "-" : String(format: "%.1f%%", 100 * x) }
}
