import Foundation
import SpecKit
import TensorCore

/// New samples for a trained session (`specbench predict FILE --data PATH`): a CSV laid out like
/// the session's training CSV, with or without its target column, or a data object of the format
/// in a `.json` file (docs/bayes.md, "Predicting new samples").
public enum PredictionData {
  /// Samples read for prediction, as the session's model takes them.
  public struct Samples: Sendable {
    /// `[N, input…]`, standardised as the session's training data was.
    public var inputs: Tensor
    /// The targets, when the file has them (in the session's class numbering).
    public var targets: Targets?
  }

  /// What a prediction CSV must look like for a session.
  public struct Layout: Sendable {
    public var delimiter: Character
    /// Whether the first line is a header; nil: a header when a field of the first line is not
    /// a number.
    public var header: Bool?
    /// The target column: by name (found in the header) or by index; nil: the last column,
    /// when there is one more column than inputs.
    public var target: DataSource.CSVSource.Column?
    public var inputs: Int
    public var task: DataSource.CSVSource.Task
    /// The training data's class names in label order (a csv's values), to number the targets.
    public var classNames: [String]?
    /// How many classes the model tells apart (a target must be one of them).
    public var classCount: Int = 0
  }

  /// How many classes `spec`'s model tells apart: its outputs, or 2 for one sigmoid logit.
  static func classCount(of spec: SessionSpec) -> Int {
    if spec.loss == .sigmoidBinaryCrossEntropy { return 2 }
    return (try? spec.model.layerShapes().last?.outputShape.reduce(1, *)) ?? 0
  }

  /// The layout of a session's data: its CSV's, or (for other sources) plain rows of the input
  /// values with an optional last target column.
  public static func layout(for spec: SessionSpec, classNames: [String]?) -> Layout {
    let inputs = spec.model.input.reduce(1, *)
    let task: DataSource.CSVSource.Task =
      switch spec.loss {
      case .mse, .huber: .regression
      case .softmaxCrossEntropy, .sigmoidBinaryCrossEntropy: .classification
      }
    if case .csv(let source) = spec.data.source {
      return Layout(
        delimiter: source.delimiter, header: source.header, target: source.target, inputs: inputs, task: source.task,
        classNames: classNames,
        classCount: classCount(of: spec))
    }
    return Layout(
      delimiter: ",", header: nil, target: nil, inputs: inputs, task: task, classNames: classNames, classCount: classCount(of: spec))
  }

