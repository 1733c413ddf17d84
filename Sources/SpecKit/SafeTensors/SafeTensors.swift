/// Reading and writing the safetensors format: an 8-byte little-endian header length, a JSON
/// header `{"NAME": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`,
/// then the raw little-endian data. SpecBench writes and loads F32 (every state tensor) and I64
/// (the steps of a metrics file, only where the caller asks for it), and checks every structural
/// rule before touching the data, so a corrupt or hostile file is refused with a reason rather
/// than crashing or allocating absurd memory.
public enum SafeTensors {
  /// Header size cap, as the reference implementation's.
  public static let maximumHeaderBytes = 100_000_000

  /// Bytes per element of every dtype the format defines.
  public static let dtypeSizes: [String: Int] = [
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
  ]

  /// The contents of a file: tensors by name and the free-form string metadata.
  public struct Contents: Hashable, Sendable {
    /// The `F32` tensors.
    public var tensors: [String: StoredTensor]
    /// The `I64` tensors.
    public var integers: [String: StoredIntegers]
    public var metadata: [String: String]

    public init(tensors: [String: StoredTensor], integers: [String: StoredIntegers] = [:], metadata: [String: String] = [:]) {
      self.tensors = tensors
      self.integers = integers
      self.metadata = metadata
    }
  }

