import Foundation
import SpecBenchTestSupport
import Testing

@testable import SpecKit

@Suite("safetensors")
struct SafeTensorsTests {
  static let sample = SafeTensors.Contents(
    tensors: [
      "param/d.weight": StoredTensor(shape: [2, 3], scalars: [1, -2, 3.5, 0, .leastNonzeroMagnitude, -.greatestFiniteMagnitude]),
      "param/d.bias": StoredTensor(shape: [2], scalars: [0.25, -0.0]),
      "scalar": StoredTensor(shape: [], scalars: [7]),
      "empty": StoredTensor(shape: [0, 4], scalars: []),
    ],
    metadata: ["format": "pt", "note": "é"])

  @Test func roundTripsExactly() throws {
    let bytes = SafeTensors.encode(Self.sample)
    let back = try SafeTensors.decode(bytes)
    #expect(back == Self.sample)
    #expect(back.tensors["param/d.bias"]!.scalars[1].sign == .minus)
  }

  @Test func headerIsPaddedSoDataStartsAlignedToEightBytes() {
    let bytes = SafeTensors.encode(Self.sample)
    let length = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    #expect((8 + Int(length)) % 8 == 0)
    #expect(bytes[8] == UInt8(ascii: "{"))
  }

  @Test func encodingIsDeterministic() {
    #expect(SafeTensors.encode(Self.sample) == SafeTensors.encode(Self.sample))
  }

  /// A file whose header is `header` (padded) followed by `data` bytes.
  static func file(header: String, dataBytes: Int) -> [UInt8] {
    var head = Array(header.utf8)
    while head.count % 8 != 0 { head.append(0x20) }
    var out: [UInt8] = []
    withUnsafeBytes(of: UInt64(head.count).littleEndian) { out.append(contentsOf: $0) }
    return out + head + [UInt8](repeating: 0, count: dataBytes)
  }

