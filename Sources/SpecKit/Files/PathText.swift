/// Path arithmetic on plain strings, for every module. Foundation's `NSString` path methods are
/// not used: on Linux some of them trap on short relative paths (`("y" as
/// NSString).deletingLastPathComponent` crashes with Swift 6.3's Foundation), and a path from a
/// user is exactly where a crash must not happen.
package enum PathText {
  /// The folder part: `a/b/c.json` → `a/b`; `c.json` → ``; `/c.json` → `/`.
  package static func folder(_ path: String) -> String {
    let trimmed = trimmingTrailingSlashes(path)
    guard let slash = trimmed.lastIndex(of: "/") else { return "" }
    if slash == trimmed.startIndex { return "/" }
    return trimmingTrailingSlashes(String(trimmed[..<slash]))
  }

  /// The folder part, as a path to open: `.` for a bare file name.
  public static func folderOrCurrent(_ path: String) -> String {
    let folder = folder(path)
    return folder.isEmpty ? "." : folder
  }

  /// The last component: `a/b/c.json` → `c.json`; `a/b/` → `b`; `/` → `/`.
  package static func lastComponent(_ path: String) -> String {
    let trimmed = trimmingTrailingSlashes(path)
    if trimmed == "/" { return "/" }
    guard let slash = trimmed.lastIndex(of: "/") else { return trimmed }
    return String(trimmed[trimmed.index(after: slash)...])
  }

  /// The extension of the last component, without the dot (`""` when it has none; a leading
  /// dot, as in `.hidden`, starts no extension).
  package static func pathExtension(_ path: String) -> String {
    let last = lastComponent(path)
    guard let dot = last.lastIndex(of: "."), dot != last.startIndex else { return "" }
    return String(last[last.index(after: dot)...])
  }

  /// The path without the last component's extension: `a/b.c.json` → `a/b.c`.
  package static func deletingExtension(_ path: String) -> String {
    let ext = pathExtension(path)
    guard !ext.isEmpty else { return path }
    let trimmed = trimmingTrailingSlashes(path)
    return String(trimmed.dropLast(ext.count + 1))
  }

  /// `folder/name`; `name` alone when the folder is empty.
  package static func join(_ folder: String, _ name: String) -> String {
    if folder.isEmpty { return name }
    return folder.hasSuffix("/") ? folder + name : folder + "/" + name
  }

  /// The path with `.` components, empty components and `x/..` pairs removed (no file system
  /// access, no links resolved).
  package static func standardized(_ path: String) -> String {
    let absolute = path.hasPrefix("/")
    var parts: [Substring] = []
    for part in path.split(separator: "/") {
      if part == "." { continue }
      if part == "..", let last = parts.last, last != ".." {
        parts.removeLast()
        continue
      }
      if part == "..", absolute { continue }
      parts.append(part)
    }
    let joined = parts.joined(separator: "/")
    return absolute ? "/" + joined : (joined.isEmpty ? "." : joined)
  }

  /// `path` as an absolute, standardized path (relative paths from `current`).
  package static func absolute(_ path: String, from current: String) -> String {
    standardized(path.hasPrefix("/") ? path : join(current, path))
  }

  /// The relative path from the folder `from` to `to`, both absolute: `../data/x.csv`.
  package static func relative(from folder: String, to target: String) -> String {
    let base = standardized(folder).split(separator: "/")
    let goal = standardized(target).split(separator: "/")
    var common = 0
    while common < base.count, common < goal.count, base[common] == goal[common] { common += 1 }
    let parts = Array(repeating: "..", count: base.count - common) + goal[common...].map(String.init)
    return parts.isEmpty ? "." : parts.joined(separator: "/")
  }

  private static func trimmingTrailingSlashes(_ path: String) -> String {
    var text = path
    while text.count > 1 && text.hasSuffix("/") { text.removeLast() }
    return text
  }
}
