import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Datasets

/// The fast CSV reader against the straightforward one (`CSVData`, the definition of the
/// format's rules): on every file, both give the same arrays bit for bit, or the same error —
/// whatever the file's parts, line ends, spacing, numbers and mistakes.
@Suite("Fast CSV reader")
struct FastCSVTests {
  /// What a reader made of a file: the dataset and class names, or the error's text.
  enum Outcome: Equatable {
    case loaded(inputs: [UInt32], shape: [Int], targets: String, classes: [String]?, standardizes: Bool)
    case failed(String)
    /// The fast reader left the file to CSVData.
    case leftAlone

    init(_ body: () throws(DataError) -> (Dataset, classNames: [String]?)?) {
      do {
        guard let (data, names) = try body() else {
          self = .leftAlone
          return
        }
        let targets: String
        switch data.targets {
        case .classes(let labels): targets = "classes \(labels) of \(data.shape.target)"
        case .values(let tensor): targets = "values \(tensor.shape) \(tensor.scalars.map(\.bitPattern))"
        }
        self = .loaded(
          inputs: data.inputs.scalars.map(\.bitPattern), shape: data.inputs.shape, targets: targets, classes: names,
          standardizes: data.standardizesInputs)
      } catch {
        self = .failed(error.description)
      }
    }
  }

  static func compare(_ bytes: [UInt8], _ source: DataSource.CSVSource, parts: Int?, in folder: String) throws -> (
    fast: Outcome, plain: Outcome
  ) {
    let path = folder + "/data.csv"
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    let fast = Outcome { () throws(DataError) in
      let file: OpenFile
      do { file = try FileAccess.openForReading(path) } catch { throw .unreadable(path: path, reason: "\(error)") }
      return try FastCSV.load(file, source: source, path: path, parts: parts)
    }
    let plain = Outcome { () throws(DataError) in
      guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
      return try CSVData.load(text: text, source: source, path: path)
    }
    return (fast, plain)
  }

  /// The cases the straightforward reader's own tests use, and the awkward files of the issue:
  /// each read through the loader (fast reader, or CSVData when it leaves the file) gives what
  /// CSVData gives.
  @Test(arguments: [
    "a,b,t\n1,2,x\n3,x\n", "a,b,t\n1,2,x\n3,oops,y\n", "a,b,t\n1,2,x\n3,nan,y\n", "a,b,t\n1,2,x\n", "", "a,b,t\n",
    "a,b,t\n1,\"2,x\n", "a,b,t\n1,2,x\n3,4,y", "a,b,t\r\n1,2,x\r\n3,4,y\r\n", "\u{FEFF}a,b,t\n1,2,x\n3,4,y\n", "a,b,t\n1,2,x\n\0,4,y\n",
    "a,b,t\n\"1\",2,x\n3,4,\"y\"\n", "\"a\",\"b\",\"t\"\n1,2,\"x, y\"\n3,4,\"say \"\"hi\"\"\"\n", "a,b,t\n1,2,\"x\n3,4,y\n",
    "a,b,t\n\n  \n1, 2 ,x\n\t\n3,4,y\n\n", "a,b,t\n1,2,x\r3,4,y\n", "a,b,t\n1,2,x\n3,4,y,5\n",
    "a,b,t\n1,2,x\n3,1e39,y\n", "a,b,t\n1,2,x\n3,0x1p3,y\n", "a,b,t\n1,2,x\n3,-0,y\n", "a,b,t\n1,2,x\n3,+4,y\n",
    "a,b,t\n1,2,x\n3,.5,y\n", "a,b,t\n1,2,x\n3,5.,y\n", "a,b,t\n1,2,x\n3,4\u{0B}5,y\n", "a,b,t\n1,2,é\n3,4,y\n",
    // Text outside ASCII that CSVData reads as bytes read it, and text it reads otherwise.
    "a,b,t\n1,2,café\n3,4,cafe\u{301}\n5,6,日本\n", "a,b,t\n1,2,👩\u{200D}💻\n3,4,y\u{200D}\n", "a,b,té\n1,2,x\n3,4,y\n",
    "a,b,t\n1,2,\u{301}x\n3,4,y\n", "a,b,t\n1,2\u{600},x\n3,4,y\n", "a,b,t\n1,2,x\u{A0}\n3,4,y\n", "a,b,t\n1,2,x\u{2028}3,4,y\n",
    "a,b,t\n1,2,x\u{85}3,4,y\n", "a,b,t\n1,2, \u{301}x\n3,4,y\n", "a,b,t\n1,2,\"x\"\u{301}\n3,4,y\n", "a,b,t\n1,\u{3000}2,x\n3,4,y\n",
    "a,b,t\n1,2\u{FEFF},x\n3,4,y\n",
  ])
  func theLoaderAgreesWithTheStraightforwardReader(text: String) throws {
    let folder = temporaryFolder()
    for task in [DataSource.CSVSource.Task.classification, .regression] {
      let source = DataSource.CSVSource(path: "data.csv", target: .name("t"), task: task)
      let path = folder + "/data.csv"
      try Data(text.utf8).write(to: URL(fileURLWithPath: path))
      let loaded = Outcome { () throws(DataError) in
        try DatasetLoader.loadNamed(DataSpec(source: .csv(source)), relativeTo: folder)
      }
      let (_, plain) = try Self.compare(Array(text.utf8), source, parts: nil, in: folder)
      if case .leftAlone = plain {
        // Not UTF-8: the loader says so.
        #expect(loaded == .failed("cannot read data file \(path): the file is not UTF-8 text"))
      } else if case .failed(let message) = plain, text.contains("\0") {
        #expect(loaded == .failed(message) || "\(loaded)".contains("holds a NUL byte"), "\(loaded)")
      } else {
        #expect(loaded == plain, "\(text.debugDescription) as \(task): \(loaded) vs \(plain)")
      }
    }
  }

