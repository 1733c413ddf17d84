import Foundation
import SpecKit
import Synchronization
import TensorCore

#if canImport(Glibc)
  import Glibc
#endif

/// Parsed CSV arrays kept between opens, so that the second open of a large file is a read of
/// its arrays, not a parse.
///
/// **Where.** `$SPECBENCH_CACHE_DIR`, else `$XDG_CACHE_HOME/specbench/data`, else
/// `~/.cache/specbench/data`; `SPECBENCH_CACHE=off` turns it off. Files under `minimumSize`
/// (1 MiB) are not cached: they parse in milliseconds. Clearing it is deleting the folder
/// (`specbench cache --clear` does). It holds at most `limit` bytes (2 GiB): the entries used
/// least recently go first.
///
/// **Key.** An entry is used only when everything that decides its arrays is as it was: the
/// file's absolute path, size, modification time (ns), inode and device; a hash of its first
/// and last 64 KiB and of 64 blocks of 4 KiB spread over it; and the fields that change parsing
/// (target, header, delimiter, task). The entry's name is a hash of that key, and its header
/// repeats the key, compared in full.
///
/// **Trust.** An entry is a file like any other: its header is read within 1 MiB, its sizes are
/// checked against the entry's own size before anything is allocated, its arrays against a
/// checksum (a 64-bit hash of every byte), its labels against the class count. An entry that
/// fails any check is ignored and written again; a cache that cannot be written (read-only,
/// full) is skipped without a word to the load.
struct DataCache: Sendable {
  var folder: String
  var minimumSize = 1 << 20
  var limit = 2 << 30

  static let magic = Array("SPECBENCH-DATA-CACHE-2\n".utf8)

  /// The cache the environment asks for, or nil when it is off or has no place.
  static func fromEnvironment() -> DataCache? {
    let environment = ProcessInfo.processInfo.environment
    if environment["SPECBENCH_CACHE"] == "off" { return nil }
    if let folder = environment["SPECBENCH_CACHE_DIR"], !folder.isEmpty { return DataCache(folder: folder) }
    if let base = environment["XDG_CACHE_HOME"], base.hasPrefix("/") { return DataCache(folder: base + "/specbench/data") }
    if let home = environment["HOME"], home.hasPrefix("/") { return DataCache(folder: home + "/.cache/specbench/data") }
    return nil
  }

  /// What an entry is the parse of.
  struct Key: Equatable {
    var path: String
    var size: Int
    var modified: Int64
    var inode: UInt64
    var device: UInt64
    var sample: UInt64
    var fields: String

    var text: String { "\(path)\n\(size)\n\(modified)\n\(inode)\n\(device)\n\(String(sample, radix: 16))\n\(fields)" }
  }

