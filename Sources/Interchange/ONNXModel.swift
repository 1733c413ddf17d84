import SpecKit

/// The part of ONNX's `onnx.proto` that SpecBench reads and writes (field numbers from ONNX's
/// published schema, IR version 8 and later): a model with its operator sets and metadata, one
/// graph of nodes, initializers (the weights) and typed inputs and outputs.
struct ONNXModel {
  var irVersion = 8
  /// (domain, version); "" is the default domain `ai.onnx`.
  var opsets: [ONNXOpset] = [ONNXOpset(domain: "", version: 17)]
  var producerName = ""
  var producerVersion = ""
  var docString = ""
  var metadata: [(key: String, value: String)] = []
  var graph = ONNXGraph()
}

struct ONNXOpset: Equatable {
  var domain: String
  var version: Int
}

struct ONNXGraph: Equatable {
  var name = ""
  var nodes: [ONNXNode] = []
  var initializers: [ONNXTensor] = []
  var inputs: [ONNXValueInfo] = []
  var outputs: [ONNXValueInfo] = []
}

struct ONNXNode: Equatable {
  var inputs: [String]
  var outputs: [String]
  var name = ""
  var opType: String
  var domain = ""
  var attributes: [ONNXAttribute] = []

  init(_ opType: String, inputs: [String], outputs: [String], name: String = "", attributes: [ONNXAttribute] = []) {
    (self.opType, self.inputs, self.outputs, self.name, self.attributes) = (opType, inputs, outputs, name, attributes)
  }

  func attribute(_ name: String) -> ONNXAttribute? { attributes.first { $0.name == name } }
}

/// An attribute of a node; one of its values is set, as `type` says.
struct ONNXAttribute: Equatable {
  /// AttributeProto.AttributeType.
  enum Kind: Int {
    case undefined = 0
    case float = 1
    case int = 2
    case string = 3
    case tensor = 4
    case graph = 5
    case floats = 6
    case ints = 7
    case strings = 8
  }
  var name: String
  var kind: Kind = .undefined
  var float: Float?
  var int: Int?
  var string: String?
  var tensor: ONNXTensor?
  var floats: [Float] = []
  var ints: [Int] = []

  static func float(_ name: String, _ value: Float) -> ONNXAttribute { ONNXAttribute(name: name, kind: .float, float: value) }
  static func int(_ name: String, _ value: Int) -> ONNXAttribute { ONNXAttribute(name: name, kind: .int, int: value) }
  static func string(_ name: String, _ value: String) -> ONNXAttribute { ONNXAttribute(name: name, kind: .string, string: value) }
  static func ints(_ name: String, _ values: [Int]) -> ONNXAttribute { ONNXAttribute(name: name, kind: .ints, ints: values) }
}

/// A tensor: float32 (data type 1) or int64 (data type 7) values in row-major order.
struct ONNXTensor: Equatable {
  static let float32 = 1
  static let int64 = 7

  var name: String
  var dims: [Int]
  var dataType: Int
  var floats: [Float] = []
  var ints: [Int] = []
  /// Where its values are when they are kept outside the model (ONNX external data), until
  /// `ONNXModel.readExternalData` reads them.
  var external: ExternalData?

  /// ONNX's external data: `location` (a file name beside the model), `offset` and `length` in
  /// bytes (`length` nil: to the end of the file), as the tensor's `external_data` entries say.
  struct ExternalData: Equatable {
    var location: String
    var offset: Int
    var length: Int?
  }

  init(name: String, dims: [Int], floats: [Float]) {
    (self.name, self.dims, self.dataType, self.floats) = (name, dims, Self.float32, floats)
  }

  init(name: String, dims: [Int], ints: [Int]) {
    (self.name, self.dims, self.dataType, self.ints) = (name, dims, Self.int64, ints)
  }

  /// The number of elements its dimensions say.
  var elementCount: Int { dims.reduce(1, *) }
}

/// A graph input or output: its name, element type and shape (a dimension is a number, a
/// symbol such as `batch`, or unknown).
struct ONNXValueInfo: Equatable {
  enum Dimension: Equatable {
    case value(Int)
    case symbol(String)
    case unknown
  }
  var name: String
  var elementType: Int? = ONNXTensor.float32
  var shape: [Dimension]?
}

extension ONNXModel {
  /// Reads the values of every tensor kept in an external file (initializers, and `Constant`
  /// nodes' values) from `folder`, the model's own: each file once, as a regular file (a FIFO,
  /// device or folder is refused at once) within `limit` bytes, each tensor's `offset` and
  /// `length` checked against the file's size and against its dimensions before a value is
  /// made.
  mutating func readExternalData(folder: String, limit: Int = 4 << 30) throws(InterchangeError) {
    var files: [String: [UInt8]] = [:]
    func read(_ tensor: inout ONNXTensor, at path: String) throws(InterchangeError) {
      guard let external = tensor.external else { return }
      let file = PathText.join(folder, external.location)
      if files[external.location] == nil {
        do { files[external.location] = try FileAccess.read(file, limit: limit) } catch {
          throw .malformed(
            file: file, offset: 0, message: "\(path) (\(tensor.name)) keeps its data here, which cannot be read: \(error.description)")
        }
      }
      let bytes = files[external.location]!
      let length = external.length ?? max(0, bytes.count - external.offset)
      let (end, overflow) = external.offset.addingReportingOverflow(length)
      guard !overflow, end <= bytes.count else {
        throw .malformed(
          file: file, offset: external.offset,
          message:
            "\(path) (\(tensor.name)): external data at offset \(external.offset), \(length) bytes, reaches past the file's end (\(bytes.count) bytes)"
        )
      }
      tensor.external = nil
      do { try tensor.setValues(from: bytes, external.offset..<end, path: path) } catch {
        throw .malformed(file: file, offset: error.offset, message: error.message)
      }
    }
    for i in graph.initializers.indices { try read(&graph.initializers[i], at: "graph.initializer[\(i)]") }
    for i in graph.nodes.indices {
      for j in graph.nodes[i].attributes.indices where graph.nodes[i].attributes[j].tensor?.external != nil {
        try read(&graph.nodes[i].attributes[j].tensor!, at: "graph.node[\(i)].attribute[\(j)].t")
      }
    }
  }
}
