import SpecKit

/// ONNX's protobuf encoding of the model, with the field numbers of `onnx.proto`.
extension ONNXModel {
  /// The bytes of an `.onnx` file. Weights go in `raw_data` (little-endian float32).
  func encoded() -> [UInt8] {
    var w = Protobuf.Writer()
    w.int(1, irVersion)
    if !producerName.isEmpty { w.string(2, producerName) }
    if !producerVersion.isEmpty { w.string(3, producerVersion) }
    if !docString.isEmpty { w.string(6, docString) }
    w.message(7) { graph.encode(into: &$0) }
    for opset in opsets {
      w.message(8) { o in
        if !opset.domain.isEmpty { o.string(1, opset.domain) }
        o.int(2, opset.version)
      }
    }
    for entry in metadata {
      w.message(14) { e in
        e.string(1, entry.key)
        e.string(2, entry.value)
      }
    }
    return w.bytes
  }

  /// Reads an `.onnx` file's bytes.
  ///
  /// - Throws: `Protobuf.DecodingError` with the byte offset and the path of the field
  ///   (`graph.node[3].attribute[0]`) that is malformed.
  static func decode(_ bytes: [UInt8]) throws(Protobuf.DecodingError) -> ONNXModel {
    var model = ONNXModel()
    model.opsets = []
    var reader = Protobuf.Reader(bytes)
    var sawGraph = false
    while let field = try reader.next() {
      switch field.number {
      case 1: model.irVersion = try field.int("ir_version")
      case 2: model.producerName = try field.string("producer_name", in: bytes)
      case 3: model.producerVersion = try field.string("producer_version", in: bytes)
      case 6: model.docString = try field.string("doc_string", in: bytes)
      case 7:
        model.graph = try ONNXGraph.decode(bytes, range: try field.range("graph"), path: "graph")
        sawGraph = true
      case 8:
        var o = Protobuf.Reader(bytes, range: try field.range("opset_import"))
        var opset = ONNXOpset(domain: "", version: 0)
        while let f = try o.next() {
          if f.number == 1 { opset.domain = try f.string("opset_import.domain", in: bytes) }
          if f.number == 2 { opset.version = try f.int("opset_import.version") }
        }
        model.opsets.append(opset)
      case 14:
        var e = Protobuf.Reader(bytes, range: try field.range("metadata_props"))
        var entry = (key: "", value: "")
        while let f = try e.next() {
          if f.number == 1 { entry.key = try f.string("metadata_props.key", in: bytes) }
          if f.number == 2 { entry.value = try f.string("metadata_props.value", in: bytes) }
        }
        model.metadata.append(entry)
      default: break  // fields SpecBench does not use (domain, model_version, functions, …)
      }
    }
    guard sawGraph else { throw Protobuf.DecodingError(message: "the file has no graph (not an ONNX model?)", offset: 0) }
    return model
  }
}

extension ONNXGraph {
  func encode(into w: inout Protobuf.Writer) {
    for node in nodes { w.message(1) { node.encode(into: &$0) } }
    if !name.isEmpty { w.string(2, name) }
    for tensor in initializers { w.message(5) { tensor.encode(into: &$0) } }
    for input in inputs { w.message(11) { input.encode(into: &$0) } }
    for output in outputs { w.message(12) { output.encode(into: &$0) } }
  }

