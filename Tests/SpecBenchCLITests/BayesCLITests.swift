import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

/// `specbench posterior`, `calibration` and `predict` on the real binary, and the example that
/// sessions/README.md documents.
@Suite("Posterior, calibration and predict on the command line", .serialized)
struct BayesCLITests {
  /// OpenBLAS's AVX2 kernels, which every machine the suite runs on has: with AVX-512 it would
  /// choose others, whose rounding gives other digits after 3000 steps than the README's.
  static let documentedKernels = ["OPENBLAS_CORETYPE": "Haswell", "SPECBENCH_SMALL_PRODUCTS": "avx2"]

  /// sessions/blobs-laplace.json trained once (3000 steps on fast) into a fresh folder.
  static let trained: String = {
    let folder = temporaryFolder("specbench-bayes")
    let result = try! runProcess(
      specbenchExecutable, ["run", repositoryPath("sessions/blobs-laplace.json"), "--save", folder + "/trained"],
      environment: documentedKernels)
    precondition(result.status == 0, result.stderr)
    return folder
  }()

  func json(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
  }

  /// sessions/README.md: the last-layer posterior keeps the accuracy and lowers NLL and ECE.
  @Test func theExamplesPosteriorLowersNLLAndECEAtEqualAccuracy() throws {
    let folder = Self.trained
    let result = try runProcess(
      specbenchExecutable, ["posterior", folder + "/trained.json", "--json", "--save", folder + "/post"],
      environment: Self.documentedKernels)
    #expect(result.status == 0, "\(result.stderr)")
    let object = try json(result.stdout)
    let posterior = try #require(object["posterior"] as? [String: Any])
    #expect(posterior["subset"] as? String == "last_layer" && posterior["prior_tuning"] as? String == "marglik")
    let calibration = try #require(object["calibration"] as? [String: Any])
    #expect(calibration["split"] as? String == "validation")
    let predictives = try #require(calibration["predictives"] as? [String: [String: Any]])
    let point = try #require(predictives["point"]), laplace = try #require(predictives["laplace last_layer full probit"])
    let (pointNLL, laplaceNLL) = (point["nll"] as! Double, laplace["nll"] as! Double)
    let (pointECE, laplaceECE) = (point["ece"] as! Double, laplace["ece"] as! Double)
    #expect(point["accuracy"] as! Double == laplace["accuracy"] as! Double)
    #expect(laplaceNLL < pointNLL / 2, "NLL \(pointNLL) → \(laplaceNLL)")
    #expect(laplaceECE < pointECE / 2, "ECE \(pointECE) → \(laplaceECE)")
    // The README's table shows these figures.
    let readme = try String(contentsOfFile: repositoryPath("sessions/README.md"), encoding: .utf8)
    for figure in [pointNLL, laplaceNLL, pointECE, laplaceECE] {
      #expect(readme.contains(String(format: "%.4f", figure)), "sessions/README.md lacks \(String(format: "%.4f", figure))")
    }
    // The saved session has its posterior and predicts with it; far from the data it is less sure.
    try "x,y\n0,0\n30,30\n".write(toFile: folder + "/new.csv", atomically: true, encoding: .utf8)
    let sure = try runProcess(specbenchExecutable, ["predict", folder + "/trained.json", "--data", folder + "/new.csv", "--json"])
    let unsure = try runProcess(specbenchExecutable, ["predict", folder + "/post.json", "--data", folder + "/new.csv", "--json"])
    #expect(sure.status == 0 && unsure.status == 0, "\(sure.stderr) \(unsure.stderr)")
    let far = { (text: String) throws -> Double in
      let line = text.split(separator: "\n")[1]
      return (try self.json(String(line))["probabilities"] as! [Double]).max()!
    }
    let (sureTop, unsureTop) = (try far(sure.stdout), try far(unsure.stdout))
    #expect(sureTop > 0.99 && unsureTop < 0.95, "\(sure.stdout)\n\(unsure.stdout)")
    #expect(unsure.stdout.contains("\"logit_std\""))
    // Training the session with its posterior moves the weights: the posterior is removed, and said.
    let trainedOn = try runProcess(specbenchExecutable, ["run", folder + "/post.json", "--steps", "1", "--save", folder + "/moved"])
    #expect(trainedOn.status == 0, "\(trainedOn.stderr)")
    let moved = try SessionFile.load(folder + "/moved.json")
    #expect(moved.spec.posterior == nil && moved.tensors?.keys.contains { $0.hasPrefix("posterior/") } == false)
    #expect(moved.spec.history.events.contains { $0.kind == "posterior" && $0.detail.contains("training moves the weights") })
  }