  static let malformed: [(String, [UInt8], SafeTensorsProblem)] = [
    ("empty file", [], .tooShort(bytes: 0)),
    ("truncated length", [1, 0, 0], .tooShort(bytes: 3)),
    ("length past the end", [200, 0, 0, 0, 0, 0, 0, 0] + Array("{}".utf8), .headerLength(declared: 200, available: 2)),
    ("huge length", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7B], .headerLength(declared: UInt64.max, available: 1)),
    (
      "header not JSON", file(header: "{\"a\": ", dataBytes: 0),
      .header("line 1, column 9: expected a JSON value, found the end of the text")
    ),
    ("header an array", file(header: "[1]", dataBytes: 0), .header("it must be a JSON object starting with '{'")),
    (
      "wrong dtype", file(header: #"{"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}"#, dataBytes: 4),
      .unsupportedDType(name: "a", dtype: "F16")
    ),
    (
      "unknown dtype", file(header: #"{"a": {"dtype": "F99", "shape": [2], "data_offsets": [0, 8]}}"#, dataBytes: 8),
      .unknownDType(name: "a", dtype: "F99")
    ),
    (
      "size mismatch", file(header: #"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, dataBytes: 8),
      .sizeMismatch(name: "a", shape: [3], dtype: "F32", expectedBytes: 12, spanBytes: 8)
    ),
    (
      "huge declared shape",
      file(header: #"{"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}}"#, dataBytes: 8),
      .shapeTooLarge(name: "a", shape: [4_294_967_296, 4_294_967_296])
    ),
    (
      "offsets past the end", file(header: #"{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}"#, dataBytes: 8),
      .offsetsOutOfBounds(name: "a", begin: 0, end: 16, dataBytes: 8)
    ),
    (
      "end before begin", file(header: #"{"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}}"#, dataBytes: 8),
      .offsetsOutOfBounds(name: "a", begin: 8, end: 4, dataBytes: 8)
    ),
    (
      "negative offset", file(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}"#, dataBytes: 8),
      .offsetsOutOfBounds(name: "a", begin: -4, end: 0, dataBytes: 8)
    ),
    (
      "overlapping",
      file(
        header:
          #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#,
        dataBytes: 12), .notContiguous(name: "b", begin: 4, expected: 8)
    ),
    (
      "gap", file(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, dataBytes: 8),
      .notContiguous(name: "a", begin: 4, expected: 0)
    ),
    (
      "trailing bytes", file(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, dataBytes: 8),
      .trailingBytes(count: 4)
    ),
    (
      "duplicate name",
      file(
        header:
          #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#,
        dataBytes: 8), .duplicateName("a")
    ),
    (
      "missing shape", file(header: #"{"a": {"dtype": "F32", "data_offsets": [0, 4]}}"#, dataBytes: 4),
      .entry(name: "a", reason: "shape must be an array of non-negative integers")
    ),
    (
      "extra field", file(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}"#, dataBytes: 4),
      .entry(name: "a", reason: "unknown field \"x\"")
    ),
    ("bad metadata", file(header: #"{"__metadata__": {"k": 1}}"#, dataBytes: 0), .header("__metadata__.k must be a string")),
  ]

  @Test(arguments: malformed)
  func malformedFilesAreRefusedWithAReason(label: String, bytes: [UInt8], expected: SafeTensorsProblem) {
    #expect(throws: expected, "\(label)") { try SafeTensors.decode(bytes) }
    #expect(!expected.description.isEmpty)
  }

  @Test func everyTruncationOfAValidFileIsRefusedWithoutACrash() {
    let bytes = SafeTensors.encode(Self.sample)
    for length in 0..<bytes.count {
      #expect(throws: SafeTensorsProblem.self) { try SafeTensors.decode(Array(bytes[0..<length])) }
    }
  }

  /// Corrupted files are refused, or decode to contents that are whole (every tensor's values
  /// fill its shape) and survive an encode and decode unchanged; both happen.
  @Test func randomCorruptionIsRefusedOrDecodesToWholeContents() throws {
    var generator = SplitMix64(state: 99)
    let original = SafeTensors.encode(Self.sample)
    var (refused, accepted) = (0, 0)
    for _ in 0..<2000 {
      var bytes = original
      let flips = Int(generator.next() % 4) + 1
      for _ in 0..<flips {
        let position = Int(generator.next() % UInt64(bytes.count))
        bytes[position] = UInt8(truncatingIfNeeded: generator.next())
      }
      guard let decoded = try? SafeTensors.decode(bytes) else {
        refused += 1
        continue
      }
      accepted += 1
      for (name, tensor) in decoded.tensors {
        #expect(tensor.scalars.count == tensor.shape.reduce(1, *), "\(name)")
      }
      let again = try SafeTensors.decode(SafeTensors.encode(decoded))
      #expect(again.tensors.keys.sorted() == decoded.tensors.keys.sorted())
      for (name, tensor) in decoded.tensors {
        #expect(again.tensors[name]?.shape == tensor.shape)
        #expect(again.tensors[name]?.scalars.map(\.bitPattern) == tensor.scalars.map(\.bitPattern), "\(name)")
      }
      #expect(again.metadata == decoded.metadata)
    }
    #expect(refused > 1000 && accepted > 20, "refused \(refused), accepted \(accepted)")
  }
}

/// Interop with the Python safetensors package and NumPy, for real.
@Suite("safetensors with Python", .enabled(if: PythonPeer.isAvailable, "python3 with numpy and safetensors is not installed: skipped"))
struct SafeTensorsPythonTests {
  @Test func pythonReadsWhatSpecBenchWrites() throws {
    let folder = temporaryFolder()
    let path = folder + "/out.safetensors"
    let tensors: [String: StoredTensor] = [
      "param/dense1.weight": StoredTensor(shape: [3, 2], scalars: [0.5, -1.25, 3e-8, 65504, -0.0, 1]),
      "opt/dense1.weight/exp_avg": StoredTensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6]),
      "scalar": StoredTensor(shape: [], scalars: [2.5]),
    ]
    try Data(SafeTensors.encode(.init(tensors: tensors, metadata: ["who": "specbench"]))).write(to: URL(fileURLWithPath: path))
    let script = """
      import sys, json
      import numpy as np
      from safetensors.numpy import load_file
      from safetensors import safe_open
      t = load_file(sys.argv[1])
      out = {k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": [float(x) for x in v.reshape(-1)]} for k, v in t.items()}
      with safe_open(sys.argv[1], "np") as f:
          out["__metadata__"] = f.metadata()
      print(json.dumps(out))
      """
    let result = try PythonPeer.run(script, [path])
    #expect(result.status == 0, "\(result.stderr)")
    let read = try JSONParser.parse(result.stdout)
    for (name, tensor) in tensors {
      let entry = try #require(read.objectValue?[name]?.objectValue, "\(name) missing in \(result.stdout)")
      #expect(entry["dtype"]?.stringValue == "float32")
      #expect(entry["shape"]?.arrayValue?.compactMap { $0.numberValue?.int } == tensor.shape)
      #expect(entry["values"]?.arrayValue?.compactMap { $0.numberValue.map { Float($0.double) } } == tensor.scalars)
    }
    #expect(read.objectValue?["__metadata__"]?.objectValue?["who"]?.stringValue == "specbench")
  }

  @Test func specBenchReadsWhatPythonWrites() throws {
    let folder = temporaryFolder()
    let path = folder + "/py.safetensors"
    let script = """
      import sys
      import numpy as np
      from safetensors.numpy import save_file
      a = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 3
      b = np.array([1e-30, -2.0, np.float32(np.pi)], dtype=np.float32)
      save_file({"a": a, "b": b, "c": np.zeros((0, 2), np.float32)}, sys.argv[1], metadata={"m": "x"})
      print(" ".join(repr(float(x)) for x in np.concatenate([a.reshape(-1), b])))
      """
    let result = try PythonPeer.run(script, [path])
    #expect(result.status == 0, "\(result.stderr)")
    let expected = result.stdout.split(separator: " ").map { Float(Double($0.trimmingCharacters(in: .whitespacesAndNewlines))!) }
    let contents = try SafeTensors.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    #expect(contents.tensors["a"]?.shape == [3, 4])
    #expect(contents.tensors["b"]?.shape == [3])
    #expect(contents.tensors["c"]?.shape == [0, 2])
    #expect((contents.tensors["a"]!.scalars + contents.tensors["b"]!.scalars) == expected)
    #expect(contents.metadata == ["m": "x"])
  }

  @Test func pythonsFloat64FilesAreRefusedClearly() throws {
    let path = temporaryFolder() + "/f64.safetensors"
    let result = try PythonPeer.run(
      "import sys, numpy as np\nfrom safetensors.numpy import save_file\nsave_file({'w': np.ones(3)}, sys.argv[1])", [path])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(throws: SafeTensorsProblem.unsupportedDType(name: "w", dtype: "F64")) {
      try SafeTensors.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }
  }
}
