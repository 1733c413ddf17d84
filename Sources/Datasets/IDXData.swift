import SpecKit
import TensorCore

/// MNIST-style IDX files: an images file of unsigned bytes `[N, rows, cols]` (magic 0x00000803)
/// and a labels file `[N]` (magic 0x00000801). The samples are one-channel images `[1, rows,
/// cols]` (format version 6; a model taking `[rows, cols]`, as earlier versions gave, still takes
/// them), each pixel value / 255 in [0, 1]; the class count is the largest label + 1.
public enum IDXData {
  /// The dataset of two IDX files already read.
  public static func load(images: [UInt8], labels: [UInt8], imagesPath: String, labelsPath: String) throws(DataError) -> Dataset {
    let imageDims = try dimensions(images, fileSize: images.count, path: imagesPath, rank: 3)
    let pixels = images[headerSize(rank: 3)...]
    // Each byte becomes a float32.
    let needed = 4 * pixels.count + 8 * imageDims[0]
    guard needed <= MemoryBudget.limit else {
      throw .idx(
        path: imagesPath,
        message:
          "holds \(pixels.count) pixels, which need \(ByteCount.text(needed)) as float32, more than the \(ByteCount.text(MemoryBudget.limit)) allowed (\(MemoryBudget.limitSource))"
      )
    }
    let inputs = Tensor(shape: [imageDims[0], 1] + imageDims.dropFirst(), scalars: pixels.map { Float($0) / 255 })
    return try dataset(SampleInputs(inputs), imageDims: imageDims, imagesPath: imagesPath, labels: labels, labelsPath: labelsPath)
  }

  /// The dataset of an images file mapped into memory — its pixels converted as batches gather
  /// them, so it may be larger than memory — and a labels file already read.
  static func load(mapping imagesPath: String, labels: [UInt8], labelsPath: String) throws(DataError) -> Dataset {
    let file: OpenFile
    do { file = try FileAccess.openForReading(imagesPath, limit: .max) } catch {
      throw .unreadable(path: imagesPath, reason: error.reason ?? error.description)
    }
    var header = [UInt8](repeating: 0, count: min(file.size, headerSize(rank: 3)))
    header.removeLast(header.count - (try FastCSV.read(file, into: &header, at: 0)))
    let imageDims = try dimensions(header, fileSize: file.size, path: imagesPath, rank: 3)
    if let problem = MappedRows.bookkeepingProblem(samples: imageDims[0]) { throw .idx(path: imagesPath, message: problem) }
    let mapping: FileMapping
    do { mapping = try file.mapped() } catch { throw .unreadable(path: imagesPath, reason: error.reason ?? error.description) }
    mapping.advise(.random)
    let rows = MappedRows(
      mapping: mapping, offset: headerSize(rank: 3), encoding: .unitByte, sampleShape: [1] + imageDims.dropFirst(), fileRows: imageDims[0])
    return try dataset(SampleInputs(rows), imageDims: imageDims, imagesPath: imagesPath, labels: labels, labelsPath: labelsPath)
  }

  /// The dataset of images already checked and the labels file's bytes.
  static func dataset(_ inputs: SampleInputs, imageDims: [Int], imagesPath: String, labels: [UInt8], labelsPath: String) throws(DataError)
    -> Dataset
  {
    let labelDims = try dimensions(labels, fileSize: labels.count, path: labelsPath, rank: 1)
    guard imageDims[0] == labelDims[0] else {
      throw .idx(path: labelsPath, message: "has \(labelDims[0]) labels, but \(imagesPath) has \(imageDims[0]) images")
    }
    let labelBytes = labels[headerSize(rank: 1)...]
    guard 8 * labelBytes.count <= MemoryBudget.limit else {
      throw .idx(
        path: labelsPath,
        message:
          "holds \(labelBytes.count) labels, which need \(ByteCount.text(8 * labelBytes.count)) in memory, more than the \(ByteCount.text(MemoryBudget.limit)) allowed (\(MemoryBudget.limitSource))"
      )
    }
    let classes = Int(labelBytes.max() ?? 0) + 1
    guard classes >= 2 else { throw .idx(path: labelsPath, message: "every label is 0; classification needs at least 2 classes") }
    return Dataset(
      inputs: inputs, targets: .classes(labelBytes.map(Int.init)),
      shape: DataShape(input: [1] + imageDims.dropFirst(), target: .classes(classes)))
  }

  /// Bytes before an IDX file's data: the magic and one 4-byte size an axis.
  static func headerSize(rank: Int) -> Int { 4 + 4 * rank }

  /// An IDX file's dimensions, from its first bytes (`bytes`: all of them, or at least the
  /// header) and its size: every check of the format.
  static func dimensions(_ bytes: [UInt8], fileSize: Int, path: String, rank: Int) throws(DataError) -> [Int] {
    guard bytes.count >= 4 else { throw .idx(path: path, message: "has \(bytes.count) bytes, too few for an IDX header") }
    guard bytes[0] == 0, bytes[1] == 0 else { throw .idx(path: path, message: "is not an IDX file (its first two bytes must be 0)") }
    guard bytes[2] == 0x08 else {
      throw .idx(path: path, message: "holds IDX type 0x\(String(bytes[2], radix: 16)); SpecBench reads unsigned bytes (type 0x08)")
    }
    guard Int(bytes[3]) == rank else {
      throw .idx(path: path, message: "has \(bytes[3]) dimensions, expected \(rank) (\(rank == 3 ? "images × rows × columns" : "labels"))")
    }
    let headerEnd = headerSize(rank: rank)
    guard bytes.count >= headerEnd else { throw .idx(path: path, message: "is truncated inside its header") }
    var dims: [Int] = []
    var total = 1
    for d in 0..<rank {
      let o = 4 + 4 * d
      let dim = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
      guard dim > 0 else { throw .idx(path: path, message: "dimension \(d) is 0") }
      dims.append(dim)
      let (product, overflow) = total.multipliedReportingOverflow(by: dim)
      guard !overflow, product <= fileSize else {
        throw .idx(
          path: path,
          message: "declares dimensions \(dims) whose product is more than the \(fileSize - headerEnd) bytes of data it holds")
      }
      total = product
    }
    guard fileSize == headerEnd + total else {
      throw .idx(path: path, message: "declares \(dims) = \(total) values, but holds \(fileSize - headerEnd) bytes of data")
    }
    return dims
  }
}
