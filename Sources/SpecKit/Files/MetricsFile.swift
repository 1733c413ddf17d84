/// The metrics file (`NAME.history.safetensors`, format version 2 on): for each metric `M` its
/// spec names, the tensors `M/step` (I64) and `M/value` (F32), one element a point. docs/spec-format.md,
/// "history", is the contract this follows.
public enum MetricsFile {
  /// The file name SpecBench gives the metrics of the session whose spec is `jsonName`
  /// (`spirals.json` → `spirals.history.safetensors`).
  public static func name(forSpec jsonName: String) -> String {
    (jsonName.hasSuffix(".json") ? String(jsonName.dropLast(5)) : jsonName) + ".history.safetensors"
  }

  /// Bytes a point costs while it is read: 12 in the file and 16 once loaded.
  static let bytesPerPointRead = 28

  /// The file's contents for `history`'s points: every metric, those without points empty.
  public static func contents(of history: HistorySpec) -> SafeTensors.Contents {
    var contents = SafeTensors.Contents(tensors: [:])
    for metric in Metric.allCases {
      let points = history[metric]
      contents.integers[metric.stepTensor] = StoredIntegers(shape: [points.count], values: points.map { Int64($0.step) })
      contents.tensors[metric.valueTensor] = StoredTensor(shape: [points.count], scalars: points.map(\.value))
    }
    return contents
  }

  /// The points of a decoded metrics file, checked against what the spec declares; or every
  /// problem found (at most a few per tensor), each naming the tensor and, for values, the index.
  public static func points(
    from contents: SafeTensors.Contents, declared record: MetricsRecord
  ) -> Result<[Metric: [MetricPoint]], MetricsProblems> {
    var problems: [String] = []
    var result: [Metric: [MetricPoint]] = [:]
    let declared = Metric.allCases.filter { record.points[$0] != nil }
    let expected = Set(declared.flatMap { [$0.stepTensor, $0.valueTensor] })
    let present = Set(contents.tensors.keys).union(contents.integers.keys)
    for name in present.subtracting(expected).sorted() {
      problems.append(
        "unexpected tensor \(TextExcerpt.quoted(name, limit: 64)); the file holds only M/step and M/value for the metrics M that history.metrics.points names (\(declared.map(\.rawValue).joined(separator: ", ")))"
      )
    }
    for metric in declared {
      let count = record.points[metric] ?? 0
      let what = "history.metrics.points.\(metric.rawValue) says \(count)"
      /// Why a tensor of the wrong dtype, or none, is where one of `dtype` should be.
      func absent(_ name: String, _ dtype: String, foundOther: Bool) -> String {
        foundOther
          ? "\(name) must have dtype \(dtype), not \(dtype == "I64" ? "F32" : "I64")"
          : "missing tensor \(name) (\(dtype), shape [\(count)])"
      }
      guard let steps = contents.integers[metric.stepTensor] else {
        problems.append(absent(metric.stepTensor, "I64", foundOther: contents.tensors[metric.stepTensor] != nil))
        continue
      }
      guard let values = contents.tensors[metric.valueTensor] else {
        problems.append(absent(metric.valueTensor, "F32", foundOther: contents.integers[metric.valueTensor] != nil))
        continue
      }
      var shapesMatch = true
      for (name, shape) in [(metric.stepTensor, steps.shape), (metric.valueTensor, values.shape)] where shape != [count] {
        problems.append("\(name) has shape \(shape), but \(what): it must be [\(count)]")
        shapesMatch = false
      }
      guard shapesMatch else { continue }
      var found = 0
      var points: [MetricPoint] = []
      points.reserveCapacity(count)
      // At most three problems a metric: enough to say what is wrong, and the loop stops there.
      for i in 0..<count {
        guard found < 3 else { break }
        let step = steps.values[i]
        let value = values.scalars[i]
        if step < 0 || step > Int64(StateSpec.stepLimit) {
          problems.append("\(metric.stepTensor)[\(i)] is \(step); steps are whole numbers from 0 to 2^53")
          found += 1
        } else if i > 0, step < steps.values[i - 1] {
          problems.append("\(metric.stepTensor)[\(i)] is \(step), after \(steps.values[i - 1]); steps must not decrease")
          found += 1
        }
        if !value.isFinite {
          problems.append("\(metric.valueTensor)[\(i)] is \(value); values must be finite")
          found += 1
        }
        points.append(MetricPoint(step: Int(truncatingIfNeeded: step), value: value))
      }
      result[metric] = points
    }
    return problems.isEmpty ? .success(result) : .failure(MetricsProblems(messages: problems))
  }
}

/// Why a metrics file does not match its spec.
public struct MetricsProblems: Error, Hashable, Sendable {
  public var messages: [String]
}