  /// Text outside ASCII is the fast reader's when CSVData reads it as bytes read it: labels and
  /// names of any script; a mark that joins a delimiter, quote or space, or whitespace and line
  /// ends of other scripts, leave the file to CSVData.
  @Test func textOutsideASCIIIsReadFastWhereCSVDataReadsItTheSame() throws {
    let folder = temporaryFolder()
    let source = DataSource.CSVSource(path: "data.csv", target: .name("t"), task: .classification)
    for text in ["a,b,t\n1,2,café\n3,4,cafe\u{301}\n5,6,日本\n", "\u{FEFF}a,b,t\n1,2,Ωmega\n3,4,y\n", "a,b,t\n1,2,x😀\n3,4,y\n"] {
      let (fast, plain) = try Self.compare(Array(text.utf8), source, parts: nil, in: folder)
      guard case .loaded = fast else {
        Issue.record("\(text.debugDescription) loads (a byte order mark is not part of the first name): \(fast)")
        continue
      }
      #expect(fast == plain, "\(text.debugDescription): \(fast) vs \(plain)")
    }
    // "é" and "e" + U+0301 are one class to CSVData (Swift's strings compare canonically): so too here.
    let (canonical, _) = try Self.compare(Array("a,b,t\n1,2,café\n3,4,cafe\u{301}\n5,6,x\n".utf8), source, parts: 2, in: folder)
    guard case .loaded(_, _, let targets, let classes, _) = canonical else { throw TestFailure("\(canonical)") }
    #expect(targets.hasPrefix("classes [0, 0, 1]") && classes == ["café", "x"], "\(targets) \(String(describing: classes))")
    for text in [
      "a,b,t\n1,2,\u{301}x\n3,4,y\n", "a,b,t\n1,2\u{600},x\n3,4,y\n", "a,b,t\n1,2,x\u{A0}\n3,4,y\n", "a,b,t\n1,2,x\u{2028}3,4,y\n",
      "a,b,t\n1,2, \u{301}x\n3,4,y\n", "a,b,t\n1,2,\"x\"\u{301}\n3,4,y\n",
    ] {
      #expect(try Self.compare(Array(text.utf8), source, parts: nil, in: folder).fast == .leftAlone, "\(text.debugDescription)")
    }
    for bytes: [UInt8] in [[0x61, 0x2C, 0x62, 0x0A, 0xC3], [0x61, 0x2C, 0xC0, 0xAF, 0x0A], [0x61, 0x2C, 0xED, 0xA0, 0x80, 0x0A]] {
      #expect(try Self.compare(bytes, source, parts: nil, in: folder).fast == .leftAlone, "not UTF-8: \(bytes)")
    }
  }

