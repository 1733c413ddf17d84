import Foundation
import ZIPFoundation

/// The zip container of a Keras 3 `.keras` file, through ZIPFoundation in memory: its members
/// stored (uncompressed), as Keras writes them. Reading accepts stored and deflated members and
/// checks each one's CRC-32 and declared size before anything is kept.
enum KerasArchive {
  /// The members Keras' saving library writes, in its order.
  static let metadataFile = "metadata.json"
  static let configFile = "config.json"
  static let weightsFile = "model.weights.h5"

  /// The most bytes one member may declare (a weights file of 2 GiB is 500 million floats).
  static let memberLimit = 2 << 30

  /// A zip of `members`, in the given order, each dated `date` (Keras' `date_saved`).
  static func zip(_ members: [(name: String, bytes: [UInt8])], date: Date = Date()) throws(InterchangeError) -> [UInt8] {
    do {
      let archive = try Archive(data: Data(), accessMode: .create)
      for member in members {
        let data = Data(member.bytes)
        try archive.addEntry(
          with: member.name, type: .file, uncompressedSize: Int64(data.count), modificationDate: date, compressionMethod: .none
        ) { position, size in data.subdata(in: Int(position)..<Int(position) + size) }
      }
      guard let data = archive.data else { throw InterchangeError.cannotExport(format: "keras", reason: "the zip was not made in memory") }
      return [UInt8](data)
    } catch let error as InterchangeError {
      throw error
    } catch {
      throw .cannotExport(format: "keras", reason: "the zip could not be written (\(error))")
    }
  }

  /// The members of a `.keras` file by name: all of `required`, and those of `optional` it has.
  /// A file that is not a zip, is truncated, lacks a required member, or holds a member whose
  /// data does not match its CRC-32 or its declared size is refused, naming the member.
  static func members(of bytes: [UInt8], file: String, required: [String], optional: [String] = []) throws(InterchangeError) -> [String:
    [UInt8]]
  {
    let archive: Archive
    do { archive = try Archive(data: Data(bytes), accessMode: .read) } catch {
      throw .malformedArchive(
        file: file, member: nil, message: "not a readable zip (a .keras file is one; truncated or not a Keras file?)")
    }
    var members: [String: [UInt8]] = [:]
    for entry in archive where entry.type == .file && (required.contains(entry.path) || optional.contains(entry.path)) {
      guard entry.uncompressedSize <= UInt64(memberLimit), entry.compressedSize <= UInt64(bytes.count) else {
        throw .malformedArchive(
          file: file, member: entry.path,
          message: "it declares \(entry.uncompressedSize) bytes, more than the \(memberLimit) SpecBench reads (or more than the file holds)"
        )
      }
      var contents: [UInt8] = []
      let declared = Int(entry.uncompressedSize)
      // No more than the file's own size up front: a declared size is a claim until the data comes.
      contents.reserveCapacity(min(declared, bytes.count))
      do {
        let checksum = try archive.extract(entry, skipCRC32: false) { chunk in
          guard contents.count + chunk.count <= declared else { throw Archive.ArchiveError.invalidEntrySize }
          contents += chunk
        }
        // ZIPFoundation returns the CRC-32 of what it read; the comparison is the reader's.
        guard checksum == entry.checksum else { throw Archive.ArchiveError.invalidCRC32 }
      } catch {
        throw .malformedArchive(
          file: file, member: entry.path, message: "its data is damaged or cut short (\(error)); the file is not a whole Keras archive")
      }
      guard contents.count == declared else {
        throw .malformedArchive(
          file: file, member: entry.path, message: "it holds \(contents.count) of its declared \(declared) bytes (the file is cut short)")
      }
      members[entry.path] = contents
    }
    if let missing = required.first(where: { members[$0] == nil }) {
      throw .malformedArchive(
        file: file, member: missing, message: "the archive has no \(missing); a Keras 3 file holds \(required.joined(separator: ", "))")
    }
    return members
  }
}
