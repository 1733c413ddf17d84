import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Every file SpecBench reads or writes goes through here, so that a hostile path or file is
/// refused the same way everywhere:
///
/// - reads open the file without blocking (`O_NONBLOCK`), check with `fstat` that it is a
///   regular file, and refuse a FIFO, a device, a socket or a folder at once — before a single
///   byte is read, so `/dev/zero` or a FIFO with no writer never hangs or fills memory;
/// - a declared size is checked against a limit before anything is allocated;
/// - a path with a NUL character is refused (C would read it as a shorter path);
/// - write targets are checked: a folder, a device or a FIFO is never replaced, a symbolic link
///   is written *through* (the link stays, its target gets the new contents), and degenerate
///   paths (`""`, `.`, `/`, `dir/`) are refused instead of writing `./.json`.
package enum FileAccess {
  /// The largest file read whole unless a caller says otherwise: 4 GiB.
  package static let defaultReadLimit = 4 << 30

  /// What is at a path, without following a final symbolic link.
  package enum Kind: Equatable, Sendable {
    case regular, directory, symbolicLink, fifo, characterDevice, blockDevice, socket, other

    /// "a folder", "a FIFO (named pipe)", …: for messages.
    package var phrase: String {
      switch self {
      case .regular: "a regular file"
      case .directory: "a folder"
      case .symbolicLink: "a symbolic link"
      case .fifo: "a FIFO (named pipe)"
      case .characterDevice: "a character device"
      case .blockDevice: "a block device"
      case .socket: "a socket"
      case .other: "not a regular file"
      }
    }

    init(mode: mode_t) {
      switch mode & S_IFMT {
      case S_IFREG: self = .regular
      case S_IFDIR: self = .directory
      case S_IFLNK: self = .symbolicLink
      case S_IFIFO: self = .fifo
      case S_IFCHR: self = .characterDevice
      case S_IFBLK: self = .blockDevice
      case S_IFSOCK: self = .socket
      default: self = .other
      }
    }
  }

  /// What is at `path` (a final symbolic link is reported as such), or nil when nothing is.
  package static func kind(of path: String) -> Kind? {
    guard !path.contains("\0") else { return nil }
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    return Kind(mode: info.st_mode)
  }

  /// What `path` leads to, following symbolic links, or nil when nothing is there.
  package static func resolvedKind(of path: String) -> Kind? {
    guard !path.contains("\0") else { return nil }
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return Kind(mode: info.st_mode)
  }

  /// Reads a regular file whole.
  ///
  /// - Parameters:
  ///   - path: the file; a FIFO, device, socket or folder is refused without reading.
  ///   - limit: the most bytes accepted; a larger file is refused before anything is allocated.
  /// - Throws: `SpecError.unreadable` saying what is at the path and what to do.
  package static func read(_ path: String, limit: Int = defaultReadLimit) throws(SpecError) -> [UInt8] {
    try refuseNUL(path, reading: true)
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
    guard fd >= 0 else { throw .unreadable(path: path, reason: openFailure(errno)) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
    let kind = Kind(mode: info.st_mode)
    guard kind == .regular else {
      throw .unreadable(path: path, reason: "it is \(kind.phrase), not a regular file; SpecBench reads only regular files")
    }
    let size = Int(info.st_size)
    guard size <= limit else {
      throw .unreadable(
        path: path, reason: "it holds \(ByteCount.text(size)), more than the \(ByteCount.text(limit)) SpecBench reads for this kind of file"
      )
    }
    // Back to blocking reads now that it is known to be a regular file.
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
    var bytes = [UInt8](repeating: 0, count: size)
    var filled = 0
    while filled < size {
      let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, size - filled) }
      if n < 0 {
        if errno == EINTR { continue }
        throw .unreadable(path: path, reason: String(cString: strerror(errno)))
      }
      if n == 0 { break }
      filled += n
    }
    // A file that shrank while read is read as it now is; one that grew is cut at its size when opened.
    if filled < size { bytes.removeLast(size - filled) }
    return bytes
  }

  /// Opens a regular file for reading in parts (`OpenFile.read(into:at:)`), with the checks of
  /// `read`: a FIFO, device, socket or folder is refused before a byte is read, and a file
  /// larger than `limit` before anything is allocated.
  package static func openForReading(_ path: String, limit: Int = defaultReadLimit) throws(SpecError) -> OpenFile {
    try refuseNUL(path, reading: true)
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
    guard fd >= 0 else { throw .unreadable(path: path, reason: openFailure(errno)) }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
      let reason = String(cString: strerror(errno))
      close(fd)
      throw .unreadable(path: path, reason: reason)
    }
    let kind = Kind(mode: info.st_mode)
    guard kind == .regular else {
      close(fd)
      throw .unreadable(path: path, reason: "it is \(kind.phrase), not a regular file; SpecBench reads only regular files")
    }
    let size = Int(info.st_size)
    guard size <= limit else {
      close(fd)
      throw .unreadable(
        path: path, reason: "it holds \(ByteCount.text(size)), more than the \(ByteCount.text(limit)) SpecBench reads for this kind of file"
      )
    }
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
    return OpenFile(
      fd: fd, path: path, size: size, device: UInt64(info.st_dev), inode: UInt64(info.st_ino),
      modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
  }

  /// Checks that a file may be written at `path` (through a temporary file and a rename) and
  /// returns the path to write: `path` itself, or the target of a symbolic link at `path`.
  ///
  /// Refuses an empty path, a path that names a folder (`.`, `..`, `/`, `dir/`), a NUL in the
  /// path, and anything at the path (or at a link's target) that is not a regular file.
  ///
  /// - Parameter what: what is being written, for messages ("the session", "the export").
  package static func writableTarget(_ path: String, what: String) throws(SpecError) -> String {
    try refuseNUL(path, reading: false)
    guard !path.isEmpty else {
      throw .unwritable(path: "\"\"", reason: "the path is empty; give a file name such as sessions/mine")
    }
    let last = PathText.lastComponent(path)
    if path.hasSuffix("/") || last == "." || last == ".." || last == "/" {
      throw .unwritable(
        path: path, reason: "the path names a folder, not a file; give a file name inside it, such as \(folderHint(path))mine")
    }
    var target = path
    var hops = 0
    while let kind = kind(of: target) {
      switch kind {
      case .regular:
        return target
      case .symbolicLink:
        hops += 1
        guard hops <= 16, let destination = try? FileManager.default.destinationOfSymbolicLink(atPath: target) else {
          throw .unwritable(path: path, reason: "it is a symbolic link that leads nowhere SpecBench can follow")
        }
        target =
          destination.hasPrefix("/")
          ? destination : PathText.join(PathText.folder(target), destination)
      default:
        throw .unwritable(
          path: path,
          reason:
            "it is \(kind.phrase)\(target == path ? "" : " (through a symbolic link)"); SpecBench never replaces one with \(what); choose a file name"
        )
      }
    }
    let folder = PathText.folder(target)
    if !folder.isEmpty, let kind = resolvedKind(of: folder), kind != .directory {
      throw .unwritable(path: path, reason: "\(folder) is \(kind.phrase), not a folder")
    }
    return target
  }

  /// The same file: both exist and have the same device and inode, or neither exists and their
  /// standardised paths are equal.
  package static func sameFile(_ a: String, _ b: String) -> Bool {
    guard !a.contains("\0"), !b.contains("\0") else { return false }
    var x = stat(), y = stat()
    let hasA = stat(a, &x) == 0, hasB = stat(b, &y) == 0
    if hasA && hasB { return x.st_dev == y.st_dev && x.st_ino == y.st_ino }
    if hasA != hasB { return false }
    return PathText.standardized(a) == PathText.standardized(b)
  }

  static func refuseNUL(_ path: String, reading: Bool) throws(SpecError) {
    guard path.contains("\0") else { return }
    let shown = TextExcerpt.quoted(path)
    let reason = "the path contains a NUL character, which no file name can hold"
    if reading { throw .unreadable(path: shown, reason: reason) }
    throw .unwritable(path: shown, reason: reason)
  }

  static func openFailure(_ code: Int32) -> String {
    switch code {
    case ENOENT: "no such file"
    case EACCES, EPERM: "permission denied"
    case EISDIR: "it is a folder, not a file"
    case ELOOP: "too many symbolic links"
    case ENAMETOOLONG: "the path is too long"
    case ENOTDIR: "a part of the path is not a folder"
    default: String(cString: strerror(code))
    }
  }

  private static func folderHint(_ path: String) -> String {
    let trimmed = path.hasSuffix("/") ? path : path + "/"
    return trimmed == "./" ? "" : trimmed
  }
}

