import Foundation
import SpecBenchTestSupport
import SpecKit
import TensorCore
import Testing

@testable import Datasets

/// The cache of parsed CSV arrays: a second open reads the same arrays bit for bit; a changed
/// file is read again; an entry that is damaged, cut short, swapped for a FIFO or a folder, or
/// that claims sizes it does not hold is ignored (and written again), never trusted.
@Suite("Data cache")
struct DataCacheTests {
  static func csv(rows: Int, seed: UInt64) -> String {
    var generator = SplitMix64(seed: seed, stream: "cache-csv")
    var text = "label,a,b,c\n"
    for _ in 0..<rows {
      text +=
        "\(["cat", "dog", "eel"][Int(generator.next() % 3)]),\(generator.next() % 256),\(Double(generator.next() % 1000) / 8),-\(generator.next() % 9)\n"
    }
    return text
  }

  static let source = DataSource.CSVSource(path: "data.csv", target: .name("label"), task: .classification)

  func setUp() throws -> (folder: String, path: String, cache: DataCache) {
    let folder = temporaryFolder()
    let path = folder + "/data.csv"
    try Data(Self.csv(rows: 500, seed: 1).utf8).write(to: URL(fileURLWithPath: path))
    return (folder, path, DataCache(folder: folder + "/cache", minimumSize: 0))
  }

  static func same(_ a: (dataset: Dataset, classNames: [String]?), _ b: (dataset: Dataset, classNames: [String]?)) -> Bool {
    a.dataset.inputs.scalars.map(\.bitPattern) == b.dataset.inputs.scalars.map(\.bitPattern)
      && a.dataset.inputs.shape == b.dataset.inputs.shape
      && a.dataset.targets == b.dataset.targets && a.classNames == b.classNames
  }

  func key(_ path: String) throws -> DataCache.Key { try DataCache.key(try FileAccess.openForReading(path), source: Self.source) }

