import SpecKit
import TensorCore

/// A dataset's inputs `[N, sample shape…]`: float32 values in memory, or the rows of a file
/// mapped into memory (an IDX images file, a `.npy` array in C order), converted to float32 as a
/// batch gathers them. A mapped dataset's memory is its file's pages, which the kernel reads in
/// as they are touched and drops again under pressure: data larger than memory trains.
///
/// Both kinds give the same float32 values bit for bit (a mapped row is converted by the
/// arithmetic of the reader that would read it whole).
public struct SampleInputs: Hashable, Sendable {
  enum Storage: Hashable, Sendable {
    case memory(Tensor)
    case mapped(MappedRows)
  }

  var storage: Storage

  public init(_ tensor: Tensor) { storage = .memory(tensor) }
  init(_ rows: MappedRows) { storage = .mapped(rows) }

  public var shape: [Int] {
    switch storage {
    case .memory(let tensor): tensor.shape
    case .mapped(let rows): [rows.count] + rows.sampleShape
    }
  }
  /// Samples: the first axis.
  public var rows: Int {
    switch storage {
    case .memory(let tensor): tensor.rows
    case .mapped(let rows): rows.count
    }
  }
  /// Values a sample.
  public var rowWidth: Int { shape.dropFirst().reduce(1, *) }
  /// Values in all.
  public var count: Int { rows * rowWidth }
  /// Whether the rows are read from a mapped file.
  public var isMapped: Bool { if case .mapped = storage { true } else { false } }

  /// The rows at `indices`, in that order, in memory (a batch).
  public func gatherRows(_ indices: some Collection<Int>) -> Tensor {
    switch storage {
    case .memory(let tensor): return tensor.gatherRows(indices)
    case .mapped(let rows):
      let width = rowWidth
      let scalars = [Float](unsafeUninitializedCapacity: indices.count * width) { out, initialized in
        rows.copy(indices, into: out.baseAddress!)
        initialized = indices.count * width
      }
      return Tensor(shape: [indices.count] + rows.sampleShape, scalars: scalars)
    }
  }

  /// The samples at `indices`: a copy for inputs in memory, the same file's rows through an
  /// index table for mapped inputs (a split keeps indices, not rows).
  public func selecting(_ indices: some Collection<Int>) -> SampleInputs {
    switch storage {
    case .memory(let tensor): return SampleInputs(tensor.gatherRows(indices))
    case .mapped(let rows): return SampleInputs(rows.selecting(indices))
    }
  }

  /// Copies the rows at `indices`, in that order, to `out` (`indices.count × rowWidth` floats).
  package func copyRows(_ indices: some Collection<Int>, into out: UnsafeMutablePointer<Float>) {
    switch storage {
    case .memory(let tensor):
      let width = rowWidth
      tensor.scalars.withUnsafeBufferPointer { values in
        for (row, sample) in indices.enumerated() {
          (out + row * width).update(from: values.baseAddress! + sample * width, count: width)
        }
      }
    case .mapped(let rows): rows.copy(indices, into: out)
    }
  }

  /// Every row in memory: the tensor itself for inputs in memory, a conversion of the whole file
  /// for mapped ones (check its size against the memory budget first: `bytesInMemory`).
  public func materialized() -> Tensor {
    switch storage {
    case .memory(let tensor): tensor
    case .mapped(let rows): gatherRows(0..<rows.count)
    }
  }

  /// Every row in memory, when they fit in the memory budget; else an error saying that `what`
  /// needs them there.
  public func materialized(for what: String) throws(DataError) -> Tensor {
    guard bytesInMemory <= MemoryBudget.limit else {
      throw .mismatch(
        "\(what) needs the \(rows) samples in memory, \(ByteCount.text(bytesInMemory)) as float32, more than the \(ByteCount.text(MemoryBudget.limit)) allowed (\(MemoryBudget.limitSource))"
      )
    }
    return materialized()
  }

  /// The float32 bytes all rows take in memory.
  public var bytesInMemory: Int { count.multipliedReportingOverflow(by: 4).overflow ? .max : count * 4 }

  /// All values in order (materialised for mapped inputs).
  public var scalars: [Float] { materialized().scalars }

  /// What changed in the mapped file since it was read (see `OpenFile.change`), naming the file;
  /// nil for inputs in memory, or while the file is as it was.
  public func fileChange() -> String? {
    guard case .mapped(let rows) = storage, let change = rows.mapping.file.change() else { return nil }
    return
      "the data file \(rows.mapping.file.path) changed while it was in use: \(change); the session keeps the state of the last step, and the next train reads the file as it is now"
  }
}

