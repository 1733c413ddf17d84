import Foundation
import SpecKit
import Synchronization

/// Which folders a session's data files may come from.
///
/// A path in a session file is data, not permission: `data.path`, `data.images` and
/// `data.labels` are relative to the spec file's folder and must lead to a file inside it
/// (symbolic links resolved, so neither `..` nor a link climbs out). A file elsewhere is read
/// only from a folder the user allowed outside the file: `--allow-data DIR` on the command
/// line, the colon-separated `SPECBENCH_DATA_PATH`, or a path the user typed in the workbench
/// (`data csv path=/data/x.csv` allows `/data`).
package enum DataAccess {
  /// The environment variable with extra allowed folders, separated by colons.
  package static let variable = "SPECBENCH_DATA_PATH"

  private static let extra = Mutex<[String]>([])

  /// Allows the files under `folder` (and its subfolders) for the rest of the process.
  package static func allow(_ folder: String) {
    let resolved = canonical(folder) ?? PathText.standardized(folder)
    extra.withLock { if !$0.contains(resolved) { $0.append(resolved) } }
  }

  /// Runs `body` with the files under `folders` allowed, and takes back the ones that were not
  /// allowed before: to check a path the user typed before the command that names it succeeds.
  package static func allowing<T>(_ folders: [String], _ body: () throws(DataError) -> T) throws(DataError) -> T {
    let added = extra.withLock { current -> [String] in
      let new = folders.map { canonical($0) ?? PathText.standardized($0) }.filter { !current.contains($0) }
      current += new
      return new
    }
    defer { extra.withLock { current in current.removeAll { added.contains($0) } } }
    return try body()
  }

  /// The folders allowed besides the spec's own.
  package static var allowedFolders: [String] {
    let fromEnvironment = (ProcessInfo.processInfo.environment[variable] ?? "").split(separator: ":").map(String.init)
      .filter { !$0.isEmpty }.compactMap(canonical)
    return extra.withLock { $0 } + fromEnvironment
  }

  /// The file a data path names, checked against the policy.
  ///
  /// - Parameters:
  ///   - path: as written in the spec.
  ///   - folder: the spec file's folder (the current folder for a session not yet saved).
  ///   - field: the JSON path of the field, for messages (`data.path`).
  package static func resolve(_ path: String, in folder: String, field: String) throws(DataError) -> String {
    guard !path.contains("\0") else {
      throw .unreadable(path: TextExcerpt.quoted(path), reason: "\(field) contains a NUL character, which no file name can hold")
    }
    let base = folder.isEmpty ? FileManager.default.currentDirectoryPath : folder
    let joined = path.hasPrefix("/") ? path : PathText.join(base, path)
    // A file that does not exist is reported as such by the read.
    guard let real = canonical(joined) else { return joined }
    let roots = [canonical(base)].compactMap { $0 } + allowedFolders
    if roots.contains(where: { real == $0 || real.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) { return joined }
    let shown = TextExcerpt.quoted(path, limit: 80)
    throw .mismatch(
      "\(field): \(shown) leads outside the session's folder (\(canonical(base) ?? base)); a session file may name data files only inside its own folder. To read it, allow its folder: --allow-data \(PathText.folder(real)) on the command line, or \(variable)"
    )
  }

  /// The absolute path with every symbolic link resolved, or nil when nothing is there.
  static func canonical(_ path: String) -> String? {
    guard let pointer = realpath(path, nil) else { return nil }
    defer { free(pointer) }
    return String(cString: pointer)
  }
}