  @Test func aSecondOpenReadsTheSameArraysFromTheCache() throws {
    let (_, path, cache) = try setUp()
    let first = try DatasetLoader.loadCSV(Self.source, path: path, cache: cache)
    let entry = cache.entryPath(try key(path))
    #expect(FileManager.default.fileExists(atPath: entry))
    let hit = try #require(cache.load(try key(path), normalize: false))
    #expect(Self.same(first, (hit.0, hit.classNames)))
    let second = try DatasetLoader.loadCSV(Self.source, path: path, cache: cache)
    #expect(Self.same(first, second))
    // Regression targets too, and normalize (not a parsing field) is the source's own.
    let numbers = PathText.folder(path) + "/numbers.csv"
    try Data(
      Self.csv(rows: 300, seed: 4).replacingOccurrences(of: "cat", with: "1").replacingOccurrences(of: "dog", with: "2")
        .replacingOccurrences(of: "eel", with: "3").utf8
    ).write(to: URL(fileURLWithPath: numbers))
    let regression = DataSource.CSVSource(path: "numbers.csv", target: .name("b"), task: .regression, normalize: true)
    let parsed = try DatasetLoader.loadCSV(regression, path: numbers, cache: cache)
    let cached = try DatasetLoader.loadCSV(regression, path: numbers, cache: cache)
    #expect(Self.same(parsed, cached) && cached.dataset.standardizesInputs)
    #expect(cache.load(try DataCache.key(try FileAccess.openForReading(numbers), source: regression), normalize: true) != nil)
    var asClasses = regression
    asClasses.task = .classification
    #expect(
      try DataCache.key(try FileAccess.openForReading(numbers), source: regression)
        != DataCache.key(try FileAccess.openForReading(numbers), source: asClasses))
  }

  /// A changed file is read again: a row added (its size), and a byte changed with the size and
  /// the modification time put back (the sampled hash).
  @Test func aChangedFileIsReadAgain() throws {
    let (_, path, cache) = try setUp()
    let before = try DatasetLoader.loadCSV(Self.source, path: path, cache: cache)
    try Data((Self.csv(rows: 500, seed: 1) + "dog,1,2,3\n").utf8).write(to: URL(fileURLWithPath: path))
    let grown = try DatasetLoader.loadCSV(Self.source, path: path, cache: cache)
    #expect(grown.dataset.count == before.dataset.count + 1)

    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let digit = try #require(bytes.indices.first { bytes[$0] == UInt8(ascii: "1") && $0 > 20 })
    bytes[digit] = UInt8(ascii: "2")
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    try FileManager.default.setAttributes([.modificationDate: attributes[.modificationDate]!], ofItemAtPath: path)
    let edited = try DatasetLoader.loadCSV(Self.source, path: path, cache: cache)
    #expect(!Self.same(edited, grown))
    #expect(Self.same(edited, try DatasetLoader.loadCSV(Self.source, path: path, cache: nil)))
  }

  /// Damaged entries: every byte flipped in turn at a sample of places, cut short, lengthened, a
  /// header claiming a billion rows, another file's key, a FIFO and a folder in its place: the
  /// load reads the CSV and gives its arrays; the entry is written again where it can be.
  @Test func aDamagedEntryIsIgnoredAndWrittenAgain() throws {
    let (_, path, cache) = try setUp()
    let good = try DatasetLoader.loadCSV(Self.source, path: path, cache: nil)
    _ = try DatasetLoader.loadCSV(Self.source, path: path, cache: cache)
    let entry = cache.entryPath(try key(path))
    let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: entry)))
    var damaged: [[UInt8]] = []
    for offset in stride(from: 0, to: original.count, by: max(1, original.count / 97)) {
      var bytes = original
      bytes[offset] ^= 0x5A
      damaged.append(bytes)
    }
    damaged.append(Array(original.prefix(original.count - 1)))
    damaged.append(Array(original.prefix(40)))
    damaged.append(original + [0])
    let text = String(decoding: original, as: UTF8.self)
    if let range = text.range(of: "\"rows\":500") {
      damaged.append(Array(text.replacingCharacters(in: range, with: "\"rows\":1000000000").utf8))
    }
    for bytes in damaged {
      try Data(bytes).write(to: URL(fileURLWithPath: entry))
      #expect(cache.load(try key(path), normalize: false) == nil || bytes == original)
      let loaded = try DatasetLoader.loadCSV(Self.source, path: path, cache: cache)
      #expect(Self.same(loaded, good))
      // Written again: the next open is a hit.
      #expect(cache.load(try key(path), normalize: false) != nil)
    }
    for special in ["fifo", "folder"] {
      try FileManager.default.removeItem(atPath: entry)
      if special == "fifo" {
        #expect(mkfifo(entry, 0o600) == 0)
      } else {
        try FileManager.default.createDirectory(atPath: entry, withIntermediateDirectories: false)
      }
      #expect(cache.load(try key(path), normalize: false) == nil)
      #expect(Self.same(try DatasetLoader.loadCSV(Self.source, path: path, cache: cache), good))
    }
  }

  /// A cache folder that cannot be written (a file in its place) never fails the load.
  @Test func aCacheThatCannotBeWrittenIsSkipped() throws {
    let (folder, path, _) = try setUp()
    try Data("not a folder".utf8).write(to: URL(fileURLWithPath: folder + "/blocked"))
    let blocked = DataCache(folder: folder + "/blocked/cache", minimumSize: 0)
    let loaded = try DatasetLoader.loadCSV(Self.source, path: path, cache: blocked)
    #expect(Self.same(loaded, try DatasetLoader.loadCSV(Self.source, path: path, cache: nil)))
  }

  /// Past its limit the entries used least recently go; clear empties it.
  @Test func theLeastRecentlyUsedEntriesGoPastTheLimit() throws {
    let (folder, _, _) = try setUp()
    var cache = DataCache(folder: folder + "/small", minimumSize: 0)
    var entries: [String] = []
    for i in 0..<4 {
      let path = folder + "/f\(i).csv"
      try Data(Self.csv(rows: 200, seed: UInt64(i)).utf8).write(to: URL(fileURLWithPath: path))
      if i == 0 {
        _ = try DatasetLoader.loadCSV(Self.source, path: path, cache: cache)
        let size = ((try FileManager.default.attributesOfItem(atPath: cache.entryPath(try key(path))))[.size] as? Int) ?? 0
        cache.limit = size * 2 + size / 2  // room for two entries
      } else {
        Thread.sleep(forTimeInterval: 0.02)
        _ = try DatasetLoader.loadCSV(Self.source, path: path, cache: cache)
      }
      entries.append(cache.entryPath(try key(path)))
    }
    #expect(entries.map { FileManager.default.fileExists(atPath: $0) } == [false, false, true, true])
    #expect(cache.clear().entries == 2)
    #expect(!entries.contains { FileManager.default.fileExists(atPath: $0) })
  }
}
