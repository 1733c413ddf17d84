import CZlibShim
import SpecKit
import TensorCore

/// NumPy's own files, read without Python: `.npy` (format versions 1.0, 2.0 and 3.0) and `.npz`
/// (a zip archive of `.npy` members, stored or deflated). Everything is checked before it is
/// believed: the header's grammar, the dtype (object arrays are pickles — code — and are never
/// loaded), every declared size against the bytes there and the memory budget, each member's
/// CRC-32. docs/spec-format.md, "npy and npz", is the contract.
public enum NumPyData {
  /// One array: its shape and its values as doubles (exact for every accepted dtype but 64-bit
  /// integers past 2^53, which no label or pixel reaches), and whether they were integers.
  public struct Array: Sendable {
    public var shape: [Int]
    public var values: [Double]
    public var isInteger: Bool
    public var dtype: String
  }

  /// The dataset of a `npy` or `npz` source whose files are already read.
  public static func dataset(
    inputs: Array, targets: Array, source: DataSource.NumPySource, inputsName: String, targetsName: String
  ) throws(DataError) -> Dataset {
    // Converted first (a value that is not finite is remembered, not thrown), then checked.
    var firstBad: (index: Int, value: Double)?
    var scalars = [Float](repeating: 0, count: inputs.values.count)
    scalars.withUnsafeMutableBufferPointer { out in
      for (i, v) in inputs.values.enumerated() { FloatInputs.note(Float(v * source.scale), v, at: i, into: out.baseAddress!, &firstBad) }
    }
    let converted = FloatInputs(
      shape: inputs.shape, values: SampleInputs(Tensor(shape: FloatInputs.rowsShape(inputs.shape), scalars: scalars)), firstBad: firstBad)
    return try dataset(inputs: converted, targets: targets, source: source, inputsName: inputsName, targetsName: targetsName)
  }

  /// Inputs as float32 (`value × scale`): in memory, or the rows of a mapped file (`mapInputs`),
  /// with the first value that is not finite, if any.
  struct FloatInputs {
    /// The array's own shape.
    var shape: [Int]
    /// `[N, sample shape…]` (`rowsShape`).
    var values: SampleInputs
    var firstBad: (index: Int, value: Double)?

    /// An array's shape as samples: `[N]` is N samples of one value.
    static func rowsShape(_ shape: [Int]) -> [Int] {
      guard let n = shape.first else { return [1, 1] }
      return [n] + (shape.count == 1 ? [1] : Swift.Array(shape.dropFirst()))
    }

    /// Stores one converted value, remembering the first that is not finite.
    @inline(__always) static func note(
      _ x: Float, _ v: Double, at i: Int, into out: UnsafeMutablePointer<Float>, _ firstBad: inout (index: Int, value: Double)?
    ) {
      out[i] = x
      if !x.isFinite && firstBad == nil { firstBad = (i, v) }
    }
  }

