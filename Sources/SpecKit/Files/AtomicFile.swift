import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Whole-file writes that never leave a half-written file under the real name: the bytes go to a
/// temporary file in the same folder, are flushed to disk, and only then renamed over the target.
public enum AtomicFile {
  /// A temporary file written and flushed, waiting to be renamed into place.
  struct Staged {
    let temporaryPath: String
    let finalPath: String

    /// Moves the file into place (atomic on POSIX file systems).
    func commit() throws(SpecError) {
      guard rename(temporaryPath, finalPath) == 0 else {
        let reason = String(cString: strerror(errno))
        discard()
        throw .unwritable(path: finalPath, reason: reason)
      }
    }

    /// Removes the temporary file.
    func discard() { unlink(temporaryPath) }
  }

  /// Writes `bytes` to a temporary file beside `path` and flushes it; nothing is replaced yet.
  static func stage(_ bytes: [UInt8], for path: String) throws(SpecError) -> Staged {
    let folder = (path as NSString).deletingLastPathComponent
    let base = (path as NSString).lastPathComponent
    let temporary = (folder.isEmpty ? "" : folder + "/") + ".\(base).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw .unwritable(path: path, reason: String(cString: strerror(errno))) }
    var written = 0
    let failure: String? = bytes.withUnsafeBytes { raw -> String? in
      while written < raw.count {
        let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
        if n < 0 {
          if errno == EINTR { continue }
          return String(cString: strerror(errno))
        }
        written += n
      }
      return fsync(fd) == 0 ? nil : String(cString: strerror(errno))
    }
    let closed = close(fd) == 0
    if let failure {
      unlink(temporary)
      throw .unwritable(path: path, reason: failure)
    }
    guard closed else {
      unlink(temporary)
      throw .unwritable(path: path, reason: String(cString: strerror(errno)))
    }
    return Staged(temporaryPath: temporary, finalPath: path)
  }

  /// Writes `bytes` to `path` through a temporary file and a rename: the old file, if any, stays
  /// whole until the new one is complete.
  public static func write(_ bytes: [UInt8], to path: String) throws(SpecError) {
    try stage(bytes, for: path).commit()
  }

  /// A hard link to `path` under a temporary name (no data is copied), or nil when there is no
  /// file at `path`.
  static func keepCopy(of path: String) -> String? {
    let backup = path + ".\(getpid()).backup.tmp"
    unlink(backup)
    return link(path, backup) == 0 ? backup : nil
  }

  /// Puts a kept copy back under its name.
  static func restore(_ backup: String, to path: String) {
    _ = rename(backup, path)
  }

  static func remove(_ path: String) { unlink(path) }
}
