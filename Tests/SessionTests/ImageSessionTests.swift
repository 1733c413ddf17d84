import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

@testable import Session

/// The image layers through the workbench's commands: built word by word, shown with their
/// shapes and parameters, trained, drawn as filters, refused by name where they do not fit.
@Suite("Images in the workbench")
struct ImageSessionTests {
  func run(_ engine: SessionEngine, _ line: String) {
    let result = engine.execute(line)
    if case .failed(let text) = result { Issue.record("\(line): \(text)") }
  }

  /// A CNN on the built-in digits, as a user types it.
  func digitsCNN() -> SessionEngine {
    let engine = SessionEngine(bundle: SessionBundle(spec: SessionEngine.emptySpec(name: "d", input: [1, 8, 8])))
    for line in [
      "data builtin name=digits validation_fraction=0.25", "add conv2d 6 3 relu padding=same", "add max_pool2d 2",
      "add conv2d 8 kernel=2,2 stride=2 groups=2 activation=tanh", "add reshape 8,2,2", "add global_avg_pool", "add dense 10",
      "loss softmax_cross_entropy", "optimizer adam lr=0.01", "batch 64",
    ] {
      run(engine, line)
    }
    return engine
  }

  @Test func aCNNIsBuiltShownTrainedAndItsFiltersDrawn() throws {
    let engine = digitsCNN()
    let model = engine.execute("show model").text
    for row in [
      "conv2d1           conv2d           [6, 8, 8]      60  6 filters 3×3, padding same, relu",
      "max_pool2d1       max_pool2d       [6, 4, 4]       0  2×2, stride 2",
      "conv2d2           conv2d           [8, 2, 2]     104  8 filters 2×2, stride 2, groups 2, tanh",
      "reshape1          reshape          [8, 2, 2]       0  to [8, 2, 2]", "global_avg_pool1  global_avg_pool  [8]             0",
    ] {
      #expect(model.contains(row), "\(row)\n\(model)")
    }
    let before = engine.execute("filters conv2d1").text
    #expect(before.hasPrefix("conv2d1.weight: 6 filters 3×3"), "\(before)")
    #expect(before.contains("#0") && before.contains("#5") && before.contains("scale:"), "\(before)")
    #expect(before.unicodeScalars.contains { "░▒▓█".unicodeScalars.contains($0) }, "\(before)")
    // The drawing fits any width: the images wrap, and below one image's width it says so.
    guard case .drawing(let drawing) = engine.execute("filters conv2d1") else { throw TestFailure("filters gives a drawing") }
    for width in [1, 5, 8, 9, 30, 80, 200] {
      let grid = drawing.render(width: width)
      #expect(grid.width == width, "at \(width)")
      #expect(grid.plainText.split(separator: "\n").allSatisfy { $0.count <= width }, "at \(width)")
    }
    #expect(drawing.render(width: 5).plainText == "8×6", "\(drawing.render(width: 5).plainText)")
    run(engine, "train 60")
    waitIdle(engine)
    #expect(engine.state?.step == 60)
    let after = engine.execute("filters conv2d1").text
    #expect(after != before, "training moves the filters")
    #expect(engine.execute("hist conv2d1.weight").text.hasPrefix("conv2d1.weight  (54 values)"))
    // The second convolution reads 3 channels in each of its 2 groups.
    #expect(engine.execute("filters conv2d2 1").text.hasPrefix("conv2d2.weight: 8 filters 2×2, input channel 1 of 3 in its group"))
    let accuracy = engine.execute("evaluate").text
    #expect(accuracy.contains("accuracy"), "\(accuracy)")
    // A model that no longer chains is accepted while it is edited, and said at train.
    run(engine, "add reshape 3,3")
    let train = engine.execute("train")
    #expect(train.failed && train.text.contains("reshape2 cannot reshape [10] (10 values) to [3, 3]"), "\(train.text)")
  }

  @Test(arguments: [
    ("filters dense1", "filters: no conv2d layer \"dense1\"; its conv2d layers are conv2d1, conv2d2"),
    ("filters conv2d3", "did you mean \"conv2d1\"?"),
    ("filters conv2d2 3", "conv2d2's filters each read 3 input channels (0 to 2); got 3"),
    ("filters conv2d1 x", "the input channel must be a whole number from 0, got \"x\""),
    ("add conv2d 3 2 groups=2", "must divide filters (3), got 2"),
    ("insert 0 max_pool2d 2 padding=2", "must be at most half the kernel on each axis"),
    ("set conv2d1 padding=same stride=2", "\"same\" needs stride 1"),
  ])
  func mistakesAreRefusedByNameAndChangeNothing(line: String, message: String) {
    let engine = digitsCNN()
    let before = engine.spec
    let result = engine.execute(line)
    guard case .failed(let text) = result else {
      Issue.record("\(line) was accepted: \(result.text)")
      return
    }
    #expect(text.contains(message), "\(line): \(text)")
    #expect(engine.spec == before)
  }
}