  /// The dataset of inputs already converted and targets read; every check and message of the
  /// form above.
  static func dataset(
    inputs: FloatInputs, targets: Array, source: DataSource.NumPySource, inputsName: String, targetsName: String
  ) throws(DataError) -> Dataset {
    guard let n = inputs.shape.first, n > 0 else {
      throw .mismatch("\(inputsName): the inputs have shape \(inputs.shape); they need a first axis of samples [N, …] with N ≥ 1")
    }
    guard targets.shape.first == n, targets.shape.count <= 2 else {
      throw .mismatch(
        "\(targetsName): the targets have shape \(targets.shape), but the inputs (\(inputsName)) have \(n) samples; targets must be [\(n)] or [\(n), k]"
      )
    }
    let sample = Swift.Array(FloatInputs.rowsShape(inputs.shape).dropFirst())
    let scale = source.scale
    if let (i, v) = inputs.firstBad {
      throw .mismatch(
        "\(inputsName): value \(i) (sample \(i / max(1, inputs.values.rowWidth))) is \(v)\(scale == 1 ? "" : " × \(scale)"), which is not a finite float32; training needs finite inputs"
      )
    }
    let task = source.task ?? (targets.isInteger ? .classification : .regression)

    switch task {
    case .classification:
      guard targets.shape.count == 1 else {
        throw .mismatch("\(targetsName): classification needs one label a sample ([\(n)]), got shape \(targets.shape)")
      }
      var labels: [Int] = []
      labels.reserveCapacity(n)
      for (i, v) in targets.values.enumerated() {
        guard v >= 0, v == v.rounded(), v < 2_147_483_648 else {
          throw .mismatch(
            "\(targetsName): label \(i) is \(v); class labels are whole numbers from 0 (use task \"regression\" for real-valued targets)")
        }
        labels.append(Int(v))
      }
      let classes = (labels.max() ?? 0) + 1
      guard classes >= 2 else { throw .mismatch("\(targetsName): every label is 0; classification needs at least 2 classes") }
      return Dataset(
        inputs: inputs.values, targets: .classes(labels),
        shape: DataShape(input: sample, target: .classes(classes)))
    case .regression:
      let width = targets.shape.count == 2 ? targets.shape[1] : 1
      guard width >= 1 else { throw .mismatch("\(targetsName): the targets have shape \(targets.shape), with no values a sample") }
      let values = targets.values.map { Float($0) }
      if let bad = values.firstIndex(where: { !$0.isFinite }) {
        throw .mismatch("\(targetsName): target \(bad) is \(targets.values[bad]), not a finite float32")
      }
      return Dataset(
        inputs: inputs.values, targets: .values(Tensor(shape: [n, width], scalars: values)),
        shape: DataShape(input: sample, target: .values(width: width)))
    }
  }

  // MARK: .npy

  /// The array of one `.npy` file's bytes; `path` names it in messages.
  public static func parse(_ bytes: [UInt8], path: String) throws(DataError) -> Array {
    let (header, count, data) = try layout(bytes, fileSize: bytes.count, path: path)
    var values = [Double](repeating: 0, count: count)
    bytes.withUnsafeBufferPointer { raw in
      let base = raw.baseAddress! + data
      for i in 0..<count { values[i] = header.dtype.value(base + i * header.dtype.size) }
    }
    if header.fortranOrder && header.shape.count > 1 { values = rowMajor(values, shape: header.shape) }
    return Array(shape: header.shape, values: values, isInteger: header.dtype.kind != "f", dtype: header.dtype.text)
  }

  /// The most bytes before a `.npy` file's data: the preamble and a header of at most 1 MiB.
  static let longestPreamble = 12 + (1 << 20)

  /// A `.npy` file's header, element count and where its data starts, from its first bytes
  /// (`bytes`, all of them or at least `longestPreamble`) and its size: every check of the format.
  /// An array to be `mapped` is not held in memory, so the memory budget does not limit it.
  static func layout(_ bytes: [UInt8], fileSize: Int, path: String, mapped: Bool = false) throws(DataError) -> (
    header: Header, count: Int, data: Int
  ) {
    func fail(_ message: String) -> DataError { .numpy(path: path, message: message) }
    let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
    guard bytes.count >= 10, Swift.Array(bytes[0..<6]) == magic else {
      throw fail("is not a NumPy .npy file (it does not start with \\x93NUMPY); save arrays with numpy.save")
    }
    let major = bytes[6]
    let headerLength: Int
    let headerStart: Int
    switch major {
    case 1:
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
      headerStart = 10
    case 2, 3:
      guard bytes.count >= 12 else { throw fail("is truncated inside its header") }
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
      headerStart = 12
    default:
      throw fail("is .npy format version \(major).\(bytes[7]); SpecBench reads versions 1.0, 2.0 and 3.0")
    }
    guard headerLength <= 1 << 20, headerStart + headerLength <= bytes.count else {
      throw fail("declares a header of \(headerLength) bytes, but the file has \(fileSize - headerStart) after the preamble")
    }
    guard let text = String(validating: bytes[headerStart..<headerStart + headerLength], as: UTF8.self) else {
      throw fail("has a header that is not text")
    }
    let header = try Header.parse(text, path: path)
    let count = try checkedCount(header.shape, path: path)
    let (size, overflow) = count.multipliedReportingOverflow(by: header.dtype.size)
    let data = headerStart + headerLength
    guard !overflow, mapped || (size <= MemoryBudget.limit && count <= MemoryBudget.limit / 8) else {
      throw fail(
        "declares shape \(header.shape) of \(header.dtype.text), more than the \(ByteCount.text(MemoryBudget.limit)) allowed (\(MemoryBudget.limitSource))"
      )
    }
    guard fileSize - data == size else {
      throw fail(
        fileSize - data < size
          ? "is truncated: shape \(header.shape) of \(header.dtype.text) needs \(size) bytes of data, the file has \(fileSize - data)"
          : "has \(fileSize - data - size) bytes beyond the \(size) its shape \(header.shape) of \(header.dtype.text) needs")
    }
    return (header, count, data)
  }