  /// The key of `file` read with `source`: its identity, a hash of samples of its bytes, the
  /// parsing fields.
  static func key(_ file: OpenFile, source: DataSource.CSVSource) throws(DataError) -> Key {
    let path = file.path.hasPrefix("/") ? file.path : FileManager.default.currentDirectoryPath + "/" + file.path
    var samples: [Range<Int>] = [0..<min(file.size, 64 << 10), max(0, file.size - (64 << 10))..<file.size]
    for k in 0..<64 {
      let start = file.size / 64 * k
      samples.append(start..<min(file.size, start + 4096))
    }
    var hash = Hash64()
    var buffer = [UInt8](repeating: 0, count: 64 << 10)
    for range in samples where !range.isEmpty {
      let n = try FastCSV.read(file, into: &buffer, at: range.lowerBound, count: range.count)
      buffer.withUnsafeBytes { hash.add(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
    }
    let target: String
    switch source.target {
    case .name(let name): target = "name:" + name
    case .index(let index): target = "index:\(index)"
    }
    let fields = "target=\(target)\nheader=\(source.header)\ndelimiter=\(source.delimiter)\ntask=\(source.task.rawValue)"
    return Key(
      path: path, size: file.size, modified: file.modified, inode: file.inode, device: file.device, sample: hash.value, fields: fields)
  }

  func entryPath(_ key: Key) -> String {
    var hash = Hash64()
    Array(key.text.utf8).withUnsafeBytes { hash.add($0) }
    return folder + "/" + String(hash.value, radix: 16) + ".cache"
  }

  // MARK: - Reading

  /// The arrays of `key`, when an entry holds them and passes every check; nil otherwise.
  func load(_ key: Key, normalize: Bool) -> (Dataset, classNames: [String]?)? {
    let path = entryPath(key)
    guard let file = try? FileAccess.openForReading(path) else { return nil }
    var head = [UInt8](repeating: 0, count: Self.magic.count + 4)
    guard (try? FastCSV.read(file, into: &head, at: 0, count: head.count)) == head.count, Array(head.prefix(Self.magic.count)) == Self.magic
    else { return nil }
    let headerLength = head.suffix(4).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    guard headerLength > 0, headerLength <= 1 << 20 else { return nil }
    var header = [UInt8](repeating: 0, count: headerLength)
    guard (try? FastCSV.read(file, into: &header, at: head.count, count: headerLength)) == headerLength,
      let json = try? JSONParser.parse(header), let object = json.objectValue, object["key"]?.stringValue == key.text,
      let rows = object["rows"]?.numberValue?.int, let features = object["features"]?.numberValue?.int, rows > 0, features > 0
    else { return nil }
    var classes: [String]?
    if let names = object["classes"]?.arrayValue {
      classes = names.compactMap(\.stringValue)
      guard classes!.count == names.count, classes!.count >= 2 else { return nil }
    }
    // Sizes checked against the entry's own size before anything is allocated.
    let (inputCount, overflow) = rows.multipliedReportingOverflow(by: features)
    guard !overflow, inputCount <= MemoryBudget.limit / 4 else { return nil }
    let payloadStart = head.count + headerLength
    guard file.size == payloadStart + inputCount * 4 + rows * 4 + 8 else { return nil }
    var hash = Hash64()
    var failed = false
    let inputs = [Float](unsafeUninitializedCapacity: inputCount) { buffer, initialized in
      let raw = UnsafeMutableRawBufferPointer(buffer)
      failed = (try? file.read(into: raw, at: payloadStart)) != raw.count
      if !failed { hash.add(UnsafeRawBufferPointer(raw)) }
      initialized = inputCount
    }
    var tail = [UInt32](repeating: 0, count: rows + 2)
    let tailBytes = tail.withUnsafeMutableBytes { raw in (try? file.read(into: raw, at: payloadStart + inputCount * 4)) ?? 0 }
    guard !failed, tailBytes == rows * 4 + 8 else { return nil }
    tail.withUnsafeBytes { hash.add(UnsafeRawBufferPointer(rebasing: $0[..<(rows * 4)])) }
    guard UInt64(tail[rows]) | UInt64(tail[rows + 1]) << 32 == hash.value else { return nil }
    touch(path)
    let inputTensor = Tensor(shape: [rows, features], scalars: inputs)
    if let classes {
      let labels = tail.prefix(rows).map { Int(Int32(bitPattern: $0)) }
      guard labels.allSatisfy({ $0 >= 0 && $0 < classes.count }) else { return nil }
      return (
        Dataset(
          inputs: inputTensor, targets: .classes(labels), shape: DataShape(input: [features], target: .classes(classes.count)),
          standardizesInputs: normalize), classes
      )
    }
    let values = tail.prefix(rows).map { Float(bitPattern: $0) }
    return (
      Dataset(
        inputs: inputTensor, targets: .values(Tensor(shape: [rows, 1], scalars: values)),
        shape: DataShape(input: [features], target: .values(width: 1)), standardizesInputs: normalize), nil
    )
  }

  /// Marks an entry as just used (its modification time), for the eviction's order.
  func touch(_ path: String) { utimes(path, nil) }

  // MARK: - Writing

  /// Writes the entry of `key` (a temporary file renamed into place), then evicts the entries
  /// used least recently past `limit`. Fails quietly: a cache is never a reason for a load to fail.
  func store(_ key: Key, _ data: Dataset, classNames: [String]?) {
    let rows = data.count
    guard rows > 0, data.inputs.shape.count == 2 else { return }
    let features = data.inputs.shape[1]
    var tail: [UInt32]
    switch data.targets {
    case .classes(let labels): tail = labels.map { UInt32(bitPattern: Int32(truncatingIfNeeded: $0)) }
    case .values(let tensor):
      guard tensor.scalars.count == rows else { return }
      tail = tensor.scalars.map(\.bitPattern)
    }
    var header: [JSONObject.Member] = [
      .init(key: "key", value: .string(key.text)), .init(key: "rows", value: .int(rows)), .init(key: "features", value: .int(features)),
    ]
    if let classNames { header.append(.init(key: "classes", value: .array(classNames.map { .string($0) }))) }
    let headerBytes = Array(JSONWriter.compact(.object(header)).utf8)
    var hash = Hash64()
    data.inputs.scalars.withUnsafeBytes { hash.add($0) }
    tail.withUnsafeBytes { hash.add($0) }
    tail += [UInt32(truncatingIfNeeded: hash.value), UInt32(truncatingIfNeeded: hash.value >> 32)]
    let length = UInt32(headerBytes.count)
    let head = Self.magic + (0..<4).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + headerBytes

    try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let path = entryPath(key)
    // A name of its own: two runs of one workbench may store the same file's entry at once.
    let temporary = path + ".\(getpid())-\(UUID().uuidString.prefix(8)).part"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
    guard fd >= 0 else { return }
    var ok = head.withUnsafeBytes { Self.writeAll(fd, $0) }
    ok = ok && data.inputs.scalars.withUnsafeBytes { Self.writeAll(fd, $0) }
    ok = ok && tail.withUnsafeBytes { Self.writeAll(fd, $0) }
    ok = ok && fsync(fd) == 0
    close(fd)
    guard ok, rename(temporary, path) == 0 else {
      unlink(temporary)
      return
    }
    evict(keeping: path)
  }

  static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var written = 0
    while written < bytes.count {
      let n = write(fd, bytes.baseAddress! + written, bytes.count - written)
      if n < 0 {
        if errno == EINTR { continue }
        return false
      }
      written += n
    }
    return true
  }

  /// The folder's regular files with the suffix (`.cache` entries, or `.part` files a store
  /// left when it was stopped): path, size and when last used.
  func files(ending suffix: String) -> [(path: String, size: Int, used: Date)] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
    return names.filter { $0.hasSuffix(suffix) }.compactMap { name in
      let path = folder + "/" + name
      guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
        attributes[.type] as? FileAttributeType == .typeRegular
      else { return nil }
      return (path, (attributes[.size] as? Int) ?? 0, (attributes[.modificationDate] as? Date) ?? .distantPast)
    }
  }

