import CZlibShim
import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Datasets

/// The image data sources: the built-in digits, IDX as one-channel images, and NumPy's `.npy`
/// and `.npz` files written by real NumPy, with every malformed file refused by name.
@Suite("Image data")
struct ImageDataTests {
  @Test func digitsAreBuiltIn() throws {
    let (data, names) = try DatasetLoader.loadNamed(DataSpec(source: .builtin(name: "digits")), relativeTo: "")
    #expect(data.count == 1797)
    #expect(data.inputs.shape == [1797, 1, 8, 8])
    #expect(data.shape == DataShape(input: [1, 8, 8], target: .classes(10)))
    #expect(names == (0...9).map(String.init))
    guard case .classes(let labels) = data.targets else { throw TestFailure("digits are classes") }
    // The class counts of the UCI test set.
    #expect((0...9).map { c in labels.filter { $0 == c }.count } == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    // The first image (a 0), row 1 of its grey levels: 0 0 13 15 10 15 5 0, divided by 16.
    #expect(Array(data.inputs.scalars[8..<16]) == [0, 0, 13, 15, 10, 15, 5, 0].map { Float($0) / 16 })
    #expect(labels.prefix(10) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    #expect(data.inputs.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
  }

  @Test func idxSamplesAreOneChannelImagesAndOlderModelsStillTakeThem() throws {
    let images = DataTests.idx(dims: [2, 2, 3], body: Array(repeating: 9, count: 12))
    let labels = DataTests.idx(dims: [2], body: [0, 1])
    let data = try IDXData.load(images: images, labels: labels, imagesPath: "i", labelsPath: "l")
    #expect(data.inputs.shape == [2, 1, 2, 3])
    #expect(data.shape.input == [1, 2, 3])
    let source = DataSource.idx(images: "i", labels: "l")
    #expect(source.accepts(modelInput: [1, 2, 3], samples: data.shape.input))
    #expect(source.accepts(modelInput: [2, 3], samples: data.shape.input))
    #expect(!source.accepts(modelInput: [6], samples: data.shape.input))
    #expect(!DataSource.builtin(name: "digits").accepts(modelInput: [8, 8], samples: [1, 8, 8]))
  }

  /// Arrays NumPy writes in every accepted dtype, order and archive form, read back exactly.
  @Test(.enabled(if: PythonPeer.isAvailable, "python3 with numpy is not installed: skipped"))
  func numpyFilesAreReadAsNumPyWroteThem() throws {
    let folder = temporaryFolder("npy")
    let script = """
      import numpy as np, sys, os
      d = sys.argv[1]
      x = (np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4) - 7) / 4
      for t in ['<f4', '>f4', '<f8', '<f2', 'i1', '>i2', '<i4', '<i8', 'u1', '<u2', '>u4', '<u8', '?']:
          name = t.replace('<', 'le').replace('>', 'be').replace('?', 'bool')
          v = np.abs(x * 4).astype(t) if t[-2:] in ('u1', 'u2', 'u4', 'u8') else (x > 0 if t == '?' else (x * 4).astype(t) if 'i' in t else x.astype(t))
          np.save(os.path.join(d, name + '.npy'), v)
      np.save(os.path.join(d, 'fortran.npy'), np.asfortranarray(x.astype('<f4')))
      np.save(os.path.join(d, 'labels.npy'), np.array([3, 1], dtype=np.int64))
      np.save(os.path.join(d, 'values.npy'), np.array([[0.5, 1], [2, -3]], dtype=np.float32))
      np.savez(os.path.join(d, 'plain.npz'), x=x.astype(np.float32), y=np.array([0, 2], dtype=np.uint8))
      np.savez_compressed(os.path.join(d, 'packed.npz'), images=x.astype(np.float32), labels=np.array([1, 0], dtype=np.int32))
      with open(os.path.join(d, 'v2.npy'), 'wb') as f:
          np.lib.format.write_array(f, x.astype('<f4'), version=(2, 0))
      """
    let result = try PythonPeer.run(script, [folder])
    #expect(result.status == 0, "\(result.stderr)")
    let x = (0..<24).map { (Double($0) - 7) / 4 }
    for (name, expected) in [
      ("lef4", x), ("bef4", x), ("lef8", x), ("lef2", x), ("fortran", x), ("v2", x),
      ("i1", x.map { ($0 * 4).rounded(.towardZero) }), ("bei2", x.map { $0 * 4 }), ("lei4", x.map { $0 * 4 }), ("lei8", x.map { $0 * 4 }),
      ("u1", x.map { abs($0 * 4) }), ("leu2", x.map { abs($0 * 4) }), ("beu4", x.map { abs($0 * 4) }), ("leu8", x.map { abs($0 * 4) }),
      ("bool", x.map { $0 > 0 ? 1 : 0 }),
    ] {
      let array = try NumPyData.parse(try FileAccess.read("\(folder)/\(name).npy"), path: name)
      #expect(array.shape == [2, 3, 4], "\(name)")
      #expect(array.values == expected, "\(name): \(array.values)")
    }
    let classes = try DatasetLoader.load(
      DataSpec(source: .numpy(.init(files: .npy(inputs: "lef4.npy", targets: "labels.npy"), scale: 2))), relativeTo: folder)
    #expect(classes.shape == DataShape(input: [3, 4], target: .classes(4)))
    #expect(classes.inputs.scalars == x.map { Float($0 * 2) })
    #expect(classes.targets == .classes([3, 1]))
    let values = try DatasetLoader.load(
      DataSpec(source: .numpy(.init(files: .npy(inputs: "lef4.npy", targets: "values.npy")))), relativeTo: folder)
    #expect(values.shape.target == .values(width: 2))
    // Integers as regression values when the task says so.
    let asValues = try DatasetLoader.load(
      DataSpec(source: .numpy(.init(files: .npy(inputs: "lef4.npy", targets: "labels.npy"), task: .regression))), relativeTo: folder)
    #expect(asValues.shape.target == .values(width: 1))
    let plain = try DatasetLoader.load(
      DataSpec(source: .numpy(.init(files: .npz(path: "plain.npz", inputs: "x", targets: "y")))), relativeTo: folder)
    #expect(plain.inputs.scalars == x.map { Float($0) })
    #expect(plain.targets == .classes([0, 2]))
    let packed = try DatasetLoader.load(
      DataSpec(source: .numpy(.init(files: .npz(path: "packed.npz", inputs: "images", targets: "labels")))), relativeTo: folder)
    #expect(packed.inputs.scalars == x.map { Float($0) })
    #expect(packed.targets == .classes([1, 0]))
  }

