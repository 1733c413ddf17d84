import Foundation
import SpecBenchTestSupport
import SpecKit
import TermPlot
import Testing

@testable import Dashboard

#if canImport(Glibc)
  import Glibc
#endif

@Suite("Themes")
struct ThemeTests {
  @Test func theFiveThemesLoadAndDefaultDarkComesFirst() {
    let library = ThemeLibrary.load(folders: [repositoryPath("themes")])
    #expect(library.problems.isEmpty, "\(library.problems)")
    #expect(library.themes.map(\.name) == ["default-dark", "high-contrast", "light", "mono", "solarized"])
    for theme in library.themes {
      for role in Theme.roleNames { #expect(theme.styles[role] != nil, "\(theme.name) styles \(role)") }
    }
  }

  @Test func theBuiltInDefaultIsTheFile() throws {
    let text = try String(contentsOfFile: repositoryPath("themes/default-dark.json"), encoding: .utf8)
    #expect(try Theme.parse(text, file: "default-dark.json") == Theme.builtInDefault)
  }

  @Test(arguments: [
    ("{\"specbench_theme\": 1," as String, "line 1, column 23"),
    ("[]", "must hold one JSON object, not an array"),
    (#"{"name": "x", "series": ["red"]}"#, "specbench_theme (line 1, column 1): missing"),
    (#"{"specbench_theme": 2, "name": "x", "series": ["red"]}"#, "version 2 is newer than this SpecBench reads (1)"),
    (#"{"specbench_theme": 1, "name": "x", "series": []}"#, "series (line 1, column 47): an array of at least one colour"),
    (##"{"specbench_theme": 1, "name": "x", "series": ["#12345"]}"##, "series[0] (line 1, column 48): not a colour"),
    (
      #"{"specbench_theme": 1, "name": "x", "series": ["red"], "roles": {"titel": {}}}"#,
      #"roles.titel (line 1, column 66): unknown role; did you mean "title"?"#
    ),
    (
      #"{"specbench_theme": 1, "name": "x", "series": ["red"], "roles": {"title": {"fg": "bleu"}}}"#,
      "roles.title.fg (line 1, column 82): not a colour"
    ),
    (
      #"{"specbench_theme": 1, "name": "x", "series": ["red"], "roles": {"title": {"bold": "yes"}}}"#,
      "roles.title.bold (line 1, column 84): must be true or false"
    ),
    (#"{"specbench_theme": 1, "name": "x", "series": ["red"], "colours": {}}"#, "colours (line 1, column 56): unknown key"),
  ])
  func aBrokenThemeSaysWhatAndWhere(text: String, expected: String) {
    #expect(throws: ThemeError.self) { try Theme.parse(text, file: "t.json") }
    do {
      _ = try Theme.parse(text, file: "t.json")
    } catch {
      #expect(error.description.hasPrefix("t.json: not a usable theme:"))
      #expect(error.description.contains(expected), "\(error.description)")
    }
  }

  @Test func aBrokenFileIsReportedAndTheOthersStay() throws {
    let folder = temporaryFolder()
    try #"{"specbench_theme": 1, "name": "mine", "series": ["nope"]}"#.write(
      toFile: folder + "/mine.json", atomically: true, encoding: .utf8)
    try #"{"specbench_theme": 1, "name": "ok", "series": ["red"]}"#.write(toFile: folder + "/ok.json", atomically: true, encoding: .utf8)
    let library = ThemeLibrary.load(folders: [folder])
    #expect(library.themes.map(\.name) == ["default-dark", "ok"])
    #expect(library.themes[0] == Theme.builtInDefault)
    #expect(library.problems.count == 1)
    #expect(library.problems[0].contains("mine.json: not a usable theme") && library.problems[0].contains("series[0]"))
  }

  /// A FIFO, a folder or a theme whose name holds an escape sequence is reported and left out;
  /// reading a FIFO with no writer would block the dashboard forever.
  @Test func hostileThemeFilesAreReportedNotRead() throws {
    let folder = temporaryFolder()
    #expect(mkfifo(folder + "/pipe.json", 0o600) == 0)
    try FileManager.default.createDirectory(atPath: folder + "/dir.json", withIntermediateDirectories: true)
    try #"{"specbench_theme": 1, "name": "evil\u001b]0;x\u0007", "series": ["red"]}"#.write(
      toFile: folder + "/evil.json", atomically: true, encoding: .utf8)
    let library = ThemeLibrary.load(folders: [folder])
    #expect(library.themes.map(\.name) == ["default-dark"])
    #expect(library.problems.count == 3, "\(library.problems)")
    #expect(library.problems.contains { $0.contains("pipe.json") && $0.contains("FIFO") })
    #expect(library.problems.contains { $0.contains("dir.json") && $0.contains("a folder") })
    #expect(library.problems.contains { $0.contains("evil.json") && $0.contains("without control characters") })
  }

  @Test func anEarlierFolderWinsForTheSameName() throws {
    let (first, second) = (temporaryFolder(), temporaryFolder())
    try #"{"specbench_theme": 1, "name": "light", "series": ["red"]}"#.write(toFile: first + "/a.json", atomically: true, encoding: .utf8)
    let library = ThemeLibrary.load(folders: [first, second, repositoryPath("themes")])
    #expect(library.named("light")?.series == [.basic(1)])
  }

  @Test func coloursMapToEachDepth() {
    #expect(ThemeColor("#ff0000")?.number(depth: .palette256) == 196)
    #expect(ThemeColor("#808080")?.number(depth: .palette256) == 244)
    #expect(ThemeColor("#00afd7")?.number(depth: .palette256) == 38)
    #expect(ThemeColor("#00afd7")?.number(depth: .direct) == 0x00AFD7)
    #expect(ThemeColor("#00afd7")?.number(depth: .basic, colors: 8) == 6)
    #expect(ThemeColor("bright-red")?.number(depth: .basic, colors: 16) == 9)
    #expect(ThemeColor("bright-red")?.number(depth: .basic, colors: 8) == 1)
    #expect(ThemeColor("default")?.number(depth: .direct) == -1)
    #expect(ThemeColor("#00afd7")?.number(depth: .none) == -1)
    #expect(ThemeColor("blue")?.sgr(depth: .palette256, background: true) == "44")
    #expect(ThemeColor("#102030")?.sgr(depth: .direct, background: false) == "38;2;16;32;48")
    #expect(ThemeColor("orange") == nil && ThemeColor("#12") == nil)
  }

  /// On 8 colours a mid grey foreground would turn black or white; it is drawn in the
  /// terminal's colour, dimmed. Colours, near-black, near-white and other depths stay as they are.
  @Test func midGreysOnEightColoursUseTheTerminalsColourDimmed() {
    let border = ThemeStyle(foreground: ThemeColor("#585858")!)
    #expect(border.adapted(to: .basic) == ThemeStyle(foreground: .terminalDefault, dim: true))
    #expect(border.adapted(to: .palette256) == border && border.adapted(to: .direct) == border)
    for kept in ["#000000", "#ffffff", "#00afd7", "#202020", "#e0e0e0", "red"] {
      let style = ThemeStyle(foreground: ThemeColor(kept)!, background: ThemeColor("#a8a8a8")!)
      #expect(style.adapted(to: .basic) == style, "\(kept)")
    }
  }

  @Test func searchFoldersFollowTheEnvironment() {
    let folders = ThemeLibrary.defaultFolders(
      environment: ["SPECBENCH_THEMES": "/a:/b", "XDG_CONFIG_HOME": "/cfg", "HOME": "/home/u"], executable: "/nowhere/bin/specbench")
    #expect(Array(folders.prefix(3)) == ["/a", "/b", "/cfg/specbench/themes"])
    #expect(ThemeLibrary.defaultFolders(environment: ["HOME": "/home/u"], executable: "/x").contains("/home/u/.config/specbench/themes"))
    let built = ThemeLibrary.defaultFolders(environment: [:], executable: repositoryPath(".build/debug/specbench"))
    #expect(built.last == repositoryPath("themes"))
  }
}