  /// A `.npy` file of inputs mapped into memory, its rows converted to float32 (`value × scale`)
  /// as they are gathered: never read whole and never as doubles, so the array may be larger
  /// than memory. Every value is checked once here (a pass in order, in blocks). Nil for a
  /// Fortran-ordered array of several axes (read whole by `parse`).
  static func mapInputs(_ path: String, scale: Double, monitor: DataLoadMonitor? = nil) throws(DataError) -> FloatInputs? {
    let file: OpenFile
    do { file = try FileAccess.openForReading(path, limit: .max) } catch {
      throw .unreadable(path: path, reason: error.reason ?? error.description)
    }
    var prefix = [UInt8](repeating: 0, count: min(file.size, longestPreamble))
    let read = try FastCSV.read(file, into: &prefix, at: 0)
    prefix.removeLast(prefix.count - read)
    let (header, count, data) = try layout(prefix, fileSize: file.size, path: path, mapped: true)
    if header.fortranOrder && header.shape.count > 1 { return nil }
    if let problem = MappedRows.bookkeepingProblem(samples: header.shape.first ?? 1) { throw .numpy(path: path, message: problem) }
    let mapping: FileMapping
    do { mapping = try file.mapped() } catch { throw .unreadable(path: path, reason: error.reason ?? error.description) }
    let type = header.dtype
    let encoding: MappedRows.Encoding =
      type.kind == "f" && type.size == 4 && type.littleEndian && scale == 1 ? .float32 : .numpy(type, scale: scale)
    let shape = FloatInputs.rowsShape(header.shape)
    let rows = MappedRows(
      mapping: mapping, offset: data, encoding: encoding, sampleShape: Swift.Array(shape.dropFirst()), fileRows: shape[0])
    let firstBad = try firstNonFinite(rows, count: count, path: path, progress: monitor?.hooks(path: path, size: file.size))
    return FloatInputs(shape: header.shape, values: SampleInputs(rows), firstBad: firstBad)
  }

  /// The first value of a mapped array that is not finite as float32, and its stored value: one
  /// pass in order over blocks of about 1 MiB, reporting progress and stopping when asked.
  static func firstNonFinite(_ rows: MappedRows, count: Int, path: String, progress: FastCSV.Progress?) throws(DataError) -> (
    index: Int, value: Double
  )? {
    let size = rows.encoding.size
    let perBlock = max(1, (1 << 20) / size)
    var block = [Float](repeating: 0, count: perBlock)
    let base = rows.mapping.bytes.baseAddress.map { $0 + rows.offset }
    rows.mapping.advise(.sequential)
    defer { rows.mapping.advise(.random) }
    var done = 0
    while done < count, let base {
      if progress?.isCancelled() == true { throw .interrupted(path: path) }
      // (Cut short under the mapping, the next read would stop the program: looked at first.)
      if rows.mapping.file.change() != nil {
        throw .numpy(path: path, message: "changed while it was read; read it again once it is written")
      }
      let n = min(perBlock, count - done)
      let bad: Int? = block.withUnsafeMutableBufferPointer { out in
        MappedRows.convert(base + done * size, count: n, rows.encoding, into: out.baseAddress!)
        return allFinite(UnsafeBufferPointer(rebasing: out[..<n])) ? nil : out[..<n].firstIndex { !$0.isFinite }
      }
      if let bad {
        let at = base + (done + bad) * size
        let value: Double =
          switch rows.encoding {
          case .numpy(let type, _): type.value(at.assumingMemoryBound(to: UInt8.self))
          case .float32: Double(at.loadUnaligned(as: Float.self))
          case .unitByte: Double(at.load(as: UInt8.self))
          }
        return (done + bad, value)
      }
      done += n
      progress?.report?(done * size, count * size)
    }
    return nil
  }