  /// Reads the CSV `text` (from `path`, for messages) in `layout`.
  public static func csv(text: String, path: String, layout: Layout) throws(DataError) -> Samples {
    var rows: [(line: Int, fields: [String])] = []
    for (number, line) in CSVData.withoutByteOrderMark(text).split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
      .enumerated()
    {
      if line.allSatisfy(\.isWhitespace) { continue }
      rows.append((number + 1, try CSVData.fields(of: line, delimiter: layout.delimiter, path: path, line: number + 1)))
    }
    guard let first = rows.first else { throw .csv(path: path, line: 1, column: nil, message: "the file has no rows") }
    let hasHeader =
      layout.header ?? first.fields.contains { Float($0.trimmingCharacters(in: .whitespaces)) == nil }
    let names = hasHeader ? rows.removeFirst().fields.map { $0.trimmingCharacters(in: .whitespaces) } : nil
    guard let width = names?.count ?? rows.first?.fields.count else {
      throw .csv(path: path, line: first.line, column: nil, message: "the file has a header but no data rows")
    }
    // Which column is the target, if any.
    var target: Int?
    switch layout.target {
    case .name(let name)?:
      target = names?.firstIndex(of: name)
    case .index(let index)?:
      target = width == layout.inputs + 1 ? index : nil
    case nil:
      target = width == layout.inputs + 1 ? width - 1 : nil
    }
    if target == nil, width != layout.inputs {
      throw .csv(
        path: path, line: first.line, column: nil,
        message:
          "has \(width) columns, but the model takes \(layout.inputs) inputs; give \(layout.inputs) input columns, with the target column as in the training data or without it"
      )
    }
    if let target, width - 1 != layout.inputs {
      throw .csv(
        path: path, line: first.line, column: target + 1,
        message: "has \(width - 1) input columns besides the target, but the model takes \(layout.inputs)")
    }
    var inputs: [Float] = []
    inputs.reserveCapacity(rows.count * layout.inputs)
    var labels: [Int] = [], values: [Float] = []
    let classIndex = layout.classNames.map { Dictionary($0.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a }) }
    for row in rows {
      guard row.fields.count == width else {
        throw .csv(path: path, line: row.line, column: nil, message: "has \(row.fields.count) fields, but the first row has \(width)")
      }
      for (column, cell) in row.fields.enumerated() {
        let text = cell.trimmingCharacters(in: .whitespaces)
        if column == target {
          switch layout.task {
          case .regression:
            guard let value = Float(text), value.isFinite else {
              throw .csv(
                path: path, line: row.line, column: column + 1,
                message: "the target must be a finite number, got \(TextExcerpt.quoted(text))")
            }
            values.append(value)
          case .classification:
            if let index = classIndex?[text], index < layout.classCount {
              labels.append(index)
            } else if classIndex == nil, let index = Int(text), index >= 0, index < layout.classCount {
              labels.append(index)
            } else {
              let known =
                layout.classNames.map {
                  "; the training data's classes are " + $0.prefix(20).map { TextExcerpt.short($0) }.joined(separator: ", ")
                } ?? "; a class is its index from 0 to \(layout.classCount - 1)"
              throw .csv(
                path: path, line: row.line, column: column + 1, message: "\(TextExcerpt.quoted(text)) is not a class of the session\(known)"
              )
            }
          }
          continue
        }
        inputs.append(try CSVData.inputValue(text, column: column, names: names, path: path, line: row.line))
      }
    }
    let count = rows.count
    let targets: Targets? =
      target == nil ? nil : layout.task == .regression ? .values(Tensor(shape: [count, 1], scalars: values)) : .classes(labels)
    return Samples(inputs: Tensor(shape: [count, layout.inputs], scalars: inputs), targets: targets)
  }

  /// The samples of `path` for the session `spec` (whose data lives in `folder`): a `.json`
  /// file holds a data object of the format (its paths relative to the file), anything else is
  /// a CSV in the session's layout. Inputs are standardised with `standardization` (the
  /// training part's) when the session's data is.
  public static func load(_ path: String, spec: SessionSpec, classNames: [String]?, standardization: Standardization?) throws(DataError)
    -> Samples
  {
    let bytes = try DatasetLoader.read(path)
    guard let text = String(validating: bytes, as: UTF8.self), !bytes.contains(0) else {
      throw .unreadable(path: path, reason: "the file is not UTF-8 text")
    }
    var samples: Samples
    if path.hasSuffix(".json") {
      let json: JSONValue
      do { json = try JSONParser.parse(bytes) } catch { throw .mismatch("\(path): \(error)") }
      let data: DataSpec
      do { data = try SpecParts.data(json) } catch {
        throw .mismatch("\(path): " + error.issues.map(\.description).joined(separator: "; "))
      }
      let dataset = try DatasetLoader.load(DataSpec(source: data.source), relativeTo: PathText.folder(path))
      guard dataset.inputs.rowWidth == spec.model.input.reduce(1, *) else {
        throw .mismatch("\(path): its samples have shape \(dataset.shape.input), but the model takes \(spec.model.input)")
      }
      if case .classes(let labels) = dataset.targets, let bad = labels.max(), bad >= classCount(of: spec) {
        throw .mismatch("\(path): its samples have class \(bad), but the model tells \(classCount(of: spec)) classes apart")
      }
      // Predictions are made in memory, so a mapped file's samples must fit there.
      guard dataset.inputs.bytesInMemory <= MemoryBudget.limit else {
        throw .mismatch(
          "\(path): its samples need \(ByteCount.text(dataset.inputs.bytesInMemory)) as float32, more than the \(ByteCount.text(MemoryBudget.limit)) allowed (\(MemoryBudget.limitSource)); predict on fewer samples at a time"
        )
      }
      samples = Samples(inputs: dataset.inputs.materialized(), targets: dataset.targets)
    } else {
      samples = try csv(text: text, path: path, layout: layout(for: spec, classNames: classNames))
    }
    if let standardization { samples.inputs = standardization.apply(to: samples.inputs) }
    samples.inputs = samples.inputs.reshaped([samples.inputs.rows] + spec.model.input)
    return samples
  }
}
