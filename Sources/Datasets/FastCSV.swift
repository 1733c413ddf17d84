import Dispatch
import Foundation
import SpecKit
import Synchronization
import TensorCore

/// The CSV reader for files of any size: the rules and messages of `CSVData` (the
/// straightforward reader, which stays the definition), at the speed of the bytes.
///
/// - The file is read in blocks (`pread`, 1 MiB), never whole: memory is the arrays it makes.
/// - Two passes, each split over the cores at line boundaries: the first counts the rows of each
///   part, so the second parses every part straight into its rows of the final float32 array.
/// - Numbers are parsed from the bytes, with no `String` per field: `-?digits(.digits)?(e±digits)?`
///   with at most 19 digits whose value fits float32's exact range is one correctly rounded
///   operation; any other spelling goes through `Float(String)`, as in `CSVData`.
/// - Quoted fields are read as `CSVData` reads them (a `"` at a field's start, `""` inside).
/// - Text outside ASCII (labels, names) it reads when `CSVData`, reading Characters, sees the
///   same fields (`plainScalar`).
/// - Files it does not read this way — other text outside ASCII (whitespace or line ends of other
///   scripts, marks that join a delimiter, bytes that are not UTF-8), NUL, a lone
///   carriage return, vertical tab or form feed, a quote that is not closed, a delimiter that is
///   not one ASCII byte, fewer than two columns, no data row — it leaves to `CSVData` (`nil`), which reads them,
///   or says what is wrong, as it always has. Every error it reports itself (a ragged row, text in
///   a number, a regression target that is not a number) is the one `CSVData` reports, at the
///   same line and column, and the first in the same order.
enum FastCSV {
  static let blockSize = 1 << 20

  /// What interrupts a load (Ctrl-C), and what it is told as it goes (bytes done, of total).
  struct Progress: Sendable {
    var report: (@Sendable (Int, Int) -> Void)?
    var isCancelled: @Sendable () -> Bool = { false }
  }

  /// Why a part stopped early.
  enum Stop: Error {
    /// Not a file for this reader: `CSVData` reads it.
    case fallBack
    case error(DataError)
    case cancelled
  }

