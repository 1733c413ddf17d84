/// The protocol-buffer wire format, as much of it as ONNX files need: varints, 32-bit and
/// 64-bit fixed values, and length-delimited fields (strings, bytes, packed arrays, nested
/// messages). Written here rather than generated with swift-protobuf: ONNX's subset is eight
/// small messages, and a reader of our own reports a malformed file with the byte offset and
/// field path of the problem instead of a generic decoding error.
enum Protobuf {
  /// How a field's value is laid out.
  enum WireType: UInt64 {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case fixed32 = 5
  }

  /// Appends fields to a message.
  struct Writer {
    private(set) var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
      var v = value
      while v >= 0x80 {
        bytes.append(UInt8(v & 0x7F) | 0x80)
        v >>= 7
      }
      bytes.append(UInt8(v))
    }

    mutating func tag(_ field: Int, _ type: WireType) { varint(UInt64(field) << 3 | type.rawValue) }

    /// An int64 or int32 field (negative values take ten bytes, as the format says).
    mutating func int(_ field: Int, _ value: Int) {
      tag(field, .varint)
      varint(UInt64(bitPattern: Int64(value)))
    }

    mutating func float(_ field: Int, _ value: Float) {
      tag(field, .fixed32)
      withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func bytes(_ field: Int, _ value: [UInt8]) {
      tag(field, .lengthDelimited)
      varint(UInt64(value.count))
      bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ body: (inout Writer) -> Void) {
      var nested = Writer()
      body(&nested)
      bytes(field, nested.bytes)
    }

    /// A packed repeated int64 field.
    mutating func packedInts(_ field: Int, _ values: [Int]) {
      var nested = Writer()
      for value in values { nested.varint(UInt64(bitPattern: Int64(value))) }
      bytes(field, nested.bytes)
    }
  }

  /// The unsigned little-endian number in `count` bytes from `offset`.
  static func littleEndian(_ bytes: [UInt8], at offset: Int, count: Int) -> UInt64 {
    (0..<count).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
  }

  /// A malformed message: what is wrong, at which byte of the file, in which field.
  struct DecodingError: Error, Hashable {
    var message: String
    var offset: Int
  }

  /// One field as read: its number, and its value in the form its wire type gives.
  struct Field {
    enum Value {
      case varint(UInt64)
      case fixed64(UInt64)
      case fixed32(UInt32)
      /// A range of the underlying buffer.
      case bytes(Range<Int>)
    }
    var number: Int
    var value: Value
    /// Where the field's tag starts.
    var offset: Int
  }

  /// Reads the fields of one message from a range of a buffer, checking every length against
  /// what is there.
  struct Reader {
    let buffer: [UInt8]
    private(set) var position: Int
    let end: Int

    init(_ buffer: [UInt8], range: Range<Int>? = nil) {
      self.buffer = buffer
      position = range?.lowerBound ?? 0
      end = range?.upperBound ?? buffer.count
    }

    mutating func varint() throws(DecodingError) -> UInt64 {
      var result: UInt64 = 0
      var shift: UInt64 = 0
      let start = position
      while true {
        guard position < end else { throw DecodingError(message: "a number runs past the end of its message", offset: start) }
        let byte = buffer[position]
        position += 1
        guard shift < 64 else { throw DecodingError(message: "a number is longer than ten bytes", offset: start) }
        result |= UInt64(byte & 0x7F) << shift
        if byte & 0x80 == 0 { return result }
        shift += 7
      }
    }

    /// The next field, or nil at the end of the message.
    mutating func next() throws(DecodingError) -> Field? {
      guard position < end else { return nil }
      let offset = position
      let key = try varint()
      let number = Int(key >> 3)
      guard number > 0, number < 1 << 29 else { throw DecodingError(message: "field number \(number) is not valid", offset: offset) }
      switch WireType(rawValue: key & 7) {
      case .varint:
        return Field(number: number, value: .varint(try varint()), offset: offset)
      case .fixed64:
        guard end - position >= 8 else { throw DecodingError(message: "a 64-bit value runs past the end", offset: offset) }
        let value = Protobuf.littleEndian(buffer, at: position, count: 8)
        position += 8
        return Field(number: number, value: .fixed64(value), offset: offset)
      case .fixed32:
        guard end - position >= 4 else { throw DecodingError(message: "a 32-bit value runs past the end", offset: offset) }
        let value = UInt32(Protobuf.littleEndian(buffer, at: position, count: 4))
        position += 4
        return Field(number: number, value: .fixed32(value), offset: offset)
      case .lengthDelimited:
        let length = try varint()
        guard length <= UInt64(end - position) else {
          throw DecodingError(
            message: "field \(number) says it holds \(length) bytes, but only \(end - position) follow (a truncated file?)", offset: offset)
        }
        let range = position..<position + Int(length)
        position = range.upperBound
        return Field(number: number, value: .bytes(range), offset: offset)
      case nil:
        throw DecodingError(message: "field \(number) has wire type \(key & 7), which is not used (not a protobuf file?)", offset: offset)
      }
    }
  }
}

extension Protobuf.Field {
  /// The value as an integer (int32, int64, enum, bool).
  func int(_ name: String) throws(Protobuf.DecodingError) -> Int {
    guard case .varint(let raw) = value else { throw Protobuf.DecodingError(message: "\(name) is not an integer", offset: offset) }
    return Int(Int64(bitPattern: raw))
  }

  func float(_ name: String) throws(Protobuf.DecodingError) -> Float {
    guard case .fixed32(let raw) = value else { throw Protobuf.DecodingError(message: "\(name) is not a float", offset: offset) }
    return Float(bitPattern: raw)
  }

  func range(_ name: String) throws(Protobuf.DecodingError) -> Range<Int> {
    guard case .bytes(let range) = value else {
      throw Protobuf.DecodingError(message: "\(name) is not a string, bytes or message", offset: offset)
    }
    return range
  }

  func string(_ name: String, in buffer: [UInt8]) throws(Protobuf.DecodingError) -> String {
    let bytes = buffer[try range(name)]
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw Protobuf.DecodingError(message: "\(name) is not valid UTF-8", offset: offset)
    }
    return text
  }

  /// A repeated int64 field: packed, or one value per field.
  func ints(_ name: String, in buffer: [UInt8]) throws(Protobuf.DecodingError) -> [Int] {
    if case .varint = value { return [try int(name)] }
    var reader = Protobuf.Reader(buffer, range: try range(name))
    var values: [Int] = []
    while reader.position < reader.end { values.append(Int(Int64(bitPattern: try reader.varint()))) }
    return values
  }

  /// A repeated float field: packed, or one value per field.
  func floats(_ name: String, in buffer: [UInt8]) throws(Protobuf.DecodingError) -> [Float] {
    if case .fixed32 = value { return [try float(name)] }
    let range = try range(name)
    guard range.count % 4 == 0 else {
      throw Protobuf.DecodingError(message: "\(name) holds \(range.count) bytes, not a whole number of floats", offset: offset)
    }
    return stride(from: range.lowerBound, to: range.upperBound, by: 4).map {
      Float(bitPattern: UInt32(Protobuf.littleEndian(buffer, at: $0, count: 4)))
    }
  }
}
