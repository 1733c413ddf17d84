import Foundation
import SpecKit
import TensorCore

/// Delimited text files: one sample per line, one column the target, the others the inputs.
///
/// Empty lines are skipped; fields may be quoted with `"` (a doubled `""` inside is a quote).
/// Classification targets are mapped to class indices in sorted order of their distinct values
/// — numerically when every value is a number, otherwise by code point — so `"setosa"`,
/// `"versicolor"`, `"virginica"` become 0, 1, 2 and `"1"`, `"2"`, `"10"` become 0, 1, 2.
public enum CSVData {
  public static func load(text: String, source: DataSource.CSVSource, path: String) throws(DataError) -> (Dataset, classNames: [String]?) {
    var rows: [(line: Int, fields: [String])] = []
    // Split on newline Characters: Swift reads "\r\n" as one Character, so this handles LF and CRLF.
    for (number, line) in withoutByteOrderMark(text).split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
      if line.allSatisfy(\.isWhitespace) { continue }
      rows.append((number + 1, try fields(of: line, delimiter: source.delimiter, path: path, line: number + 1)))
    }
    var names: [String]?
    if source.header {
      guard !rows.isEmpty else { throw .csv(path: path, line: 1, column: nil, message: "the file is empty; expected a header line") }
      names = rows.removeFirst().fields.map { $0.trimmingCharacters(in: .whitespaces) }
    }
    guard let first = rows.first else { throw .csv(path: path, line: 1, column: nil, message: "the file has no data rows") }
    let width = names?.count ?? first.fields.count
    guard width >= 2 else {
      throw .csv(path: path, line: first.line, column: nil, message: "needs at least two columns (inputs and a target), found \(width)")
    }
    let target = try targetColumn(source, names: names, width: width, path: path)
    var inputs: [Float] = []
    inputs.reserveCapacity(rows.count * (width - 1))
    var targetCells: [(line: Int, text: String)] = []
    for row in rows {
      guard row.fields.count == width else {
        throw ragged(path: path, line: row.line, count: row.fields.count, width: width, source: source)
      }
      for (column, cell) in row.fields.enumerated() {
        let trimmed = cell.trimmingCharacters(in: .whitespaces)
        if column == target {
          targetCells.append((row.line, trimmed))
          continue
        }
        inputs.append(try inputValue(trimmed, column: column, names: names, path: path, line: row.line))
      }
    }
    let count = rows.count, features = width - 1
    let inputTensor = Tensor(shape: [count, features], scalars: inputs)
    switch source.task {
    case .regression:
      var values: [Float] = []
      for cell in targetCells {
        guard let value = Float(cell.text), value.isFinite else { throw badTarget(cell.text, path: path, line: cell.line, column: target) }
        values.append(value)
      }
      return (
        Dataset(
          inputs: inputTensor, targets: .values(Tensor(shape: [count, 1], scalars: values)),
          shape: DataShape(input: [features], target: .values(width: 1)), standardizesInputs: source.normalize), nil
      )
    case .classification:
      let classes = try classNames(Set(targetCells.map(\.text)), path: path)
      let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
      let labels = targetCells.map { index[$0.text]! }
      return (
        Dataset(
          inputs: inputTensor, targets: .classes(labels), shape: DataShape(input: [features], target: .classes(classes.count)),
          standardizesInputs: source.normalize),
        classes
      )
    }
  }

  /// The text without a leading byte order mark (U+FEFF, which spreadsheets write before UTF-8
  /// text): it marks the encoding and is not part of the first field.
  static func withoutByteOrderMark(_ text: String) -> Substring {
    text.unicodeScalars.first == "\u{FEFF}" ? Substring(text.unicodeScalars.dropFirst()) : text[...]
  }

  /// The target column's index: by number, or by name in the header.
  static func targetColumn(_ source: DataSource.CSVSource, names: [String]?, width: Int, path: String) throws(DataError) -> Int {
    switch source.target {
    case .index(let index):
      guard index < width else {
        throw .mismatch("\(path): data.target is column \(index), but the file has \(width) columns (0 to \(width - 1))")
      }
      return index
    case .name(let name):
      guard let index = names?.firstIndex(of: name) else {
        let hint = Suggestion.nearest(to: name, in: names ?? []).map { " (did you mean \"\(TextExcerpt.short($0))\"?)" } ?? ""
        let header =
          (names ?? []).prefix(20).map { TextExcerpt.short($0) }.joined(separator: ", ") + ((names?.count ?? 0) > 20 ? ", …" : "")
        throw .mismatch("\(path): data.target names column \"\(TextExcerpt.short(name))\", but the header has \(header)\(hint)")
      }
      return index
    }
  }

  /// The class names in label order: sorted numerically when every one is a number, otherwise
  /// by code point; at least two.
  static func classNames(_ distinct: Set<String>, path: String) throws(DataError) -> [String] {
    let numeric = distinct.allSatisfy { Double($0) != nil }
    let classes = distinct.sorted { numeric ? Double($0)! < Double($1)! : JSONWriter.codePointsPrecede($0, $1) }
    guard classes.count >= 2 else {
      throw .mismatch(
        "\(path): the target column has a single value (\(TextExcerpt.short(classes.first ?? ""))); classification needs at least 2 classes"
      )
    }
    return classes
  }

  /// A row whose field count is not the header's (or the first row's).
  static func ragged(path: String, line: Int, count: Int, width: Int, source: DataSource.CSVSource) -> DataError {
    .csv(
      path: path, line: line, column: nil, message: "has \(count) fields, but the \(source.header ? "header" : "first row") has \(width)")
  }

  /// A regression target that is not a finite number.
  static func badTarget(_ text: String, path: String, line: Int, column: Int) -> DataError {
    .csv(
      path: path, line: line, column: column + 1,
      message: "the target must be a finite number for regression, got \(TextExcerpt.quoted(text))")
  }

  /// An input cell's value: a finite number, or an error at its line and column (named by the
  /// header when there is one).
  static func inputValue(_ text: String, column: Int, names: [String]?, path: String, line: Int) throws(DataError) -> Float {
    guard let value = Float(text), value.isFinite else {
      let label = names.map { " (\(TextExcerpt.short($0[column])))" } ?? ""
      throw .csv(
        path: path, line: line, column: column + 1,
        message: "column \(column + 1)\(label) must be a finite number, got \(TextExcerpt.quoted(text))")
    }
    return value
  }

  static func fields(of line: Substring, delimiter: Character, path: String, line number: Int) throws(DataError) -> [String] {
    var fields: [String] = []
    var current = ""
    var quoted = false
    var iterator = line.makeIterator()
    var atFieldStart = true
    while let ch = iterator.next() {
      if quoted {
        if ch == "\"" {
          var lookahead = iterator
          if lookahead.next() == "\"" {
            current.append("\"")
            iterator = lookahead
          } else {
            quoted = false
          }
        } else {
          current.append(ch)
        }
      } else if ch == "\"" && atFieldStart {
        quoted = true
        atFieldStart = false
      } else if ch == delimiter {
        fields.append(current)
        current = ""
        atFieldStart = true
      } else {
        current.append(ch)
        if !ch.isWhitespace { atFieldStart = false }
      }
    }
    if quoted { throw .csv(path: path, line: number, column: fields.count + 1, message: "a quoted field is not closed") }
    fields.append(current)
    return fields
  }
}