  /// 400 random files — header or not, LF or CRLF, blank lines, spaces and tabs around fields,
  /// every spelling of a number (and some that are not), ragged rows, several delimiters, targets
  /// by name and index, both tasks — split into 1 to 5 parts: the same arrays or the same error.
  @Test func randomFilesReadTheSameInAnyNumberOfParts() throws {
    let folder = temporaryFolder()
    var generator = SplitMix64(seed: 23, stream: "fast-csv")
    func pick<T>(_ values: [T]) -> T { values[Int(generator.next() % UInt64(values.count))] }
    func chance(_ p: Double) -> Bool { Double(generator.next() % 10_000) / 10_000 < p }
    let numbers = [
      "0", "1", "-1", "42", "255", "3.5", "-0.25", "1e3", "2.5E-4", "1e-12", "7e10", "123456789", "16777217", "0.1", "-0",
      "0.30000001", "9999999999999999999", "12345678901234567890", "1.17549435e-38", "3.4e38", "5e-324", "00012", "1.000",
    ]
    let odd = ["+4", ".5", "5.", "0x1p3", "inf", "nan", "1e39", "abc", "", "1e", "--1", "1.2.3", "1e+5", "1E-05"]
    // Text outside ASCII: labels and names of other scripts, canonically equal spellings
    // ("é" and "e" + U+0301), and scalars CSVData reads differently from bytes: whitespace and
    // line ends of other scripts, marks that join the character before (U+0301, ZWJ), a mark
    // that joins the one after (U+0600), a byte order mark inside.
    let words = ["café", "cafe\u{301}", "日本", "😀", "naïve", "Ωmega", "👩\u{200D}💻", "ß"]
    let awkward = ["\u{301}", "\u{A0}", "\u{2028}", "\u{85}", "\u{600}", "\u{200D}", "\u{3000}", "\u{FEFF}", "\u{2009}"]
    var fastPaths = 0
    var quotedFastPaths = 0
    var textFastPaths = 0
    for trial in 0..<400 {
      let header = chance(0.7)
      let crlf = chance(0.3)
      let delimiter: Character = pick([",", ",", ";", "\t", " "])
      let width = 2 + Int(generator.next() % 5)
      let rows = 1 + Int(generator.next() % 12)
      let task: DataSource.CSVSource.Task = chance(0.5) ? .classification : .regression
      let targetIndex = Int(generator.next() % UInt64(width))
      var lines: [String] = []
      let names = (0..<width).map { chance(0.1) ? "c\($0)" + pick(words) : "c\($0)" }
      if header { lines.append(names.map { chance(0.2) ? "\"\($0)\"" : $0 }.joined(separator: String(delimiter))) }
      for _ in 0..<rows {
        if chance(0.1) { lines.append(pick(["", "  ", "\t"])) }
        var count = width
        if chance(0.03) { count += pick([-1, 1]) }
        let fields = (0..<max(1, count)).map { column -> String in
          var text: String
          if column == targetIndex && task == .classification {
            text = chance(0.3) ? pick(words) : pick(["a", "b", "cat", "dog", "1", "2", "10", "a-very-long-class-name"])
          } else {
            text = chance(0.02) ? pick(odd) : pick(numbers)
          }
          // Quoted as R and spreadsheets write them: the delimiter and doubled quotes inside,
          // spaces inside and around, text after the closing quote, now and then not closed.
          if chance(0.12) {
            let inside = chance(0.3) ? pick([text + String(delimiter) + "x", "say \"\"\(text)\"\"", " \(text) "]) : text
            text = "\"" + inside + (chance(0.03) ? "" : "\"") + (chance(0.05) ? pick(["z", "\"q"]) : "")
          }
          if delimiter != " " && delimiter != "\t" && chance(0.15) { text = pick([" ", "\t", "  "]) + text + pick(["", " ", "\t"]) }
          if chance(0.004) { text = chance(0.5) ? pick(awkward) + text : text + pick(awkward) }
          return text
        }
        lines.append(fields.joined(separator: String(delimiter)))
      }
      var text = lines.joined(separator: crlf ? "\r\n" : "\n")
      if chance(0.7) { text += crlf ? "\r\n" : "\n" }
      if chance(0.1) { text = "\u{FEFF}" + text }
      var bytes = Array(text.utf8)
      // Now and then bytes that are not UTF-8: a stray continuation, a cut sequence, an overlong
      // encoding, a surrogate.
      if chance(0.03) {
        let at = Int(generator.next() % UInt64(bytes.count + 1))
        bytes.insert(contentsOf: pick([[0x80], [0xC3], [0xE6, 0x97], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xFF]]), at: at)
      }
      let source = DataSource.CSVSource(
        path: "data.csv", target: header && chance(0.5) ? .name(names[targetIndex]) : .index(targetIndex), header: header,
        delimiter: delimiter, task: task)
      for parts in [1, 2, 5] {
        let (fast, plain) = try Self.compare(bytes, source, parts: parts, in: folder)
        if fast == .leftAlone { continue }
        if parts == 1 {
          fastPaths += 1
          if text.contains("\"") { quotedFastPaths += 1 }
          if bytes.contains(where: { $0 >= 0x80 }) { textFastPaths += 1 }
        }
        #expect(fast == plain, "trial \(trial), \(parts) parts, \(text.debugDescription): \(fast) vs \(plain)")
      }
    }
    // Most files are the fast reader's own, quoted ones too (the rest are left to CSVData: too
    // few columns, no rows, or quotes and an error, which CSVData orders its own way).
    print("fast CSV reader: \(fastPaths) of 400 files, \(quotedFastPaths) with quotes, \(textFastPaths) with text outside ASCII")
    #expect(
      fastPaths > 150 && quotedFastPaths > 40 && textFastPaths > 30,
      "\(fastPaths), \(quotedFastPaths) with quotes, \(textFastPaths) with text outside ASCII")
  }

  /// A file of several MiB, read in two parts of many blocks each (a long line crossing a block
  /// boundary included): the same arrays as CSVData.
  @Test func aLargeFileReadsTheSameInBlocksAndParts() throws {
    let folder = temporaryFolder()
    var generator = SplitMix64(seed: 5, stream: "large-csv")
    var text = "label," + (0..<200).map { "p\($0)" }.joined(separator: ",") + "\n"
    for row in 0..<3_000 {
      text += "\(row % 10)," + (0..<200).map { _ in String(generator.next() % 256) }.joined(separator: ",") + "\n"
    }
    // One line longer than a block.
    text += "3," + (0..<200).map { _ in String(repeating: "0", count: 6_000) + "7" }.joined(separator: ",") + "\n"
    let source = DataSource.CSVSource(path: "data.csv", target: .name("label"), task: .classification)
    for parts in [nil, 2, 3] {
      let (fast, plain) = try Self.compare(Array(text.utf8), source, parts: parts, in: folder)
      #expect(fast != .leftAlone)
      #expect(fast == plain)
    }
  }

  /// A CRLF whose carriage return is the last byte of a block (and a lone one there): read as
  /// CSVData reads them, not mistaken for a line end of its own, nor let through.
  @Test func aCarriageReturnAtABlocksEndIsLookedAtWithTheNextBlock() throws {
    let folder = temporaryFolder()
    let header = "label,a\r\n"
    // The first row's carriage return falls on byte blockSize − 1 of the data's first block.
    let long = "1," + String(repeating: "0", count: FastCSV.blockSize - 4) + "5"
    let source = DataSource.CSVSource(path: "data.csv", target: .name("label"), task: .classification)
    for ending in ["\r\n", "\rx\n"] {
      let text = header + long + ending + "2,3\r\n0,4\r\n"
      let (fast, plain) = try Self.compare(Array(text.utf8), source, parts: 1, in: folder)
      // The CRLF is the fast reader's, with CSVData's arrays; the lone one is left to CSVData.
      #expect((fast == .leftAlone) == (ending == "\rx\n"), "\(ending.debugDescription): \(fast)")
      if fast != .leftAlone { #expect(fast == plain, "\(ending.debugDescription): \(fast) vs \(plain)") }
    }
  }

  /// Numbers parsed from the bytes are `Float(String)`'s, bit for bit, over integers, decimals
  /// and exponents at the edges of the exact range.
  @Test func numbersAreFloatsOwnReading() {
    var generator = SplitMix64(seed: 9, stream: "numbers")
    var texts = ["16777216", "16777217", "0.0000000001", "1e10", "1e-10", "9.999999e10", "-0.0", "0.1", "0.7", "3.14159"]
    for _ in 0..<20_000 {
      let mantissa = generator.next() % (1 << 25)
      let scale = Int(generator.next() % 21) - 10
      texts.append(scale >= 0 ? "\(mantissa)e\(scale)" : "\(mantissa)e\(scale)")
      let digits = String(mantissa)
      let point = Int(generator.next() % UInt64(digits.count + 1))
      texts.append(String(digits.prefix(point)) + (point < digits.count ? "." + digits.dropFirst(point) : ""))
    }
    for text in texts {
      let bytes = Array(text.utf8)
      let parsed = bytes.withUnsafeBufferPointer { FastCSV.number($0.baseAddress!, $0.count) }
      #expect(parsed?.bitPattern == Float(text).map(\.bitPattern), "\(text)")
    }
  }
}