  static func decode(_ bytes: [UInt8], range: Range<Int>, path: String) throws(Protobuf.DecodingError) -> ONNXGraph {
    var graph = ONNXGraph()
    var reader = Protobuf.Reader(bytes, range: range)
    while let field = try reader.next() {
      switch field.number {
      case 1:
        let here = "\(path).node[\(graph.nodes.count)]"
        graph.nodes.append(try ONNXNode.decode(bytes, range: try field.range(here), path: here))
      case 2: graph.name = try field.string("\(path).name", in: bytes)
      case 5:
        let here = "\(path).initializer[\(graph.initializers.count)]"
        graph.initializers.append(try ONNXTensor.decode(bytes, range: try field.range(here), path: here))
      case 11:
        let here = "\(path).input[\(graph.inputs.count)]"
        graph.inputs.append(try ONNXValueInfo.decode(bytes, range: try field.range(here), path: here))
      case 12:
        let here = "\(path).output[\(graph.outputs.count)]"
        graph.outputs.append(try ONNXValueInfo.decode(bytes, range: try field.range(here), path: here))
      case 15:
        throw Protobuf.DecodingError(message: "\(path) has sparse initializers, which SpecBench does not read", offset: field.offset)
      default: break
      }
    }
    return graph
  }
}

extension ONNXNode {
  func encode(into w: inout Protobuf.Writer) {
    for input in inputs { w.string(1, input) }
    for output in outputs { w.string(2, output) }
    if !name.isEmpty { w.string(3, name) }
    w.string(4, opType)
    for attribute in attributes { w.message(5) { attribute.encode(into: &$0) } }
    if !domain.isEmpty { w.string(7, domain) }
  }

  static func decode(_ bytes: [UInt8], range: Range<Int>, path: String) throws(Protobuf.DecodingError) -> ONNXNode {
    var node = ONNXNode("", inputs: [], outputs: [])
    var reader = Protobuf.Reader(bytes, range: range)
    while let field = try reader.next() {
      switch field.number {
      case 1: node.inputs.append(try field.string("\(path).input", in: bytes))
      case 2: node.outputs.append(try field.string("\(path).output", in: bytes))
      case 3: node.name = try field.string("\(path).name", in: bytes)
      case 4: node.opType = try field.string("\(path).op_type", in: bytes)
      case 5:
        let here = "\(path).attribute[\(node.attributes.count)]"
        node.attributes.append(try ONNXAttribute.decode(bytes, range: try field.range(here), path: here))
      case 7: node.domain = try field.string("\(path).domain", in: bytes)
      default: break
      }
    }
    return node
  }
}

extension ONNXAttribute {
  func encode(into w: inout Protobuf.Writer) {
    w.string(1, name)
    if let float { w.float(2, float) }
    if let int { w.int(3, int) }
    if let string { w.string(4, string) }
    if let tensor { w.message(5) { tensor.encode(into: &$0) } }
    for value in floats { w.float(7, value) }
    if !ints.isEmpty { w.packedInts(8, ints) }
    w.int(20, kind.rawValue)
  }

  static func decode(_ bytes: [UInt8], range: Range<Int>, path: String) throws(Protobuf.DecodingError) -> ONNXAttribute {
    var attribute = ONNXAttribute(name: "")
    var reader = Protobuf.Reader(bytes, range: range)
    while let field = try reader.next() {
      switch field.number {
      case 1: attribute.name = try field.string("\(path).name", in: bytes)
      case 2: attribute.float = try field.float("\(path).f")
      case 3: attribute.int = try field.int("\(path).i")
      case 4: attribute.string = String(decoding: bytes[try field.range("\(path).s")], as: UTF8.self)
      case 5: attribute.tensor = try ONNXTensor.decode(bytes, range: try field.range("\(path).t"), path: "\(path).t")
      case 7: attribute.floats += try field.floats("\(path).floats", in: bytes)
      case 8: attribute.ints += try field.ints("\(path).ints", in: bytes)
      case 20: attribute.kind = Kind(rawValue: try field.int("\(path).type")) ?? .undefined
      default: break
      }
    }
    return attribute
  }
}