  /// The entries and their bytes.
  var contents: (entries: Int, bytes: Int) {
    let entries = files(ending: ".cache")
    return (entries.count, entries.reduce(0) { $0 + $1.size })
  }

  /// Deletes the entries used least recently until the folder holds at most `limit` bytes
  /// (the entry just written always stays).
  func evict(keeping kept: String) {
    let entries = files(ending: ".cache")
    var total = entries.reduce(0) { $0 + $1.size }
    for entry in entries.sorted(by: { $0.used < $1.used }) where total > limit && entry.path != kept {
      unlink(entry.path)
      total -= entry.size
    }
  }

  /// Deletes every entry (and any temporary file left); returns how many entries and their bytes.
  func clear() -> (entries: Int, bytes: Int) {
    var (count, bytes) = (0, 0)
    for entry in files(ending: ".part") { unlink(entry.path) }
    for entry in files(ending: ".cache") where unlink(entry.path) == 0 {
      count += 1
      bytes += entry.size
    }
    return (count, bytes)
  }
}

/// A 64-bit hash of bytes (four lanes of multiply-rotate over 32-byte blocks, then the rest): for
/// cache keys and checksums, not for security.
struct Hash64 {
  private var lanes: (UInt64, UInt64, UInt64, UInt64) = (
    0x9E37_79B9_7F4A_7C15, 0xC2B2_AE3D_27D4_EB4F, 0x1656_67B1_9E37_79F9, 0x85EB_CA77_C2B2_AE63
  )
  private var length: UInt64 = 0
  private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
  private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F