  /// The product of `shape`, refused past 2^40 or on overflow.
  static func checkedCount(_ shape: [Int], path: String) throws(DataError) -> Int {
    var count = 1
    for d in shape {
      let (p, o) = count.multipliedReportingOverflow(by: d)
      guard !o, p <= 1 << 40 else {
        throw .numpy(path: path, message: "declares shape \(shape), more values (over 2^40) than any array SpecBench reads")
      }
      count = p
    }
    return count
  }

  /// Column-major values (Fortran order) reordered row-major.
  static func rowMajor(_ values: [Double], shape: [Int]) -> [Double] {
    var out = [Double](repeating: 0, count: values.count)
    var fortranStrides = [Int](repeating: 1, count: shape.count)
    for axis in 1..<shape.count { fortranStrides[axis] = fortranStrides[axis - 1] * shape[axis - 1] }
    var index = [Int](repeating: 0, count: shape.count)
    for i in 0..<values.count {
      var source = 0
      for axis in 0..<shape.count { source += index[axis] * fortranStrides[axis] }
      out[i] = values[source]
      var axis = shape.count - 1
      while axis >= 0 {
        index[axis] += 1
        if index[axis] < shape[axis] { break }
        index[axis] = 0
        axis -= 1
      }
    }
    return out
  }

  /// An element type: byte order, kind and size (`<f4`, `|u1`, …).
  struct DType: Hashable, Sendable {
    var littleEndian: Bool
    var kind: Character
    var size: Int
    var text: String

    static func parse(_ descr: String, path: String) throws(DataError) -> DType {
      let scalars = Swift.Array(descr)
      guard scalars.count >= 2 else {
        throw .numpy(path: path, message: "has dtype \(TextExcerpt.quoted(descr)), which is not a NumPy type string such as '<f4'")
      }
      let (order, kind) = (scalars[0], scalars[1])
      let names: [Character: String] = [
        "O": "object", "U": "unicode string", "S": "byte string", "a": "byte string", "c": "complex", "V": "structured or void",
        "M": "datetime", "m": "timedelta",
      ]
      if kind == "O" {
        throw .numpy(
          path: path,
          message:
            "holds an object array ('|O'): its values are a Python pickle, which is code, and SpecBench never loads it; save a numeric array (for example arr.astype(np.float32))"
        )
      }
      if let name = names[kind] {
        throw .numpy(
          path: path,
          message: "holds \(name) values (dtype \(TextExcerpt.quoted(descr))); SpecBench reads numbers: float, int, uint or bool")
      }
      let sizes: [Character: [Int]] = ["f": [2, 4, 8], "i": [1, 2, 4, 8], "u": [1, 2, 4, 8], "b": [1]]
      guard let size = Int(String(scalars[2...])), let allowed = sizes[kind], allowed.contains(size), "<>|=".contains(order) else {
        throw .numpy(
          path: path,
          message: "has dtype \(TextExcerpt.quoted(descr)), which SpecBench does not read (float16/32/64, int8–64, uint8–64, bool)")
      }
      let little = order == "<" || order == "|" || (order == "=" && 1.littleEndian == 1)
      return DType(littleEndian: little, kind: kind, size: size, text: descr)
    }

    /// The element at `p` as a double.
    func value(_ p: UnsafePointer<UInt8>) -> Double {
      var bits: UInt64 = 0
      for k in 0..<size { bits |= UInt64(p[littleEndian ? k : size - 1 - k]) << (8 * k) }
      switch (kind, size) {
      case ("f", 2): return Double(Float16(bitPattern: UInt16(bits)))
      case ("f", 4): return Double(Float(bitPattern: UInt32(bits)))
      case ("f", 8): return Double(bitPattern: bits)
      case ("i", _):
        let shift = 64 - 8 * size
        return Double(Int64(bitPattern: bits << shift) >> shift)
      case ("b", _): return bits == 0 ? 0 : 1
      default: return Double(bits)
      }
    }
  }