  /// Bytes of `values` in little-endian order, appended to `out`.
  static func appendLittleEndian<T: FixedWidthInteger>(_ values: some Sequence<T>, to out: inout [UInt8]) {
    for value in values { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
  }

  /// Appends the raw bytes of `values` (a whole array at once on little-endian machines).
  static func appendRaw<T>(_ values: [T], bitPattern: (T) -> some FixedWidthInteger, to out: inout [UInt8]) {
    if 1.littleEndian == 1 {
      values.withUnsafeBytes { out.append(contentsOf: $0) }
    } else {
      appendLittleEndian(values.lazy.map(bitPattern), to: &out)
    }
  }

  /// The file bytes for `contents`: tensors in name order, header padded with spaces to a
  /// multiple of 8 bytes so the data is aligned (as the reference writer does).
  public static func encode(_ contents: Contents) -> [UInt8] {
    let names = contents.tensors.keys.sorted { JSONWriter.codePointsPrecede($0, $1) }
    var members: [JSONObject.Member] = []
    if !contents.metadata.isEmpty {
      let pairs = contents.metadata.keys.sorted().map { JSONObject.Member(key: $0, value: .string(contents.metadata[$0]!)) }
      members.append(.init(key: "__metadata__", value: .object(pairs)))
    }
    precondition(Set(contents.tensors.keys).isDisjoint(with: contents.integers.keys), "a name is both F32 and I64")
    let allNames = (names + contents.integers.keys).sorted { JSONWriter.codePointsPrecede($0, $1) }
    var offset = 0
    for name in allNames {
      let (dtype, shape, bytes) =
        if let tensor = contents.tensors[name] {
          tensor.integers == nil ? ("F32", tensor.shape, tensor.scalars.count * 4) : ("I64", tensor.shape, tensor.scalars.count * 8)
        } else {
          ("I64", contents.integers[name]!.shape, contents.integers[name]!.values.count * 8)
        }
      members.append(
        .init(
          key: name,
          value: .object([
            "dtype": .string(dtype), "shape": .array(shape.map { .int($0) }),
            "data_offsets": .array([.int(offset), .int(offset + bytes)]),
          ])))
      offset += bytes
    }
    var header = Array(JSONWriter.compact(.object(members)).utf8)
    while (8 + header.count) % 8 != 0 { header.append(0x20) }
    var out: [UInt8] = []
    out.reserveCapacity(8 + header.count + offset)
    appendLittleEndian([UInt64(header.count)], to: &out)
    out.append(contentsOf: header)
    for name in allNames {
      if let tensor = contents.tensors[name], let integers = tensor.integers {
        appendRaw(integers, bitPattern: { $0 }, to: &out)
      } else if let tensor = contents.tensors[name] {
        appendRaw(tensor.scalars, bitPattern: \.bitPattern, to: &out)
      } else {
        appendRaw(contents.integers[name]!.values, bitPattern: { $0 }, to: &out)
      }
    }
    return out
  }

  /// Reads and checks a file's bytes.
  ///
  /// - Throws: `SafeTensorsProblem` for the first structural rule the file breaks: a length
  ///   past the end, a header that is not a JSON object, a missing or wrong field, an unknown or
  ///   non-F32 dtype, shape × dtype size ≠ byte span, offsets out of bounds, overlapping or
  ///   gapped tensors, bytes no tensor covers, a name used twice.
  /// - Parameters:
  ///   - integers: also accept `I64` tensors (a metrics file's steps), returned in `integers`.
  ///   - counts: also accept `I64` tensors, returned among `tensors` as counts
  ///     (`StoredTensor.integers`): a state file's, whose layout says which names may be `I64`.
  ///   Otherwise `I64` is refused like any dtype other than `F32`.
  public static func decode(_ bytes: [UInt8], integers: Bool = false, counts: Bool = false) throws(SafeTensorsProblem) -> Contents {
    guard bytes.count >= 8 else { throw .tooShort(bytes: bytes.count) }
    var declared: UInt64 = 0
    for i in 0..<8 { declared |= UInt64(bytes[i]) << (8 * UInt64(i)) }
    guard declared <= UInt64(bytes.count - 8), declared <= UInt64(maximumHeaderBytes) else {
      throw .headerLength(declared: declared, available: bytes.count - 8)
    }
    let headerEnd = 8 + Int(declared)
    let headerBytes = bytes[8..<headerEnd]
    guard headerBytes.first == UInt8(ascii: "{") else { throw .header("it must be a JSON object starting with '{'") }
    let header: JSONValue
    do { header = try JSONParser.parse(headerBytes, allowDuplicateKeys: true) } catch { throw .header(error.description) }
    guard let object = header.objectValue else { throw .header("it must be a JSON object") }
    let dataBytes = bytes.count - headerEnd

    var metadata: [String: String] = [:]
    var entries: [(name: String, shape: [Int], begin: Int, end: Int, isInteger: Bool)] = []
    var seen = Set<String>()
    for member in object.members {
      guard seen.insert(member.key).inserted else { throw .duplicateName(member.key) }
      if member.key == "__metadata__" {
        guard let pairs = member.value.objectValue else { throw .header("__metadata__ must be an object of strings") }
        for pair in pairs.members {
          guard let text = pair.value.stringValue else { throw .header("__metadata__.\(pair.key) must be a string") }
          metadata[pair.key] = text
        }
        continue
      }
      entries.append(try entry(member, dataBytes: dataBytes, integers: integers || counts))
    }
    // Every byte of the data belongs to exactly one tensor, in offset order.
    var expected = 0
    for item in entries.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
      guard item.begin == expected else { throw .notContiguous(name: item.name, begin: item.begin, expected: expected) }
      expected = item.end
    }
    guard expected == dataBytes else { throw .trailingBytes(count: dataBytes - expected) }

    var tensors: [String: StoredTensor] = [:]
    var integerTensors: [String: StoredIntegers] = [:]
    bytes.withUnsafeBytes { raw in
      for item in entries where item.isInteger {
        let count = (item.end - item.begin) / 8
        let values = [Int64](unsafeUninitializedCapacity: count) { buffer, initialized in
          let base = headerEnd + item.begin
          for i in 0..<count { buffer[i] = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: base + 8 * i, as: Int64.self)) }
          initialized = count
        }
        if counts {
          tensors[item.name] = StoredTensor(shape: item.shape, integers: values)
        } else {
          integerTensors[item.name] = StoredIntegers(shape: item.shape, values: values)
        }
      }
      for item in entries where !item.isInteger {
        let count = (item.end - item.begin) / 4
        let scalars = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
          let base = headerEnd + item.begin
          for i in 0..<count {
            buffer[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: base + 4 * i, as: UInt32.self)))
          }
          initialized = count
        }
        tensors[item.name] = StoredTensor(shape: item.shape, scalars: scalars)
      }
    }
    return Contents(tensors: tensors, integers: integerTensors, metadata: metadata)
  }

  private static func entry(_ member: JSONObject.Member, dataBytes: Int, integers: Bool) throws(SafeTensorsProblem) -> (
    name: String, shape: [Int], begin: Int, end: Int, isInteger: Bool
  ) {
    let name = member.key
    guard let fields = member.value.objectValue else {
      throw .entry(name: name, reason: "must be an object with dtype, shape and data_offsets")
    }
    for key in fields.keys where !["dtype", "shape", "data_offsets"].contains(key) {
      throw .entry(name: name, reason: "unknown field \(JSONWriter.quoted(key))")
    }
    guard let dtype = fields["dtype"]?.stringValue else { throw .entry(name: name, reason: "dtype must be a string such as \"F32\"") }
    guard let size = dtypeSizes[dtype] else { throw .unknownDType(name: name, dtype: dtype) }
    guard let dims = fields["shape"]?.arrayValue, let shape = Optional(dims.compactMap { $0.numberValue?.int }), shape.count == dims.count,
      shape.allSatisfy({ $0 >= 0 })
    else { throw .entry(name: name, reason: "shape must be an array of non-negative integers") }
    guard let offsets = fields["data_offsets"]?.arrayValue, offsets.count == 2, let begin = offsets[0].numberValue?.int,
      let end = offsets[1].numberValue?.int
    else { throw .entry(name: name, reason: "data_offsets must be [begin, end] integers") }
    guard begin >= 0, end >= begin, end <= dataBytes else {
      throw .offsetsOutOfBounds(name: name, begin: begin, end: end, dataBytes: dataBytes)
    }
    var needed = size
    for dim in shape {
      let (product, overflow) = needed.multipliedReportingOverflow(by: dim)
      guard !overflow else { throw .shapeTooLarge(name: name, shape: shape) }
      needed = product
    }
    guard needed == end - begin else {
      throw .sizeMismatch(name: name, shape: shape, dtype: dtype, expectedBytes: needed, spanBytes: end - begin)
    }
    guard dtype == "F32" || (integers && dtype == "I64") else { throw .unsupportedDType(name: name, dtype: dtype) }
    return (name, shape, begin, end, dtype == "I64")
  }
}
