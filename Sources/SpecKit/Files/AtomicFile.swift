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
    let folder = PathText.folder(path)
    let base = PathText.lastComponent(path)
    let temporary = (folder.isEmpty ? "" : folder + "/") + ".\(base).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw .unwritable(path: path, reason: String(cString: strerror(errno))) }
    var failure = writeAll(bytes, to: fd)
    if failure == nil && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
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
  ///
  /// The target is checked first (`FileAccess.writableTarget`): a folder, device or FIFO is
  /// never replaced, and a symbolic link is written through to its target.
  public static func write(_ bytes: [UInt8], to path: String, what: String = "this file") throws(SpecError) {
    let target = try FileAccess.writableTarget(path, what: what)
    try stage(bytes, for: target).commit()
    syncFolder(PathText.folderOrCurrent(target))
  }

  /// Writes `bytes` where a user pointed: `-` is standard output, a character device or a FIFO
  /// is written through (as `cat > /dev/stdout` would), anything else is written atomically
  /// with `write(_:to:what:)`. A FIFO that no process reads is refused at once, not waited on.
  public static func writeOrStream(_ bytes: [UInt8], to path: String, what: String) throws(SpecError) {
    let kind = path == "-" ? FileAccess.Kind.characterDevice : FileAccess.resolvedKind(of: path)
    guard kind == .characterDevice || kind == .fifo else { return try write(bytes, to: path, what: what) }
    let fd: Int32 = path == "-" ? dup(STDOUT_FILENO) : open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
    guard fd >= 0 else {
      let reason = errno == ENXIO ? "it is a FIFO that no process is reading" : FileAccess.openFailure(errno)
      throw .unwritable(path: path, reason: reason)
    }
    defer { close(fd) }
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
    if let failure = writeAll(bytes, to: fd) { throw .unwritable(path: path == "-" ? "standard output" : path, reason: failure) }
  }

  /// Writes every byte to `fd`; the reason when it could not.
  static func writeAll(_ bytes: [UInt8], to fd: Int32) -> String? {
    var written = 0
    return bytes.withUnsafeBytes { raw -> String? in
      while written < raw.count {
        let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
        if n < 0 {
          if errno == EINTR { continue }
          return String(cString: strerror(errno))
        }
        written += n
      }
      return nil
    }
  }

  static func remove(_ path: String) { unlink(path) }
}

extension AtomicFile {
  /// Flushes a folder's entries (the renames made in it) to disk; best effort.
  static func syncFolder(_ folder: String) {
    let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return }
    _ = fsync(fd)
    close(fd)
  }
}

/// An exclusive lock on a folder (`flock` on the folder itself, so nothing is left behind):
/// saves into one folder, from any threads or processes, take turns.
struct FolderLock {
  let fd: Int32

  init(_ folder: String) throws(SpecError) {
    fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw .unwritable(path: folder, reason: "cannot open the folder (\(String(cString: strerror(errno))))") }
    while flock(fd, LOCK_EX) != 0 {
      if errno == EINTR { continue }
      let reason = String(cString: strerror(errno))
      close(fd)
      throw .unwritable(path: folder, reason: "cannot lock the folder (\(reason))")
    }
  }

  func release() {
    _ = flock(fd, LOCK_UN)
    close(fd)
  }
}