  /// A `.npy` header: a Python dict literal with exactly `descr`, `fortran_order` and `shape`.
  struct Header {
    var dtype: DType
    var fortranOrder: Bool
    var shape: [Int]

    static func parse(_ text: String, path: String) throws(DataError) -> Header {
      var reader = LiteralReader(text: Swift.Array(text.unicodeScalars))
      func fail(_ what: String) -> DataError {
        .numpy(
          path: path, message: "has a header that is not NumPy's (\(what) at character \(reader.position)): \(TextExcerpt.quoted(text))")
      }
      var fields: [String: LiteralReader.Value] = [:]
      reader.skipSpaces()
      guard reader.take("{") else { throw fail("no '{'") }
      while true {
        reader.skipSpaces()
        if reader.take("}") { break }
        guard case .string(let key)? = reader.value() else { throw fail("a key that is not a string") }
        reader.skipSpaces()
        guard reader.take(":") else { throw fail("no ':'") }
        reader.skipSpaces()
        if key == "descr", reader.peek == "[" {
          throw .numpy(path: path, message: "has a structured dtype (a list of fields); SpecBench reads plain numeric arrays")
        }
        guard let value = reader.value() else { throw fail("a value SpecBench does not read") }
        guard fields.updateValue(value, forKey: key) == nil else { throw fail("the key \(key) twice") }
        reader.skipSpaces()
        if reader.take(",") { continue }
        reader.skipSpaces()
        guard reader.take("}") else { throw fail("no ',' or '}'") }
        break
      }
      guard Set(fields.keys) == ["descr", "fortran_order", "shape"] else {
        throw fail("keys \(fields.keys.sorted()) instead of descr, fortran_order and shape")
      }
      guard case .string(let descr)? = fields["descr"] else {
        throw .numpy(path: path, message: "has a structured dtype (a list of fields); SpecBench reads plain numeric arrays")
      }
      guard case .bool(let fortran)? = fields["fortran_order"] else { throw fail("fortran_order not True or False") }
      guard case .tuple(let shape)? = fields["shape"], shape.allSatisfy({ $0 >= 0 }) else {
        throw fail("a shape that is not a tuple of sizes")
      }
      return Header(dtype: try DType.parse(descr, path: path), fortranOrder: fortran, shape: shape)
    }
  }

  /// The few Python literals a `.npy` header holds: strings, True/False, tuples of integers.
  struct LiteralReader {
    enum Value {
      case string(String)
      case bool(Bool)
      case tuple([Int])
    }
    let text: [Unicode.Scalar]
    var position = 0

    var peek: Unicode.Scalar? { position < text.count ? text[position] : nil }

    mutating func skipSpaces() { while position < text.count, text[position] == " " || text[position] == "\n" { position += 1 } }
    mutating func take(_ c: Unicode.Scalar) -> Bool {
      guard position < text.count, text[position] == c else { return false }
      position += 1
      return true
    }

    mutating func value() -> Value? {
      guard position < text.count else { return nil }
      let c = text[position]
      if c == "'" || c == "\"" {
        position += 1
        var s = ""
        while position < text.count, text[position] != c {
          guard text[position] != "\\" else { return nil }
          s.unicodeScalars.append(text[position])
          position += 1
        }
        guard take(c) else { return nil }
        return .string(s)
      }
      for (word, flag) in [("True", true), ("False", false)] where text[position...].starts(with: word.unicodeScalars) {
        position += word.unicodeScalars.count
        return .bool(flag)
      }
      guard take("(") else { return nil }
      var dims: [Int] = []
      while true {
        skipSpaces()
        if take(")") { return .tuple(dims) }
        var digits = ""
        while position < text.count, ("0"..."9").contains(text[position]), digits.count < 19 {
          digits.unicodeScalars.append(text[position])
          position += 1
        }
        guard let n = Int(digits) else { return nil }
        dims.append(n)
        skipSpaces()
        if take(",") { continue }
        guard take(")") else { return nil }
        return .tuple(dims)
      }
    }
  }

  // MARK: .npz