  /// Malformed files, each refused with what is wrong: wrong dtypes, object arrays, truncation,
  /// bytes beyond, a bad header, a missing array, lengths that disagree, a damaged archive.
  @Test(.enabled(if: PythonPeer.isAvailable, "python3 with numpy is not installed: skipped"))
  func malformedNumpyFilesAreRefusedWithAClearMessage() throws {
    let folder = temporaryFolder("npy-bad")
    let script = """
      import numpy as np, sys, os
      d = sys.argv[1]
      np.save(os.path.join(d, 'complex.npy'), np.ones(3, dtype=np.complex64))
      np.save(os.path.join(d, 'strings.npy'), np.array(['a', 'b']))
      np.save(os.path.join(d, 'objects.npy'), np.array([{'a': 1}, None], dtype=object), allow_pickle=True)
      np.save(os.path.join(d, 'structured.npy'), np.zeros(2, dtype=[('a', '<f4'), ('b', '<i4')]))
      np.save(os.path.join(d, 'good.npy'), np.ones((4, 3), dtype=np.float32))
      np.save(os.path.join(d, 'three.npy'), np.array([0, 1, 1], dtype=np.int64))
      np.save(os.path.join(d, 'four.npy'), np.array([0, 1, 0, 1], dtype=np.int16))
      np.save(os.path.join(d, 'negative.npy'), np.array([0, -1, 1, 1], dtype=np.int64))
      np.save(os.path.join(d, 'nan.npy'), np.array([[np.nan, 1, 2]] * 4, dtype=np.float32))
      np.savez_compressed(os.path.join(d, 'pair.npz'), x=np.ones((4, 3), dtype=np.float32), y=np.array([0, 1, 0, 1]))
      """
    let result = try PythonPeer.run(script, [folder])
    #expect(result.status == 0, "\(result.stderr)")
    func refusal(_ files: DataSource.NumPySource.Files) -> String {
      do {
        _ = try DatasetLoader.load(DataSpec(source: .numpy(.init(files: files))), relativeTo: folder)
        return "accepted"
      } catch { return error.description }
    }
    let good = try FileAccess.read("\(folder)/good.npy")
    func write(_ name: String, _ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: "\(folder)/\(name)")) }
    try write("truncated.npy", Array(good.dropLast(5)))
    try write("beyond.npy", good + [0, 0, 0, 0])
    try write("notnumpy.npy", Array("hello, world".utf8))
    var header = good
    let brace = header.firstIndex(of: UInt8(ascii: "{"))!
    header[brace] = UInt8(ascii: "[")
    try write("header.npy", header)
    // Shapes past any memory, and one whose size overflows, with no data behind them.
    func npy(_ header: String) -> [UInt8] {
      let text = Array(header.utf8) + [UInt8(ascii: "\n")]
      return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(text.count & 255), UInt8(text.count >> 8)] + text
    }
    try write("huge.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }"))
    try write("overflow.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }"))
    var damaged = try FileAccess.read("\(folder)/pair.npz")
    damaged[60] ^= 0xFF  // inside the first member's deflated data
    try write("damaged.npz", damaged)
    try write("cut.npz", Array(try FileAccess.read("\(folder)/pair.npz").prefix(40)))
    let cases: [(DataSource.NumPySource.Files, String)] = [
      (.npy(inputs: "complex.npy", targets: "three.npy"), "holds complex values"),
      (.npy(inputs: "strings.npy", targets: "three.npy"), "holds unicode string values"),
      (.npy(inputs: "objects.npy", targets: "three.npy"), "object array ('|O'): its values are a Python pickle, which is code"),
      (.npy(inputs: "structured.npy", targets: "three.npy"), "has a structured dtype"),
      (.npy(inputs: "truncated.npy", targets: "three.npy"), "is truncated: shape [4, 3] of <f4 needs 48 bytes of data, the file has 43"),
      (.npy(inputs: "beyond.npy", targets: "three.npy"), "has 4 bytes beyond the 48 its shape [4, 3] of <f4 needs"),
      (.npy(inputs: "notnumpy.npy", targets: "three.npy"), "is not a NumPy .npy file"),
      (.npy(inputs: "header.npy", targets: "three.npy"), "has a header that is not NumPy's"),
      // Inputs are mapped, not held in memory: the size is checked against the file's.
      (.npy(inputs: "huge.npy", targets: "three.npy"), "is truncated: shape [99999999999] of <f4 needs 399999999996 bytes"),
      (.npy(inputs: "overflow.npy", targets: "three.npy"), "more values (over 2^40)"),
      (.npy(inputs: "good.npy", targets: "three.npy"), "the targets have shape [3], but the inputs"),
      (.npy(inputs: "good.npy", targets: "negative.npy"), "label 1 is -1.0; class labels are whole numbers from 0"),
      (.npy(inputs: "nan.npy", targets: "pair.npz"), "is not a NumPy .npy file"),
      (.npy(inputs: "nan.npy", targets: "four.npy"), "value 0 (sample 0) is nan, which is not a finite float32"),
      (.npz(path: "pair.npz", inputs: "images", targets: "y"), "has no array \"images\"; its arrays are \"x\", \"y\""),
      (.npz(path: "damaged.npz", inputs: "x", targets: "y"), "the archive is damaged"),
      (.npz(path: "cut.npz", inputs: "x", targets: "y"), "is not an .npz archive"),
      (.npz(path: "good.npy", inputs: "x", targets: "y"), "is not an .npz archive"),
    ]
    for (files, expected) in cases {
      let message = refusal(files)
      #expect(message.contains(expected), "\(files): \(message)")
    }
    #expect(refusal(.npy(inputs: "good.npy", targets: "four.npy")) == "accepted")
  }

  /// A zip archive made by hand: one stored member, its central entry's sizes and offset either
  /// plain or (`zip64`) 0xFFFFFFFF with an extra field that holds `extraValues` of them.
  static func zip(_ name: String, _ data: [UInt8], zip64: Bool = false, extraValues: Int = 3) -> [UInt8] {
    func u16(_ v: Int) -> [UInt8] { [UInt8(v & 255), UInt8(v >> 8 & 255)] }
    func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16 & 0xFFFF) }
    let crc = data.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
    let nameBytes = Array(name.utf8)
    let local =
      u32(0x0403_4B50) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(Int(crc)) + u32(data.count) + u32(data.count)
      + u16(nameBytes.count) + u16(0) + nameBytes + data
    // Zip64's order: the size, the compressed size, the local header's offset (0).
    let extra = zip64 ? u16(1) + u16(8 * extraValues) + [data.count, data.count, 0].prefix(extraValues).flatMap { u32($0) + u32(0) } : []
    let field = zip64 ? 0xFFFF_FFFF : data.count
    let central =
      u32(0x0201_4B50) + u16(45) + u16(45) + u16(0) + u16(0) + u16(0) + u16(0) + u32(Int(crc)) + u32(field) + u32(field)
      + u16(nameBytes.count) + u16(extra.count) + u16(0) + u16(0) + u16(0) + u32(0) + u32(zip64 ? 0xFFFF_FFFF : 0) + nameBytes + extra
    let end = u32(0x0605_4B50) + u16(0) + u16(0) + u16(1) + u16(1) + u32(central.count) + u32(local.count) + u16(0)
    return local + central + end
  }

  /// Zip64 fields read from a central entry's extra data, and an extra field that claims more
  /// than the entry holds refused as damaged (its values are never read past the entry).
  @Test func zip64EntriesAreReadAndAShortExtraFieldIsRefused() throws {
    let npy: [UInt8] = {
      let header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }".utf8) + [UInt8(ascii: "\n")]
      return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count), 0] + header + [0, 0, 128, 63, 0, 0, 0, 64]
    }()
    for archive in [Self.zip("x.npy", npy), Self.zip("x.npy", npy, zip64: true)] {
      let arrays = try NumPyData.parseArchive(archive, path: "a.npz", wanted: ["x"])
      #expect(arrays["x"]?.values == [1, 2])
    }
    // The extra field's header claims 24 bytes of values but the entry has room for 8.
    var short = Self.zip("x.npy", npy, zip64: true, extraValues: 1)
    let idAt = short.count - 22 - 12
    #expect(short[idAt] == 1 && short[idAt + 2] == 8)
    short[idAt + 2] = 24
    #expect(throws: DataError.numpy(path: "a.npz", message: "has a damaged zip64 entry for \"x.npy\"")) {
      try NumPyData.parseArchive(short, path: "a.npz", wanted: ["x"])
    }
  }
}