/// `.npy` inputs mapped from their file (`NumPyData.mapInputs`; a Fortran-ordered array read
/// whole) against the whole-file reader (`NumPyData.parse`, then `dataset`): the same arrays bit
/// for bit, or the same error, over dtypes, byte orders, scales, non-finite values, and truncated
/// or padded files.
@Suite("Mapped .npy inputs")
struct NumPyStreamTests {
  static func npy(descr: String, shape: [Int], fortran: Bool = false, body: [UInt8]) -> [UInt8] {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shapeText), }"
    while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    let length = header.utf8.count
    return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(header.utf8) + body
  }

  static func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

  @Test func mappedInputsAreTheWholeFileReadersBitForBit() throws {
    let folder = temporaryFolder()
    var generator = SplitMix64(seed: 3, stream: "npy")
    let labels = Self.npy(descr: "<i8", shape: [300], body: Self.bytes((0..<300).map { Int64($0 % 4) }))
    try Data(labels).write(to: URL(fileURLWithPath: folder + "/y.npy"))
    let floats = (0..<300 * 7).map { _ in Float(generator.nextNormal()) }
    let cases: [(String, [UInt8])] = [
      ("float32", Self.npy(descr: "<f4", shape: [300, 7], body: Self.bytes(floats))),
      ("float64", Self.npy(descr: "<f8", shape: [300, 7], body: Self.bytes(floats.map { Double($0) * 1.1 }))),
      ("uint8", Self.npy(descr: "|u1", shape: [300, 7], body: (0..<2100).map { UInt8($0 % 256) })),
      ("big-endian int16", Self.npy(descr: ">i2", shape: [300, 7], body: Self.bytes((0..<2100).map { Int16($0 - 1000).bigEndian }))),
      ("float16", Self.npy(descr: "<f2", shape: [300, 7], body: Self.bytes((0..<2100).map { Float16(Float($0) / 64).bitPattern }))),
      ("fortran", Self.npy(descr: "<f4", shape: [300, 7], fortran: true, body: Self.bytes(floats))),
      (
        "a non-finite value",
        Self.npy(descr: "<f4", shape: [300, 7], body: Self.bytes(floats.enumerated().map { $0.offset == 1234 ? .infinity : $0.element }))
      ),
      (
        "too large once scaled",
        Self.npy(descr: "<f8", shape: [300, 7], body: Self.bytes(floats.enumerated().map { $0.offset == 99 ? 1e300 : Double($0.element) }))
      ),
      ("truncated", Array(Self.npy(descr: "<f4", shape: [300, 7], body: Self.bytes(floats)).dropLast(3))),
      ("padded", Self.npy(descr: "<f4", shape: [300, 7], body: Self.bytes(floats)) + [0, 0]),
      ("a wrong sample count", Self.npy(descr: "<f4", shape: [299, 7], body: Self.bytes(Array(floats.prefix(299 * 7))))),
      ("no data", Self.npy(descr: "<f4", shape: [0, 7], body: [])),
    ]
    for (name, file) in cases {
      try Data(file).write(to: URL(fileURLWithPath: folder + "/x.npy"))
      for scale in [1.0, 1.0 / 255, 1e30] {
        let source = DataSource.NumPySource(files: .npy(inputs: "x.npy", targets: "y.npy"), scale: scale)
        let mapped = Result { () throws(DataError) in try DatasetLoader.load(DataSpec(source: .numpy(source)), relativeTo: folder) }
        let whole = Result { () throws(DataError) in
          try NumPyData.dataset(
            inputs: NumPyData.parse(file, path: folder + "/x.npy"), targets: NumPyData.parse(labels, path: folder + "/y.npy"),
            source: source,
            inputsName: folder + "/x.npy", targetsName: folder + "/y.npy")
        }
        switch (mapped, whole) {
        case (.success(let a), .success(let b)):
          #expect(a.inputs.shape == b.inputs.shape && a.targets == b.targets, "\(name) × \(scale)")
          #expect(a.inputs.isMapped == (name != "fortran"), "\(name): a C-order array is mapped")
          #expect(a.inputs.scalars.map(\.bitPattern) == b.inputs.scalars.map(\.bitPattern), "\(name) × \(scale)")
        case (.failure(let a), .failure(let b)):
          #expect(a == b, "\(name) × \(scale): \(a) vs \(b)")
        default:
          Issue.record("\(name) × \(scale): \(mapped) vs \(whole)")
        }
      }
    }
  }
}