  @inline(__always) private static func round(_ lane: UInt64, _ word: UInt64) -> UInt64 {
    let mixed = lane &+ word &* prime2
    return ((mixed << 31) | (mixed >> 33)) &* prime1
  }

  mutating func add(_ bytes: UnsafeRawBufferPointer) {
    guard let base = bytes.baseAddress else { return }
    var i = 0
    let n = bytes.count
    var (a, b, c, d) = lanes
    while i + 32 <= n {
      a = Self.round(a, base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
      b = Self.round(b, base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
      c = Self.round(c, base.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
      d = Self.round(d, base.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
      i += 32
    }
    while i < n {
      a = Self.round(a, UInt64(base.load(fromByteOffset: i, as: UInt8.self)) &+ UInt64(i & 31) << 8)
      i += 1
    }
    lanes = (a, b, c, d)
    length &+= UInt64(n)
  }

  var value: UInt64 {
    let (a, b, c, d) = lanes
    var h = ((a << 1) | (a >> 63)) &+ ((b << 7) | (b >> 57)) &+ ((c << 12) | (c >> 52)) &+ ((d << 18) | (d >> 46))
    h ^= length &* Self.prime1
    h ^= h >> 33
    h = h &* Self.prime2
    h ^= h >> 29
    return h
  }
}

/// The data cache as the command line sees it: where it is, what it holds, clearing it.
public struct DataCacheLocation: Sendable {
  let cache: DataCache

  /// The cache the environment asks for; nil when it is off.
  public static var current: DataCacheLocation? { DataCache.fromEnvironment().map(DataCacheLocation.init) }

  public var folder: String { cache.folder }
  public var limit: Int { cache.limit }

  /// The entries and their bytes.
  public var contents: (entries: Int, bytes: Int) { cache.contents }

  public func clear() -> (entries: Int, bytes: Int) { cache.clear() }
}

/// What the program around a load wants of it: to hear how far a large file's parse has got,
/// and to stop it (Ctrl-C). One per process, set by the front end (`specbench run`, the REPL);
/// a load reads it when it starts.
public final class DataLoadMonitor: Sendable {
  public typealias Report = @Sendable (_ path: String, _ done: Int, _ total: Int) -> Void
  public static let shared = DataLoadMonitor()
  private let hooks = Mutex<(progress: Report?, cancelled: @Sendable () -> Bool)>((nil, { false }))
  /// Files smaller than this are not reported: they load in a moment.
  public static let reportedSize = 16 << 20

  /// Sets what hears a load's progress (bytes parsed of the total, from any thread) and what
  /// stops it; nil and `{ false }` put it back.
  public func install(progress: Report?, isCancelled: @escaping @Sendable () -> Bool = { false }) {
    hooks.withLock { $0 = (progress, isCancelled) }
  }

  /// The reader's hooks for one file.
  func hooks(path: String, size: Int) -> FastCSV.Progress {
    let (progress, cancelled) = hooks.withLock { $0 }
    var hooks = FastCSV.Progress()
    hooks.isCancelled = cancelled
    if let progress, size >= Self.reportedSize { hooks.report = { done, total in progress(path, done, total) } }
    return hooks
  }
}