  /// The arrays of an `.npz` archive by name (a member `x.npy` is the array `x`), only those in
  /// `wanted`; a missing one is refused with the archive's names.
  public static func parseArchive(_ bytes: [UInt8], path: String, wanted: [String]) throws(DataError) -> [String: Array] {
    let members = try ZipArchive.members(bytes, path: path)
    var result: [String: Array] = [:]
    for name in wanted where result[name] == nil {
      guard let member = members.first(where: { $0.name == name + ".npy" }) else {
        let names = members.map(\.name).filter { $0.hasSuffix(".npy") }.map { String($0.dropLast(4)) }
        throw .numpy(
          path: path,
          message:
            "has no array \(TextExcerpt.quoted(name)); its arrays are \(names.isEmpty ? "none" : names.map { TextExcerpt.quoted($0) }.joined(separator: ", "))"
        )
      }
      result[name] = try parse(
        try ZipArchive.contents(of: member, in: bytes, path: path), path: "\(path) (array \(TextExcerpt.quoted(name)))")
    }
    return result
  }

  /// The central directory of a zip archive and its members' data (stored or deflated).
  enum ZipArchive {
    struct Member {
      var name: String
      var method: Int
      var crc: UInt32
      var compressedSize: Int
      var size: Int
      var localHeader: Int
    }

    static func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
    static func u32(_ b: [UInt8], _ o: Int) -> Int { u16(b, o) | u16(b, o + 2) << 16 }
    static func u64(_ b: [UInt8], _ o: Int) -> Int? {
      let high = u32(b, o + 4)
      guard high < 1 << 22 else { return nil }
      return u32(b, o) | high << 32
    }

    static func members(_ b: [UInt8], path: String) throws(DataError) -> [Member] {
      func fail(_ message: String) -> DataError { .numpy(path: path, message: message) }
      // The end-of-central-directory record: the last PK\5\6 within the comment's reach.
      guard b.count >= 22 else {
        throw fail("is not an .npz archive (\(b.count) bytes, too few for a zip file); save arrays with numpy.savez")
      }
      var end = -1
      var o = b.count - 22
      while o >= max(0, b.count - 22 - 65535) {
        if b[o] == 0x50, b[o + 1] == 0x4B, b[o + 2] == 5, b[o + 3] == 6 {
          end = o
          break
        }
        o -= 1
      }
      guard end >= 0 else { throw fail("is not an .npz archive (no zip directory at its end); save arrays with numpy.savez") }
      var count = u16(b, end + 10)
      var directory = u32(b, end + 16)
      // Zip64: the locator just before the record points at the zip64 record.
      if directory == 0xFFFF_FFFF || count == 0xFFFF, end >= 20, u32(b, end - 20) == 0x0706_4B50 {
        guard let record = u64(b, end - 12), record >= 0, record + 56 <= b.count, u32(b, record) == 0x0606_4B50,
          let entries = u64(b, record + 32), let start = u64(b, record + 48)
        else { throw fail("has a damaged zip64 directory") }
        (count, directory) = (entries, start)
      }
      guard directory >= 0, directory <= end, count <= (end - directory) / 46 + 1 else {
        throw fail("has a zip directory that points outside the file (damaged or truncated)")
      }
      var members: [Member] = []
      var p = directory
      for _ in 0..<count {
        guard p + 46 <= end, u32(b, p) == 0x0201_4B50 else { throw fail("has a damaged zip directory entry at byte \(p)") }
        let nameLength = u16(b, p + 28), extraLength = u16(b, p + 30), commentLength = u16(b, p + 32)
        guard p + 46 + nameLength + extraLength + commentLength <= end else { throw fail("has a zip directory entry past its end") }
        var member = Member(
          name: String(decoding: b[p + 46..<p + 46 + nameLength], as: UTF8.self), method: u16(b, p + 10), crc: UInt32(u32(b, p + 16)),
          compressedSize: u32(b, p + 20), size: u32(b, p + 24), localHeader: u32(b, p + 42))
        // Zip64 sizes and offset, in that order, for each field that says 0xFFFFFFFF.
        var e = p + 46 + nameLength
        let extraEnd = e + extraLength
        while e + 4 <= extraEnd {
          let (id, length) = (u16(b, e), u16(b, e + 2))
          if id == 1 {
            var q = e + 4
            func next() -> Int? {
              guard q + 8 <= min(e + 4 + length, extraEnd) else { return nil }
              defer { q += 8 }
              return u64(b, q)
            }
            if member.size == 0xFFFF_FFFF { member.size = next() ?? -1 }
            if member.compressedSize == 0xFFFF_FFFF { member.compressedSize = next() ?? -1 }
            if member.localHeader == 0xFFFF_FFFF { member.localHeader = next() ?? -1 }
          }
          e += 4 + length
        }
        guard member.size >= 0, member.compressedSize >= 0, member.localHeader >= 0 else {
          throw fail("has a damaged zip64 entry for \(TextExcerpt.quoted(member.name))")
        }
        members.append(member)
        p += 46 + nameLength + extraLength + commentLength
      }
      return members
    }