/// Byte counts for people: `512 bytes`, `3.7 GB`.
package enum ByteCount {
  package static func text(_ bytes: Int) -> String { text(Double(bytes)) }

  package static func text(_ bytes: Double) -> String {
    if bytes < 1000 { return "\(Int(bytes)) bytes" }
    let units = ["kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    var value = bytes / 1000
    var index = 0
    while value >= 1000 && index < units.count - 1 {
      value /= 1000
      index += 1
    }
    return String(format: value < 10 ? "%.1f " : "%.0f ", value) + units[index]
  }
}

/// A regular file open for reading (`FileAccess.openForReading`): its size and identity as they were when
/// opened, read in parts from any thread (`pread`), closed when released.
package final class OpenFile: @unchecked Sendable {
  package let path: String
  package let size: Int
  /// The file's identity: device, inode, and modification time in nanoseconds.
  package let device: UInt64
  package let inode: UInt64
  package let modified: Int64
  private let fd: Int32

  init(fd: Int32, path: String, size: Int, device: UInt64, inode: UInt64, modified: Int64) {
    (self.fd, self.path, self.size, self.device, self.inode, self.modified) = (fd, path, size, device, inode, modified)
  }

  deinit { close(fd) }

  /// Fills `buffer` from byte `offset` on, as far as the file goes; returns how many bytes were read
  /// (fewer than the buffer holds only at the end of the file).
  package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(SpecError) -> Int {
    var filled = 0
    while filled < buffer.count {
      let n = pread(fd, buffer.baseAddress! + filled, buffer.count - filled, off_t(offset + filled))
      if n < 0 {
        if errno == EINTR { continue }
        throw .unreadable(path: path, reason: String(cString: strerror(errno)))
      }
      if n == 0 { break }
      filled += n
    }
    return filled
  }
}

extension OpenFile {
  /// The file's bytes mapped read-only into memory: pages are read from the file as they are
  /// touched and the kernel drops them again under memory pressure, so a file larger than memory
  /// can be read. An empty file maps to an empty region.
  package func mapped() throws(SpecError) -> FileMapping {
    guard size > 0 else { return FileMapping(file: self, base: nil) }
    let address = mmap(nil, size, PROT_READ, MAP_PRIVATE | MAP_NORESERVE, fd, 0)
    guard let address, address != MAP_FAILED else {
      throw .unreadable(path: path, reason: "it could not be mapped into memory (\(String(cString: strerror(errno))))")
    }
    return FileMapping(file: self, base: UnsafeRawPointer(address))
  }

  /// What changed in the file since it was opened — its size, or its modification time — as a
  /// phrase; nil while it is as it was. (A file replaced by a rename is a new file: this one,
  /// and its mapping, are unchanged by it.)
  package func change() -> String? {
    var info = stat()
    guard fstat(fd, &info) == 0 else { return "it can no longer be examined (\(String(cString: strerror(errno))))" }
    if Int(info.st_size) != size { return "it now holds \(info.st_size) bytes, not the \(size) it held when it was opened" }
    let now = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    return now == modified ? nil : "it was written to after it was opened"
  }
}

/// A regular file mapped read-only into memory (`OpenFile.mapped`), unmapped when released. Its
/// bytes are only ever read. A program that truncates the file while its bytes are read stops
/// this one with SIGBUS; readers check `file.change()` before each pass over the bytes, so that
/// needs a write in the moment between the check and the read.
package final class FileMapping: @unchecked Sendable {
  package let file: OpenFile
  private let base: UnsafeRawPointer?
  /// The file's size when it was mapped.
  package var length: Int { file.size }

  init(file: OpenFile, base: UnsafeRawPointer?) { (self.file, self.base) = (file, base) }

  deinit {
    if let base { munmap(UnsafeMutableRawPointer(mutating: base), length) }
  }

  /// The mapped bytes.
  package var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: length) }

  /// How the bytes will be read next, so the kernel reads ahead only what will be used.
  package enum Access {
    /// One pass in order: read far ahead, drop behind.
    case sequential
    /// Here and there (a shuffled batch's rows): read only the pages touched, not the pages
    /// around them, which under memory pressure would push out pages still in use.
    case random
  }

  /// Asks the kernel to start reading `bytes` (offsets into the file) now, in large reads: a
  /// run of rows about to be read in order.
  package func prefetch(_ bytes: Range<Int>) {
    guard let base, !bytes.isEmpty else { return }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let start = bytes.lowerBound / page * page
    let end = min(length, bytes.upperBound)
    guard start < end else { return }
    _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_WILLNEED)
  }

  package func advise(_ access: Access) {
    guard let base else { return }
    _ = madvise(UnsafeMutableRawPointer(mutating: base), length, access == .sequential ? MADV_SEQUENTIAL : MADV_RANDOM)
  }
}