/// Rows of a mapped file: the mapping, where the array starts, each value's encoding, and which
/// of the file's rows these are (all in order, or an index table).
struct MappedRows: Hashable, Sendable {
  /// How a stored value becomes a float32.
  enum Encoding: Hashable, Sendable {
    /// An unsigned byte `b` as `Float(b) / 255` (IDX pixels).
    case unitByte
    /// A little-endian float32 as it is (`.npy` `<f4` with scale 1): the rows are copied.
    case float32
    /// Any `.npy` element type: `Float(value × scale)`, the value read as a double.
    case numpy(NumPyData.DType, scale: Double)

    var size: Int {
      switch self {
      case .unitByte: 1
      case .float32: 4
      case .numpy(let type, _): type.size
      }
    }
  }

  let mapping: FileMapping
  let offset: Int
  let encoding: Encoding
  let sampleShape: [Int]
  let sampleWidth: Int
  /// The file's row of each sample; nil: sample i is row i of `fileRows`.
  let index: [Int]?
  let fileRows: Int

  init(mapping: FileMapping, offset: Int, encoding: Encoding, sampleShape: [Int], fileRows: Int, index: [Int]? = nil) {
    (self.mapping, self.offset, self.encoding, self.sampleShape) = (mapping, offset, encoding, sampleShape)
    (self.fileRows, self.index) = (fileRows, index)
    sampleWidth = sampleShape.reduce(1, *)
  }

  var count: Int { index?.count ?? fileRows }

  /// Bytes a mapped dataset keeps in memory for each sample while it trains: its row in each
  /// part's index table, its place in the split's and the epoch's orders, its label.
  static let bytesPerSample = 32

  /// Why a file of `samples` samples cannot be mapped: the memory its samples' bookkeeping needs
  /// is past the budget (checked before any of it is allocated); nil when it fits.
  static func bookkeepingProblem(samples: Int) -> String? {
    let (bytes, overflow) = samples.multipliedReportingOverflow(by: bytesPerSample)
    guard overflow || bytes > MemoryBudget.limit else { return nil }
    return
      "declares \(samples) samples; their values stay in the file, but SpecBench keeps about \(bytesPerSample) bytes a sample in memory (indices, orders, labels), \(overflow ? "more than any machine has" : ByteCount.text(bytes)), more than the \(ByteCount.text(MemoryBudget.limit)) allowed (\(MemoryBudget.limitSource)); train on fewer samples"
  }

  func selecting(_ indices: some Collection<Int>) -> MappedRows {
    MappedRows(
      mapping: mapping, offset: offset, encoding: encoding, sampleShape: sampleShape, fileRows: fileRows,
      index: indices.map { index?[$0] ?? $0 })
  }

  /// Converts the rows at `indices` (of this selection) into `out`. Rows are read where they
  /// are (the mapping is advised for random reads); a long run of rows in file order, as an
  /// evaluation reads, is first asked for in one read ahead.
  func copy(_ indices: some Collection<Int>, into out: UnsafeMutablePointer<Float>) {
    let width = sampleWidth
    let rowBytes = width * encoding.size
    if indices.count >= 64, let first = indices.first {
      let last = indices[indices.index(indices.startIndex, offsetBy: indices.count - 1)]
      let (from, to) = (index?[first] ?? first, index?[last] ?? last)
      if from < to, to - from < 2 * indices.count { mapping.prefetch(offset + from * rowBytes..<offset + (to + 1) * rowBytes) }
    }
    let base = mapping.bytes.baseAddress! + offset
    for (row, sample) in indices.enumerated() {
      let source = base + (index?[sample] ?? sample) * rowBytes
      Self.convert(source, count: width, encoding, into: out + row * width)
    }
  }

  /// `count` values at `source` as float32, to `out`.
  static func convert(_ source: UnsafeRawPointer, count: Int, _ encoding: Encoding, into out: UnsafeMutablePointer<Float>) {
    switch encoding {
    case .float32:
      UnsafeMutableRawPointer(out).copyMemory(from: source, byteCount: count * 4)
    case .unitByte:
      let bytes = source.assumingMemoryBound(to: UInt8.self)
      for k in 0..<count { out[k] = Float(bytes[k]) / 255 }
    case .numpy(let type, let scale):
      let bytes = source.assumingMemoryBound(to: UInt8.self)
      for k in 0..<count { out[k] = Float(type.value(bytes + k * type.size) * scale) }
    }
  }

  static func == (a: MappedRows, b: MappedRows) -> Bool {
    a.mapping === b.mapping && a.offset == b.offset && a.encoding == b.encoding && a.sampleShape == b.sampleShape
      && a.fileRows == b.fileRows && a.index == b.index
  }

  func hash(into hasher: inout Hasher) {
    hasher.combine(ObjectIdentifier(mapping))
    hasher.combine(offset)
    hasher.combine(count)
  }
}