  /// - Parameter parts: how many parts to split the file into (tests split small files); by
  ///   default one per core, each at least 4 MiB.
  static func load(
    _ file: OpenFile, source: DataSource.CSVSource, path: String, progress: Progress = Progress(), parts wanted: Int? = nil
  ) throws(DataError) -> (
    Dataset, classNames: [String]?
  )? {
    guard let delimiter = source.delimiter.asciiValue, delimiter != UInt8(ascii: "\""), delimiter != 10, delimiter != 13,
      file.size > 0
    else { return nil }
    // The first non-blank line: the header, or the first row.
    guard let first = try firstLine(file, delimiter: delimiter) else { return nil }
    let width: Int
    var names: [String]?
    guard let firstFields = splitFields(first.bytes, delimiter: delimiter) else { return nil }
    if source.header {
      names = firstFields.map { String(decoding: $0, as: UTF8.self) }
      width = names!.count
    } else {
      width = firstFields.count
    }
    guard width >= 2 else { return nil }
    // (A target the header lacks is reported after the lines are looked at: CSVData reports an
    // unclosed quote anywhere first.)
    let targetColumn = Result { () throws(DataError) in try CSVData.targetColumn(source, names: names, width: width, path: path) }
    let dataStart = source.header ? first.end : first.start
    let firstLine = source.header ? first.line + 1 : first.line

    let parts = try split(
      file, from: dataStart, into: wanted ?? max(1, min(ProcessInfo.processInfo.activeProcessorCount, file.size / (4 << 20))))
    let total = file.size - dataStart
    let done = Counter()
    let report = { @Sendable (bytes: Int) in
      guard let report = progress.report else { return }
      report(done.add(bytes), total)
    }
    // Pass 1: each part's lines and rows (or why it stopped).
    var counts = [Result<Census, Stop>](repeating: .success(Census()), count: parts.count)
    counts.withUnsafeMutableBufferPointer { out in
      let out = UncheckedBuffer(out)
      DispatchQueue.concurrentPerform(iterations: parts.count) { i in
        out[i] = Result { () throws(Stop) in try FastCSV.count(file, parts[i], delimiter: delimiter, progress: progress, report: report) }
      }
    }
    var census: [Census] = []
    for count in counts {
      switch count {
      case .success(let part): census.append(part)
      case .failure(.fallBack): return nil
      case .failure(.cancelled): throw .interrupted(path: path)
      case .failure(.error(let error)): throw error
      }
    }
    let rows = census.reduce(0) { $0 + $1.rows }
    guard rows > 0 else { return nil }
    let target: Int
    switch targetColumn {
    case .success(let column): target = column
    case .failure(let error):
      if census.contains(where: \.quotes) { return nil }
      throw error
    }
    let features = width - 1
    let (count, overflow) = rows.multipliedReportingOverflow(by: features)
    guard !overflow, count <= MemoryBudget.limit / 4 else {
      throw .mismatch(
        "\(path): \(rows) rows of \(features) inputs need more than the \(ByteCount.text(MemoryBudget.limit)) allowed (\(MemoryBudget.limitSource))"
      )
    }

    // Pass 2: every part parses its rows into their place.
    var lineStart = [firstLine]
    var rowStart = [0]
    for c in census.dropLast() {
      lineStart.append(lineStart.last! + c.lines)
      rowStart.append(rowStart.last! + c.rows)
    }
    let (starts, lines, counted, header) = (rowStart, lineStart, census, names)
    var results = [PartResult](repeating: PartResult(), count: parts.count)
    let classification = source.task == .classification
    var labels = [Int32](repeating: 0, count: classification ? rows : 0)
    var targets = [Float](repeating: 0, count: classification ? 0 : rows)
    let inputs = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
      let inputs = UncheckedBuffer(buffer)
      labels.withUnsafeMutableBufferPointer { labelBuffer in
        targets.withUnsafeMutableBufferPointer { targetBuffer in
          results.withUnsafeMutableBufferPointer { resultBuffer in
            let (labelOut, targetOut, resultOut) = (
              UncheckedBuffer(labelBuffer), UncheckedBuffer(targetBuffer), UncheckedBuffer(resultBuffer)
            )
            DispatchQueue.concurrentPerform(iterations: parts.count) { i in
              var parser = RowParser(
                delimiter: delimiter, width: width, target: target, features: features, classification: classification,
                inputs: inputs.base, labels: labelOut.base, targets: targetOut.base, row: starts[i],
                rowEnd: starts[i] + counted[i].rows, line: lines[i], names: header, path: path, source: source)
              do throws(Stop) {
                try parser.parse(file, parts[i], progress: progress, report: report)
                if parser.row != parser.rowEnd { throw Stop.error(changed(path)) }
              } catch {
                parser.result.stop = error
              }
              resultOut[i] = parser.result
            }
          }
        }
      }
      initialized = count
    }
    // The first error in the file's order: a row's width or an input first (CSVData checks those
    // row by row), then a regression target (checked after all rows). But CSVData splits every
    // line into fields before it checks one, so a quote not closed anywhere is its first error:
    // a file with quotes and an error is left to it.
    if results.contains(where: { if case .cancelled? = $0.stop { true } else { false } }) { throw .interrupted(path: path) }
    let failed = results.contains { $0.stop != nil || $0.badTarget != nil }
    if failed && census.contains(where: \.quotes) { return nil }
    for result in results {
      switch result.stop {
      case .fallBack?: return nil
      case .cancelled?: throw .interrupted(path: path)
      case .error(let error)?: throw error
      case nil: continue
      }
    }
    if let bad = results.lazy.compactMap(\.badTarget).first {
      throw CSVData.badTarget(bad.text, path: path, line: bad.line, column: target)
    }
    let inputTensor = Tensor(shape: [rows, features], scalars: inputs)
    if !classification {
      return (
        Dataset(
          inputs: inputTensor, targets: .values(Tensor(shape: [rows, 1], scalars: targets)),
          shape: DataShape(input: [features], target: .values(width: 1)), standardizesInputs: source.normalize), nil
      )
    }
    let classes = try CSVData.classNames(Set(results.flatMap(\.classTexts)), path: path)
    let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
    var final = [Int](repeating: 0, count: rows)
    for (i, result) in results.enumerated() {
      let map = result.classTexts.map { index[$0]! }
      let end = i + 1 < rowStart.count ? rowStart[i + 1] : rows
      for row in rowStart[i]..<end { final[row] = map[Int(labels[row])] }
    }
    return (
      Dataset(
        inputs: inputTensor, targets: .classes(final), shape: DataShape(input: [features], target: .classes(classes.count)),
        standardizesInputs: source.normalize),
      classes
    )
  }

  // MARK: - Lines and parts

  /// The first line with anything but spaces and tabs: its bytes (without the line end), its
  /// number, where it starts and where the next line starts. Nil when there is none, or when
  /// the bytes before it are not for this reader.
  static func firstLine(_ file: OpenFile, delimiter: UInt8) throws(DataError) -> (bytes: [UInt8], line: Int, start: Int, end: Int)? {
    var buffer = [UInt8](repeating: 0, count: min(file.size, 64 << 10))
    // A UTF-8 byte order mark before the first line is not data (as `CSVData` reads it).
    var mark = [UInt8](repeating: 0, count: min(file.size, 3))
    let origin = try read(file, into: &mark, at: 0) == 3 && mark == [0xEF, 0xBB, 0xBF] ? 3 : 0
    var offset = origin
    var line = 1
    var lineStart = origin
    var current: [UInt8] = []
    func finished(_ end: Int) -> (bytes: [UInt8], line: Int, start: Int, end: Int)?? {
      var bytes = current
      if bytes.last == 13 { bytes.removeLast() }
      if bytes.contains(13) || !isPlainText(bytes, delimiter: delimiter) { return .some(nil) }
      return isBlank(bytes[...]) ? nil : .some((bytes, line, lineStart, end))
    }
    while offset < file.size {
      let n = try read(file, into: &buffer, at: offset)
      guard n > 0 else { break }
      for i in 0..<n {
        let byte = buffer[i]
        guard isPlain(byte) || byte >= 0x80 else { return nil }
        if byte == 10 {
          if let found = finished(offset + i + 1) { return found }
          current = []
          line += 1
          lineStart = offset + i + 1
        } else {
          current.append(byte)
          guard current.count <= 64 << 20 else { return nil }
        }
      }
      offset += n
    }
    return finished(file.size) ?? nil
  }

  /// Reads from `offset` into the start of `buffer` (`count` bytes, or as many as it holds).
  static func read(_ file: OpenFile, into buffer: inout [UInt8], at offset: Int, count: Int? = nil) throws(DataError) -> Int {
    let n = buffer.withUnsafeMutableBytes { raw in
      Result { () throws(SpecError) -> Int in
        try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[..<min(raw.count, count ?? raw.count)]), at: offset)
      }
    }
    switch n {
    case .success(let count): return count
    case .failure(let error): throw .unreadable(path: file.path, reason: error.reason ?? error.description)
    }
  }

  /// Bytes this reader handles: ASCII, not NUL, not a vertical tab or form feed (which
  /// `CSVData`, reading Characters, takes as line ends).
  @inline(__always) static func isPlain(_ byte: UInt8) -> Bool {
    byte != 0 && byte < 0x80 && byte != 0x0B && byte != 0x0C
  }

  @inline(__always) static func isSpace(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 }

  /// The length of the scalar outside ASCII that starts at `bytes[i]` when `CSVData`, reading
  /// Characters, sees what this reader sees byte by byte; nil when it may not (the file is then
  /// `CSVData`'s); 0 when the bytes end inside it or before the byte after it (`isLast` false:
  /// more are to come). It is seen the same when it is valid UTF-8; is not whitespace or a line
  /// end (`CSVData` trims, skips and splits on those, of every script); and, next to a delimiter, a
  /// quote, a space or a tab, is a Character of its own, so that it neither joins the one before
  /// (a combining accent after a comma) nor takes the one after (a prepended mark before it).
  static func plainScalar(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int, delimiter: UInt8, isLast: Bool) -> Int? {
    let lead = bytes[i]
    let (length, low, high): (Int, UInt8, UInt8) =
      switch lead {
      case 0xC2...0xDF: (2, 0x80, 0xBF)
      case 0xE0: (3, 0xA0, 0xBF)
      case 0xED: (3, 0x80, 0x9F)
      case 0xE1...0xEF: (3, 0x80, 0xBF)
      case 0xF0: (4, 0x90, 0xBF)
      case 0xF1...0xF3: (4, 0x80, 0xBF)
      case 0xF4: (4, 0x80, 0x8F)
      default: (0, 0, 0)
      }
    guard length > 0 else { return nil }
    guard i + length < bytes.count || (isLast && i + length == bytes.count) else { return i + length > bytes.count && isLast ? nil : 0 }
    guard low...high ~= bytes[i + 1], (2..<length).allSatisfy({ 0x80...0xBF ~= bytes[i + $0] }) else { return nil }
    var value = UInt32(lead) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
    for k in 1..<length { value = value << 6 | UInt32(bytes[i + k] & 0x3F) }
    guard let scalar = Unicode.Scalar(value) else { return nil }
    let character = Character(scalar)
    // (White_Space holds every line end and every space separator, so this is also what
    // CSVData's `isNewline` and `CharacterSet.whitespaces` see.)
    guard !character.isWhitespace else { return nil }
    func structural(_ byte: UInt8) -> Bool { byte == delimiter || byte == UInt8(ascii: "\"") || isSpace(byte) }
    if i > 0, bytes[i - 1] < 0x80, structural(bytes[i - 1]) {
      guard (String(UnicodeScalar(bytes[i - 1])) + String(character)).count == 2 else { return nil }
    }
    if i + length < bytes.count, bytes[i + length] < 0x80, structural(bytes[i + length]) {
      guard (String(character) + String(UnicodeScalar(bytes[i + length]))).count == 2 else { return nil }
    }
    return length
  }

  /// Whether a whole line's bytes are all this reader's to read (`plainScalar` for those
  /// outside ASCII).
  static func isPlainText(_ line: [UInt8], delimiter: UInt8) -> Bool {
    line.withUnsafeBufferPointer { bytes in
      var i = 0
      while i < bytes.count {
        if bytes[i] < 0x80 {
          i += 1
          continue
        }
        guard let length = plainScalar(bytes, at: i, delimiter: delimiter, isLast: true), length > 0 else { return false }
        i += length
      }
      return true
    }
  }

  static func isBlank(_ bytes: ArraySlice<UInt8>) -> Bool { bytes.allSatisfy(isSpace) }

  /// A line's fields as `CSVData.fields` reads them, each without its spaces and tabs at either
  /// end; nil when a quoted field is not closed (CSVData says so).
  static func splitFields(_ line: [UInt8], delimiter: UInt8) -> [[UInt8]]? {
    var fields: [[UInt8]] = []
    var scratch: [UInt8] = []
    let ok = line.withUnsafeBufferPointer { buffer -> Bool in
      guard let base = buffer.baseAddress else {
        fields = [[]]
        return true
      }
      var start = 0
      while true {
        guard let next = field(base, from: start, to: buffer.count, delimiter: delimiter, into: &scratch) else { return false }
        fields.append(scratch)
        guard next < buffer.count else { return true }
        start = next + 1
      }
    }
    return ok ? fields : nil
  }

  /// The field that starts at `start`, as `CSVData.fields` reads it — a `"` at its start (after
  /// spaces) opens a quoted part in which `""` is a quote and the next `"` closes it; everything
  /// else is itself — and then trimmed of spaces and tabs, into `out`. Returns where the field
  /// ends (the delimiter or `end`); nil when a quote is not closed.
  static func field(_ base: UnsafePointer<UInt8>, from start: Int, to end: Int, delimiter: UInt8, into out: inout [UInt8]) -> Int? {
    out.removeAll(keepingCapacity: true)
    var i = start
    var atFieldStart = true
    var quoted = false
    while i < end {
      let byte = base[i]
      if quoted {
        if byte == UInt8(ascii: "\"") {
          if i + 1 < end && base[i + 1] == UInt8(ascii: "\"") {
            out.append(byte)
            i += 1
          } else {
            quoted = false
          }
        } else {
          out.append(byte)
        }
      } else if byte == UInt8(ascii: "\"") && atFieldStart {
        quoted = true
        atFieldStart = false
      } else if byte == delimiter {
        break
      } else {
        out.append(byte)
        if !isSpace(byte) { atFieldStart = false }
      }
      i += 1
    }
    if quoted { return nil }
    var a = 0
    var b = out.count
    while a < b && isSpace(out[a]) { a += 1 }
    while b > a && isSpace(out[b - 1]) { b -= 1 }
    if a > 0 || b < out.count { out = Array(out[a..<b]) }
    return i
  }

  /// `count` parts of the bytes from `start` to the end, each starting at a line's start.
  static func split(_ file: OpenFile, from start: Int, into count: Int) throws(DataError) -> [Range<Int>] {
    var bounds = [start]
    var window = [UInt8](repeating: 0, count: 64 << 10)
    for k in 1..<max(count, 1) {
      var offset = max(bounds.last!, start + (file.size - start) * k / count)
      var found: Int?
      while found == nil, offset < file.size {
        let n = try read(file, into: &window, at: offset)
        guard n > 0 else { break }
        if let i = window[..<n].firstIndex(of: 10) { found = offset + i + 1 } else { offset += n }
      }
      guard let boundary = found, boundary < file.size else { break }
      bounds.append(boundary)
    }
    bounds.append(file.size)
    return zip(bounds, bounds.dropFirst()).map { $0..<$1 }
  }

  struct Census {
    /// Line ends in the part (each `\n`), and lines with data.
    var lines = 0
    var rows = 0
    /// Whether the part holds a quote.
    var quotes = false
  }

  /// Calls `body` with each block of `part` that ends at a line end (the last may not), the
  /// block's bytes in a buffer whose first `carried` bytes are the unfinished line of the block
  /// before.
  static func blocks(
    _ file: OpenFile, _ part: Range<Int>, progress: Progress, report: @Sendable (Int) -> Void,
    _ body: (UnsafeBufferPointer<UInt8>, _ isLast: Bool) throws(Stop) -> Int
  ) throws(Stop) {
    var capacity = blockSize * 2
    var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 64)
    defer { buffer.deallocate() }
    var carried = 0
    var offset = part.lowerBound
    while true {
      if progress.isCancelled() { throw .cancelled }
      if carried + blockSize > capacity {
        // A line longer than a block: room for it.
        capacity *= 2
        let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 64)
        larger.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[..<carried]))
        buffer.deallocate()
        buffer = larger
      }
      let want = min(blockSize, part.upperBound - offset)
      var n = 0
      if want > 0 {
        do { n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[carried..<carried + want]), at: offset) } catch {
          throw .error(.unreadable(path: file.path, reason: error.reason ?? error.description))
        }
      }
      offset += n
      // The part's end, or the file's (a file that shrank while read ends here).
      let isLast = offset >= part.upperBound || n < want
      let filled = carried + n
      let used = try body(UnsafeBufferPointer(start: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), count: filled), isLast)
      report(n)
      if isLast { return }
      carried = filled - used
      if carried > 0 && used > 0 { buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + used, byteCount: carried) }
    }
  }

  /// Pass 1 over a part: its lines and rows, or `fallBack` at the first byte this reader leaves
  /// to `CSVData`.
  static func count(_ file: OpenFile, _ part: Range<Int>, delimiter: UInt8, progress: Progress, report: @Sendable (Int) -> Void)
    throws(Stop) -> Census
  {
    var census = Census()
    // Counted on the first pass, reported on both: halve what is reported.
    let half: @Sendable (Int) -> Void = { report($0 / 2) }
    try blocks(file, part, progress: progress, report: half) { (bytes, isLast) throws(Stop) -> Int in
      var lineStart = 0
      var i = 0
      let n = bytes.count
      // One look at each byte: whether the line so far holds data (anything but spaces, tabs and
      // the carriage return of a CRLF), and the bytes this reader leaves to CSVData.
      var hasData = false
      while i < n {
        let byte = bytes[i]
        if byte == 10 {
          if hasData { census.rows += 1 }
          census.lines += 1
          hasData = false
          lineStart = i + 1
        } else if byte == 13 {
          // A carriage return anywhere but before the line end is a line end of its own to
          // CSVData. (At the end of a block the line is looked at again with the next one; at
          // the end of the file it ends the last line.)
          if i + 1 < n && bytes[i + 1] != 10 { throw .fallBack }
        } else if byte >= 0x80 {
          // Text outside ASCII (a label, a name): read here when CSVData reads it the same way.
          guard let length = plainScalar(bytes, at: i, delimiter: delimiter, isLast: isLast) else { throw .fallBack }
          // Cut off at the block's end: the line is looked at again with the next block.
          if length == 0 { return lineStart }
          hasData = true
          i += length
          continue
        } else if !isPlain(byte) {
          throw .fallBack
        } else if !isSpace(byte) {
          hasData = true
          if byte == UInt8(ascii: "\"") { census.quotes = true }
        }
        i += 1
      }
      if isLast && lineStart < n {
        if hasData { census.rows += 1 }
        return n
      }
      return lineStart
    }
    return census
  }

  // MARK: - Pass 2

  struct PartResult {
    var stop: Stop?
    /// The first regression target that is not a number (reported when no input is wrong).
    var badTarget: (line: Int, text: String)?
    /// The part's distinct class texts, in the order of its local labels.
    var classTexts: [String] = []
  }

  struct RowParser {
    let delimiter: UInt8
    let width: Int
    let target: Int
    let features: Int
    let classification: Bool
    let inputs: UnsafeMutablePointer<Float>
    let labels: UnsafeMutablePointer<Int32>
    let targets: UnsafeMutablePointer<Float>
    var row: Int
    /// The first row of the next part: never written (a file that grew between the passes).
    let rowEnd: Int
    var line: Int
    let names: [String]?
    let path: String
    let source: DataSource.CSVSource
    var result = PartResult()
    /// Class texts of up to 7 bytes packed in a word (with their length), longer ones by bytes.
    var shortClasses: [UInt64: Int32] = [:]
    var longClasses: [[UInt8]: Int32] = [:]
    /// A quoted field's text.
    var scratch: [UInt8] = []

    mutating func parse(_ file: OpenFile, _ part: Range<Int>, progress: Progress, report: @Sendable (Int) -> Void) throws(Stop) {
      let secondHalf: @Sendable (Int) -> Void = { report($0 - $0 / 2) }
      try FastCSV.blocks(file, part, progress: progress, report: secondHalf) { (bytes, isLast) throws(Stop) -> Int in
        var lineStart = 0
        let n = bytes.count
        let base = bytes.baseAddress!
        while true {
          // The next line end (memchr is vectorised).
          let rest = n - lineStart
          guard rest > 0 else { return lineStart }
          let found = memchr(base + lineStart, 10, rest)
          let end: Int
          if let found {
            end = UnsafePointer(found.assumingMemoryBound(to: UInt8.self)) - base
          } else {
            guard isLast else { return lineStart }
            end = n
          }
          try parseLine(base, lineStart, end)
          line += 1
          lineStart = end + 1
          if found == nil { return n }
        }
      }
    }

    @inline(__always) mutating func parseLine(_ base: UnsafePointer<UInt8>, _ start: Int, _ lineEnd: Int) throws(Stop) {
      var end = lineEnd
      if end > start && base[end - 1] == 13 { end -= 1 }
      var i = start
      while i < end && FastCSV.isSpace(base[i]) { i += 1 }
      guard i < end else { return }  // a blank line
      guard row < rowEnd else { throw .error(FastCSV.changed(path)) }
      var column = 0
      var fieldStart = start
      var badInput: (column: Int, text: String)?
      let out = inputs + row * features
      while true {
        var fieldEnd = fieldStart
        while fieldEnd < end && base[fieldEnd] != delimiter && base[fieldEnd] != UInt8(ascii: "\"") { fieldEnd += 1 }
        if fieldEnd < end && base[fieldEnd] == UInt8(ascii: "\"") {
          // A quote: the field as CSVData reads it (a quoted part may hold the delimiter).
          guard let quotedEnd = FastCSV.field(base, from: fieldStart, to: end, delimiter: delimiter, into: &scratch) else {
            throw .fallBack  // not closed: CSVData says where
          }
          if column < width {
            let text = scratch
            text.withUnsafeBufferPointer {
              take($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count, column: column, out: out, badInput: &badInput)
            }
          }
          column += 1
          guard quotedEnd < end else { break }
          fieldStart = quotedEnd + 1
          continue
        }
        if column < width {
          var a = fieldStart
          var b = fieldEnd
          while a < b && FastCSV.isSpace(base[a]) { a += 1 }
          while b > a && FastCSV.isSpace(base[b - 1]) { b -= 1 }
          take(base + a, b - a, column: column, out: out, badInput: &badInput)
        }
        column += 1
        guard fieldEnd < end else { break }
        fieldStart = fieldEnd + 1
      }
      guard column == width else {
        throw .error(CSVData.ragged(path: path, line: line, count: column, width: width, source: source))
      }
      if let bad = badInput {
        do {
          _ = try CSVData.inputValue(bad.text, column: bad.column, names: names, path: path, line: line)
        } catch {
          throw .error(error)
        }
      }
      row += 1
    }

    /// One field's trimmed bytes: the target (a class, or a value), or an input.
    @inline(__always) mutating func take(
      _ p: UnsafePointer<UInt8>, _ n: Int, column: Int, out: UnsafeMutablePointer<Float>, badInput: inout (column: Int, text: String)?
    ) {
      if column == target {
        if classification {
          labels[row] = classLabel(p, n)
        } else if let value = FastCSV.number(p, n) {
          targets[row] = value
        } else if result.badTarget == nil {
          result.badTarget = (line, String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
        }
      } else if let value = FastCSV.number(p, n) {
        out[column < target ? column : column - 1] = value
      } else if badInput == nil {
        badInput = (column, String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
      }
    }

    mutating func classLabel(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32 {
      if n <= 7 {
        var key = UInt64(n) << 56
        for k in 0..<n { key |= UInt64(p[k]) << (8 * UInt64(k)) }
        if let label = shortClasses[key] { return label }
        let label = Int32(result.classTexts.count)
        shortClasses[key] = label
        result.classTexts.append(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
        return label
      }
      let bytes = Array(UnsafeBufferPointer(start: p, count: n))
      if let label = longClasses[bytes] { return label }
      let label = Int32(result.classTexts.count)
      longClasses[bytes] = label
      result.classTexts.append(String(decoding: bytes, as: UTF8.self))
      return label
    }
  }

  /// A file whose rows changed between the two passes.
  static func changed(_ path: String) -> DataError {
    .unreadable(path: path, reason: "it changed while it was read; read it again once it is written")
  }

  // MARK: - Numbers

  /// Exact powers of ten in float32 (5^10 < 2^24).
  static let powers: [Float] = (0...10).map { Float(pow(10.0, Double($0))) }

  /// A field's value as `Float(String)` reads it, when finite; nil otherwise.
  @inline(__always) static func number(_ p: UnsafePointer<UInt8>, _ n: Int) -> Float? {
    if let value = fastNumber(p, n) { return value }
    guard let value = Float(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)), value.isFinite else { return nil }
    return value
  }

  /// `-?digits(.digits)?([eE][+-]?digits)?` whose digits (at most 19) make an integer m ≤ 2^24
  /// and whose power of ten e has |e| ≤ 10: m and 10^|e| are exact in float32, so m·10^e is one
  /// correctly rounded operation, which is what `Float(String)` gives. Nil for anything else.
  @inline(__always) static func fastNumber(_ p: UnsafePointer<UInt8>, _ n: Int) -> Float? {
    var i = 0
    var negative = false
    if i < n && p[i] == UInt8(ascii: "-") {
      negative = true
      i += 1
    }
    var mantissa: UInt64 = 0
    var digits = 0
    var start = i
    while i < n, case let d = p[i] &- 48, d < 10 {
      mantissa = mantissa &* 10 &+ UInt64(d)
      i += 1
    }
    digits = i - start
    guard digits > 0 else { return nil }
    var exponent = 0
    if i < n && p[i] == UInt8(ascii: ".") {
      i += 1
      start = i
      while i < n, case let d = p[i] &- 48, d < 10 {
        mantissa = mantissa &* 10 &+ UInt64(d)
        i += 1
      }
      guard i > start else { return nil }
      exponent = -(i - start)
      digits += i - start
    }
    if i < n && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
      i += 1
      var sign = 1
      if i < n && (p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+")) {
        sign = p[i] == UInt8(ascii: "-") ? -1 : 1
        i += 1
      }
      start = i
      var e = 0
      while i < n, case let d = p[i] &- 48, d < 10, i - start < 4 {
        e = e * 10 + Int(d)
        i += 1
      }
      guard i > start, i == n || p[i] &- 48 >= 10 else { return nil }
      exponent += sign * e
    }
    guard i == n, digits <= 19, mantissa <= 1 << 24, exponent >= -10, exponent <= 10 else { return nil }
    var value = Float(mantissa)
    if exponent > 0 { value *= powers[exponent] } else if exponent < 0 { value /= powers[-exponent] }
    return negative ? -value : value
  }
}

/// A buffer written from several threads, each to its own elements.
struct UncheckedBuffer<Element>: @unchecked Sendable {
  let base: UnsafeMutablePointer<Element>
  init(_ buffer: UnsafeMutableBufferPointer<Element>) { base = buffer.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)! }
  subscript(i: Int) -> Element {
    get { base[i] }
    nonmutating set { base[i] = newValue }
  }
}

/// A running total from several threads.
final class Counter: Sendable {
  private let total = Atomic<Int>(0)
  func add(_ n: Int) -> Int { total.wrappingAdd(n, ordering: .relaxed).newValue }
}