  @Test func predictReadsCSVsWithAndWithoutTargetsAndDataObjects() throws {
    let folder = Self.trained
    // A data object: the training data's own generator, so the targets come along.
    try #"{"type": "blobs", "samples": 50, "centers": 3, "features": 2, "std": 4.5, "seed": 4}"#.write(
      toFile: folder + "/more.json", atomically: true, encoding: .utf8)
    let result = try runProcess(specbenchExecutable, ["predict", folder + "/trained.json", "--data", folder + "/more.json", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let lines = result.stdout.split(separator: "\n")
    #expect(lines.count == 51)
    let summary = try #require(try json(String(lines.last!))["summary"] as? [String: Any])
    #expect(summary["samples"] as? Int == 50 && summary["predictive"] as? String == "point")
    #expect((summary["calibration"] as? [String: Any])?["samples"] as? Int == 50)
    let first = try json(String(lines[0]))
    #expect((first["probabilities"] as! [Double]).reduce(0, +) > 0.999_999)
    // A CSV with the target column last.
    try "x,y,label\n1,2,0\n-3,4,2\n".write(toFile: folder + "/labelled.csv", atomically: true, encoding: .utf8)
    let labelled = try runProcess(specbenchExecutable, ["predict", folder + "/trained.json", "--data", folder + "/labelled.csv"])
    #expect(labelled.status == 0 && labelled.stdout.contains("predictive") && labelled.stdout.contains("Brier"), "\(labelled.stdout)")
    // The command-line calibration, as JSON.
    let calibration = try runProcess(specbenchExecutable, ["calibration", folder + "/trained.json", "--split", "train", "--json"])
    #expect(calibration.status == 0, "\(calibration.stderr)")
    #expect(try json(calibration.stdout)["split"] as? String == "train")
  }

  @Test(.timeLimit(.minutes(1)))
  func badPredictionDataIsNamedWithItsLineAndColumn() throws {
    let folder = Self.trained
    let cases: [(String, String, String)] = [
      ("columns.csv", "1,2,3,4\n", "has 4 columns, but the model takes 2 inputs"),
      ("nan.csv", "x,y\n1,2\n3,nan\n", "nan.csv:3:2: column 2 (y) must be a finite number, got \"nan\""),
      ("class.csv", "x,y,c\n1,2,7\n", "class.csv:2:3: \"7\" is not a class of the session; a class is its index from 0 to 2"),
      ("ragged.csv", "1,2\n3\n", "ragged.csv:2: has 1 fields, but the first row has 2"),
      ("nul.csv", "1,2\u{0}\n", "not UTF-8 text"),
      (
        "object.json", #"{"type": "blobs", "samples": 10, "centers": 3, "features": 3}"#,
        "its samples have shape [3], but the model takes [2]"
      ),
      (
        "classes.json", #"{"type": "spirals", "samples": 10, "classes": 5}"#,
        "its samples have class 4, but the model tells 3 classes apart"
      ),
      ("broken.json", #"{"type": "blobs", "samples": -1}"#, "data.samples"),
      ("escape.json", #"{"type": "csv", "path": "../../../../etc/passwd", "target": 0, "task": "classification"}"#, "data.path"),
    ]
    for (name, text, fragment) in cases {
      try text.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8)
      let result = try runProcess(specbenchExecutable, ["predict", folder + "/trained.json", "--data", folder + "/" + name])
      #expect(result.status == 1 && result.stderr.contains(fragment), "\(name): \(result.stderr)")
    }
    // Special files are refused at once.
    #expect(mkfifo(folder + "/pipe.csv", 0o600) == 0)
    try FileManager.default.createDirectory(atPath: folder + "/dir.csv", withIntermediateDirectories: true)
    for special in [folder + "/pipe.csv", folder + "/dir.csv", "/dev/zero"] {
      let result = try runProcess(specbenchExecutable, ["predict", folder + "/trained.json", "--data", special])
      #expect(result.status == 1 && result.stderr.contains("not a regular file"), "\(special): \(result.stderr)")
    }
  }

  @Test func theCapabilityTableSaysWhoDoesWhat() throws {
    let result = try runProcess(specbenchExecutable, ["backends"])
    #expect(result.status == 0)
    let lines = result.stdout.split(separator: "\n").map(String.init)
    let variational = try #require(lines.first { $0.hasPrefix("variational layers (model.variational)") })
    #expect(variational.split(separator: " ", omittingEmptySubsequences: true).suffix(3) == ["yes", "yes", "-"], "\(variational)")
    #expect(lines.contains { $0.hasPrefix("Laplace posterior (posterior)") && $0.contains("yes (no backend needed)") })
    let export = try #require(lines.first { $0.hasPrefix("variational layers") && $0.contains("mean network") })
    #expect(export.contains(" refused ") && export.hasSuffix("the mean network"), "\(export)")
  }

  @Test func aPosteriorThatCannotBeHadIsExplained() throws {
    let folder = temporaryFolder("specbench-bayes-bad")
    // Untrained.
    let untrained = try runProcess(specbenchExecutable, ["posterior", repositoryPath("sessions/blobs-laplace.json")])
    #expect(untrained.status == 1 && untrained.stderr.contains("the session has not trained yet"), "\(untrained.stderr)")
    // huber has no likelihood (sessions/blobs.json, trained a little).
    _ = try runProcess(specbenchExecutable, ["run", repositoryPath("sessions/blobs.json"), "--steps", "3", "--save", folder + "/b"])
    let huber = try runProcess(specbenchExecutable, ["posterior", folder + "/b.json"])
    #expect(huber.status == 1 && huber.stderr.contains("loss.type: huber is not the negative log-likelihood"), "\(huber.stderr)")
    let setting = try runProcess(specbenchExecutable, ["posterior", Self.trained + "/trained.json", "--hessian", "blocky"])
    #expect(setting.status == 1 && setting.stderr.contains("hessian must be one of full, diag, kron"), "\(setting.stderr)")
    #expect(FileManager.default.fileExists(atPath: folder + "/b.json"))
  }
}