extension ONNXTensor {
  func encode(into w: inout Protobuf.Writer) {
    if !dims.isEmpty { w.packedInts(1, dims) }
    w.int(2, dataType)
    w.string(8, name)
    var raw: [UInt8] = []
    if dataType == Self.float32 {
      raw.reserveCapacity(floats.count * 4)
      for value in floats { withUnsafeBytes(of: value.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
    } else {
      raw.reserveCapacity(ints.count * 8)
      for value in ints { withUnsafeBytes(of: Int64(value).littleEndian) { raw.append(contentsOf: $0) } }
    }
    w.bytes(9, raw)
  }

  /// Reads a tensor; its values from `float_data`, `int64_data`, `int32_data` or `raw_data`,
  /// checked against its dimensions.
  static func decode(_ bytes: [UInt8], range: Range<Int>, path: String) throws(Protobuf.DecodingError) -> ONNXTensor {
    var tensor = ONNXTensor(name: "", dims: [], floats: [])
    tensor.dataType = 0
    var raw: Range<Int>?
    var entries: [(key: String, value: String, offset: Int)] = []
    var external = false
    var reader = Protobuf.Reader(bytes, range: range)
    while let field = try reader.next() {
      switch field.number {
      case 1: tensor.dims += try field.ints("\(path).dims", in: bytes)
      case 2: tensor.dataType = try field.int("\(path).data_type")
      case 4: tensor.floats += try field.floats("\(path).float_data", in: bytes)
      case 5, 7: tensor.ints += try field.ints("\(path).int_data", in: bytes)
      case 8: tensor.name = try field.string("\(path).name", in: bytes)
      case 9: raw = try field.range("\(path).raw_data")
      case 13:
        // external_data: StringStringEntryProto {1: key, 2: value}.
        let here = "\(path).external_data[\(entries.count)]"
        var entry = Protobuf.Reader(bytes, range: try field.range(here))
        var (key, value) = ("", "")
        while let part = try entry.next() {
          if part.number == 1 { key = try part.string("\(here).key", in: bytes) }
          if part.number == 2 { value = try part.string("\(here).value", in: bytes) }
        }
        entries.append((key, value, field.offset))
      case 14: external = try field.int("\(path).data_location") == 1
      default: break
      }
    }
    guard tensor.dims.allSatisfy({ $0 >= 0 }),
      tensor.dims.reduce(1, { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }) < 1 << 40
    else {
      throw Protobuf.DecodingError(message: "\(path) (\(tensor.name)) has impossible dimensions \(tensor.dims)", offset: range.lowerBound)
    }
    if external {
      tensor.external = try externalData(entries, path: path, name: tensor.name, offset: range.lowerBound)
      return tensor
    }
    // Raw data: little-endian float32 (4 bytes) or int64 (8); other types' values are not read
    // (the importer refuses them where they are used).
    if let raw { try tensor.setValues(from: bytes, raw, path: path) }
    return tensor
  }

  /// The values from little-endian raw bytes (`bytes[raw]`), checked against the dimensions:
  /// float32 (4 bytes each) or int64 (8); other types' values are not read.
  mutating func setValues(from bytes: [UInt8], _ raw: Range<Int>, path: String) throws(Protobuf.DecodingError) {
    guard let width = [Self.float32: 4, Self.int64: 8][dataType] else { return }
    guard raw.count == elementCount * width else {
      throw Protobuf.DecodingError(
        message: "\(path) (\(name)) has \(raw.count) bytes of data for dimensions \(dims) (\(elementCount * width) expected)",
        offset: raw.lowerBound)
    }
    let words = stride(from: raw.lowerBound, to: raw.upperBound, by: width).map { Protobuf.littleEndian(bytes, at: $0, count: width) }
    if width == 4 {
      floats = words.map { Float(bitPattern: UInt32($0)) }
    } else {
      ints = words.map { Int(Int64(bitPattern: $0)) }
    }
  }

  /// Reads the `external_data` entries: `location` required, a plain file name beside the model
  /// (no folder, not hidden, no control character: `../../etc/passwd` and `/etc/passwd` are
  /// refused here, before any file is opened); `offset` and `length` decimal integers from 0;
  /// `checksum` ignored (SHA-1, optional in ONNX).
  static func externalData(_ entries: [(key: String, value: String, offset: Int)], path: String, name: String, offset: Int)
    throws(Protobuf.DecodingError) -> ExternalData
  {
    var location: String?
    var (start, length): (Int, Int?) = (0, nil)
    for entry in entries {
      switch entry.key {
      case "location": location = entry.value
      case "offset", "length":
        guard let number = Int(entry.value), number >= 0 else {
          throw Protobuf.DecodingError(
            message: "\(path) (\(name)): external data \(entry.key) must be a whole number from 0, got \(TextExcerpt.quoted(entry.value))",
            offset: entry.offset)
        }
        if entry.key == "offset" { start = number } else { length = number }
      case "checksum": break
      default:
        throw Protobuf.DecodingError(
          message: "\(path) (\(name)): unknown external data key \(TextExcerpt.quoted(entry.key)) (location, offset, length, checksum)",
          offset: entry.offset)
      }
    }
    guard let location else {
      throw Protobuf.DecodingError(
        message: "\(path) (\(name)) keeps its data in an external file but names none (location)", offset: offset)
    }
    guard !location.isEmpty, !location.contains("/"), !location.hasPrefix("."), location.utf8.count <= 255,
      !location.unicodeScalars.contains(where: TextExcerpt.isControl)
    else {
      throw Protobuf.DecodingError(
        message:
          "\(path) (\(name)): external data location \(TextExcerpt.quoted(location)) is not a plain file name beside the model; SpecBench reads weights only from files in the model's own folder",
        offset: offset)
    }
    return ExternalData(location: location, offset: start, length: length)
  }
}

extension ONNXValueInfo {
  func encode(into w: inout Protobuf.Writer) {
    w.string(1, name)
    w.message(2) { type in
      type.message(1) { tensorType in
        if let elementType { tensorType.int(1, elementType) }
        if let shape {
          tensorType.message(2) { shapeMessage in
            for dimension in shape {
              shapeMessage.message(1) { d in
                switch dimension {
                case .value(let value): d.int(1, value)
                case .symbol(let symbol): d.string(2, symbol)
                case .unknown: break
                }
              }
            }
          }
        }
      }
    }
  }

  static func decode(_ bytes: [UInt8], range: Range<Int>, path: String) throws(Protobuf.DecodingError) -> ONNXValueInfo {
    var info = ONNXValueInfo(name: "", elementType: nil, shape: nil)
    var reader = Protobuf.Reader(bytes, range: range)
    while let field = try reader.next() {
      if field.number == 1 { info.name = try field.string("\(path).name", in: bytes) }
      guard field.number == 2 else { continue }
      var type = Protobuf.Reader(bytes, range: try field.range("\(path).type"))
      while let typeField = try type.next() {
        guard typeField.number == 1 else { continue }
        var tensorType = Protobuf.Reader(bytes, range: try typeField.range("\(path).type.tensor_type"))
        while let t = try tensorType.next() {
          if t.number == 1 { info.elementType = try t.int("\(path).type.tensor_type.elem_type") }
          guard t.number == 2 else { continue }
          var shape: [Dimension] = []
          var shapeReader = Protobuf.Reader(bytes, range: try t.range("\(path).type.tensor_type.shape"))
          while let d = try shapeReader.next() {
            guard d.number == 1 else { continue }
            var dimension = Dimension.unknown
            var dimensionReader = Protobuf.Reader(bytes, range: try d.range("\(path).shape.dim"))
            while let v = try dimensionReader.next() {
              if v.number == 1 { dimension = .value(try v.int("\(path).shape.dim.dim_value")) }
              if v.number == 2 { dimension = .symbol(try v.string("\(path).shape.dim.dim_param", in: bytes)) }
            }
            shape.append(dimension)
          }
          info.shape = shape
        }
      }
    }
    return info
  }
}
