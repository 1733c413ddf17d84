/// "Did you mean …?" for misspelt names: the closest candidate by edit distance, when it is
/// close enough to be a plausible typo (at most a third of the word, and at most 3 edits).
public enum Suggestion {
  public static func nearest(to word: String, in candidates: some Sequence<String>) -> String? {
    let lowered = word.lowercased()
    // Ties go to the candidate sharing the longest prefix with the word ("unit" → "units").
    var best: (candidate: String, distance: Int, prefix: Int)?
    for candidate in candidates {
      let distance = editDistance(lowered, candidate.lowercased())
      let prefix = zip(lowered, candidate.lowercased()).prefix { $0 == $1 }.count
      if let b = best, (distance, -prefix) >= (b.distance, -b.prefix) { continue }
      best = (candidate, distance, prefix)
    }
    guard let best, best.distance > 0 || word != best.candidate else { return best?.candidate }
    let allowed = min(3, max(1, (max(word.count, best.candidate.count) + 2) / 3))
    return best.distance <= allowed ? best.candidate : nil
  }

  /// ` (did you mean "relu"?)` or the empty string.
  static func hint(for word: String, in candidates: some Sequence<String>) -> String {
    nearest(to: word, in: candidates).map { " (did you mean \(JSONWriter.quoted($0))?)" } ?? ""
  }

  /// Damerau–Levenshtein distance (optimal string alignment): a swap of two neighbours is one edit.
  public static func editDistance(_ a: String, _ b: String) -> Int {
    let s = Array(a.unicodeScalars), t = Array(b.unicodeScalars)
    if s.isEmpty { return t.count }
    if t.isEmpty { return s.count }
    var previous2 = [Int](repeating: 0, count: t.count + 1)
    var previous = Array(0...t.count)
    var current = [Int](repeating: 0, count: t.count + 1)
    for i in 1...s.count {
      current[0] = i
      for j in 1...t.count {
        let cost = s[i - 1] == t[j - 1] ? 0 : 1
        current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        if i > 1, j > 1, s[i - 1] == t[j - 2], s[i - 2] == t[j - 1] {
          current[j] = min(current[j], previous2[j - 2] + 1)
        }
      }
      (previous2, previous, current) = (previous, current, previous2)
    }
    return previous[t.count]
  }
}