    /// A member's bytes: found through its local header, inflated if deflated, CRC-checked.
    static func contents(of m: Member, in b: [UInt8], path: String) throws(DataError) -> [UInt8] {
      func fail(_ message: String) -> DataError { .numpy(path: path, message: "member \(TextExcerpt.quoted(m.name)) \(message)") }
      guard m.localHeader + 30 <= b.count, u32(b, m.localHeader) == 0x0403_4B50 else {
        throw fail("has no local header where the directory says (byte \(m.localHeader)); the archive is damaged")
      }
      let start = m.localHeader + 30 + u16(b, m.localHeader + 26) + u16(b, m.localHeader + 28)
      guard start <= b.count, m.compressedSize <= b.count - start else {
        throw fail("is truncated: it declares \(m.compressedSize) bytes, the archive has \(max(0, b.count - start)) after its header")
      }
      guard m.size <= MemoryBudget.limit else {
        throw fail(
          "declares \(ByteCount.text(m.size)) uncompressed, more than the \(ByteCount.text(MemoryBudget.limit)) allowed (\(MemoryBudget.limitSource))"
        )
      }
      let data: [UInt8]
      switch m.method {
      case 0:
        guard m.compressedSize == m.size else {
          throw fail("is stored, but declares \(m.compressedSize) bytes stored and \(m.size) uncompressed")
        }
        data = Swift.Array(b[start..<start + m.size])
      case 8:
        data = try inflate(b[start..<start + m.compressedSize], size: m.size, fail: fail)
      default:
        throw fail(
          "uses zip compression method \(m.method); SpecBench reads stored and deflated members (numpy.savez, numpy.savez_compressed)")
      }
      let crc = data.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
      guard crc == m.crc else {
        throw fail("fails its CRC-32 check (0x\(String(crc, radix: 16)) instead of 0x\(String(m.crc, radix: 16))); the archive is damaged")
      }
      return data
    }

    /// Raw deflate data inflated to exactly `size` bytes (more or fewer is an error).
    static func inflate(_ input: ArraySlice<UInt8>, size: Int, fail: (String) -> DataError) throws(DataError) -> [UInt8] {
      var output = [UInt8](repeating: 0, count: size + 1)
      var stream = z_stream()
      guard specbench_inflate_init_raw(&stream) == Z_OK else { throw fail("could not be inflated (zlib would not start)") }
      defer { inflateEnd(&stream) }
      var input = Swift.Array(input)
      let (status, produced) = input.withUnsafeMutableBufferPointer { source in
        output.withUnsafeMutableBufferPointer { target in
          stream.next_in = source.baseAddress
          stream.avail_in = uInt(source.count)
          stream.next_out = target.baseAddress
          stream.avail_out = uInt(target.count)
          let status = CZlibShim.inflate(&stream, Z_FINISH)
          return (status, target.count - Int(stream.avail_out))
        }
      }
      guard status == Z_STREAM_END, produced == size else {
        throw fail(
          status == Z_STREAM_END
            ? "inflates to \(produced > size ? "more than" : String(produced)) bytes, not the \(size) it declares; the archive is damaged"
            : "is damaged: its deflated data does not inflate (zlib status \(status))")
      }
      output.removeLast()
      return output
    }
  }
}
