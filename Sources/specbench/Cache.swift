import ArgumentParser
import Datasets
import Foundation
import SpecKit

struct CacheCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cache",
    abstract: "Where the cache of parsed data files is, what it holds, and clearing it.",
    discussion: """
      A CSV file of 1 MiB or more is parsed once: its arrays are kept in the cache and read \
      back on the next open while the file is unchanged (its path, size, modification time, \
      inode and sampled bytes, and the data fields that change parsing). The cache is \
      $SPECBENCH_CACHE_DIR, else $XDG_CACHE_HOME/specbench/data, else ~/.cache/specbench/data; \
      SPECBENCH_CACHE=off turns it off. It keeps at most 2 GiB, dropping what was used least \
      recently. See docs/training.md.
      """
  )

  @Flag(help: "Delete every entry.")
  var clear = false

  func run() throws {
    guard let cache = DataCacheLocation.current else {
      print("the data cache is off (SPECBENCH_CACHE=off, or no HOME to keep it under)")
      return
    }
    if clear {
      let (entries, bytes) = cache.clear()
      print("\(cache.folder): deleted \(entries) entr\(entries == 1 ? "y" : "ies") (\(ByteCount.text(bytes)))")
      return
    }
    let (entries, bytes) = cache.contents
    print(
      "\(cache.folder): \(entries) entr\(entries == 1 ? "y" : "ies"), \(ByteCount.text(bytes)) of at most \(ByteCount.text(cache.limit))")
  }
}
