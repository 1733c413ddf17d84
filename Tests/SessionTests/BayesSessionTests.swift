import Backends
import Foundation
import SpecBenchTestSupport
import SpecKit
import Testing

@testable import Session

/// The posterior, calibration and variational commands through the engine.
@Suite("Bayes in the workbench", .serialized)
struct BayesSessionTests {
  /// A small spirals session, trained.
  func trained() -> SessionEngine {
    let engine = SessionEngine(bundle: SessionBundle(spec: SessionEngine.emptySpec(name: "b", input: [2])))
    for line in [
      "new b --input 2", "data spirals samples=120 classes=3 noise=0.1 seed=7 validation_fraction=0.25", "add dense 16 tanh", "add dense 3",
      "loss softmax_cross_entropy", "optimizer adam lr=0.02", "batch 90", "backend reference", "train 60 --wait",
    ] {
      let outcome = engine.execute(line)
      #expect(!outcome.failed, "\(line): \(outcome.text)")
    }
    waitForTraining(engine)
    return engine
  }

  func waitForTraining(_ engine: SessionEngine) {
    while engine.isTraining { usleep(2_000) }
    engine.refresh()
  }

  @Test func aPosteriorIsFittedKeptSavedAndRemovedWhenTrainingMovesTheWeights() throws {
    let engine = trained()
    let weights = engine.state!.tensors["param/dense2.weight"]!
    let outcome = engine.execute("posterior")
    #expect(!outcome.failed, "\(outcome.text)")
    #expect(outcome.text.contains("posterior: laplace over last_layer (51 parameters), full GGN of 90 samples"))
    #expect(outcome.text.contains("calibration on validation (30 samples)") && outcome.text.contains("laplace last_layer full probit"))
    let posterior = try #require(engine.spec.posterior)
    #expect(posterior.priorTuning == .marglik && posterior.step == 60 && posterior.dataCount == 90)
    #expect(engine.state!.tensors["posterior/ggn"]?.shape == [51, 51])
    #expect(engine.state!.tensors["param/dense2.weight"] == weights)
    #expect(engine.spec.history.events.last?.kind == "posterior")
    // predict answers with the posterior's predictive.
    let predicted = engine.execute("predict 0.1,0.2 9,9")
    #expect(
      predicted.text.contains("(laplace last_layer full probit predictive)") && predicted.text.contains("entropy"), "\(predicted.text)")
    // Saved and loaded with the session: the same predictive.
    let folder = temporaryFolder()
    #expect(!engine.execute("save \(folder)/b").failed)
    let before = engine.execute("calibration").text
    let loaded = try SessionFile.load(folder + "/b.json")
    #expect(loaded.spec.posterior == posterior)
    let reopened = SessionEngine(bundle: loaded, path: folder + "/b.json")
    #expect(reopened.execute("calibration").text == before)
    // Training moves the weights: the posterior goes, said as an event.
    #expect(!engine.execute("train 2 --wait").failed)
    waitForTraining(engine)
    #expect(engine.spec.posterior == nil)
    #expect(engine.state!.tensors.keys.allSatisfy { !$0.hasPrefix("posterior/") })
    #expect(engine.takeEvents().contains { $0.kind == .posterior && $0.text.contains("training moves the weights") })
    #expect(!engine.execute("calibration").text.contains("laplace"))
  }

  /// A new prior precision or predictive for the posterior the session has reuses its stored
  /// curvature; another subset or hessian fits again.
  @Test func aPosteriorIsRetunedFromItsStoredCurvature() throws {
    let engine = trained()
    #expect(!engine.execute("posterior").failed)
    let tuned = try #require(engine.spec.posterior?.priorPrecision)
    let curvature = engine.state!.tensors["posterior/ggn"]!
    var outcome = engine.execute("posterior prior=0.5 predictive=mc samples=40")
    #expect(outcome.text.contains("full GGN of 90 samples (the stored curvature), prior precision 0.5 (as given)"), "\(outcome.text)")
    #expect(engine.spec.posterior?.predictive == .mc && engine.spec.posterior?.samples == 40)
    #expect(engine.state!.tensors["posterior/ggn"] == curvature)
    outcome = engine.execute("posterior")
    #expect(outcome.text.contains("(the stored curvature)") && engine.spec.posterior?.priorPrecision == tuned, "\(outcome.text)")
    outcome = engine.execute("posterior hessian=diag")
    #expect(!outcome.text.contains("(the stored curvature)") && engine.state!.tensors["posterior/ggn"] == nil, "\(outcome.text)")
    #expect(engine.state!.tensors["posterior/ggn_diag/dense2.weight"] != nil)
  }

  @Test func aRegressionPosteriorMeasuresItsNoiseAndReportsDeviations() throws {
    let engine = SessionEngine(bundle: SessionBundle(spec: SessionEngine.emptySpec(name: "r", input: [1])))
    for line in [
      "new r --input 1", "data sine samples=200 noise=0.1 seed=3 validation_fraction=0.25", "add dense 16 tanh", "add dense 1", "loss mse",
      "optimizer adam lr=0.02", "batch 150", "backend reference", "train 300 --wait",
    ] {
      let outcome = engine.execute(line)
      #expect(!outcome.failed, "\(line): \(outcome.text)")
    }
    waitForTraining(engine)
    let outcome = engine.execute("posterior")
    #expect(!outcome.failed, "\(outcome.text)")
    let noise = try #require(engine.spec.posterior?.noiseSigma)
    #expect(noise > 0.05 && noise < 0.3, "the residuals' RMS: \(noise)")
    #expect(outcome.text.contains("NLL") && outcome.text.contains("within 2 std"), "\(outcome.text)")
    let report = try #require(engine.calibration?.report.rows.last?.report)
    #expect(!report.isClassification && report.withinTwoStd > 0.8 && report.meanStd >= noise, "\(report)")
    #expect(engine.execute("posterior noise=0.2").text.contains("noise σ 0.2"))
  }

  @Test func everyHessianAndPredictiveFitsAndAnEditRemovesIt() throws {
    let engine = trained()
    for line in ["posterior subset=all hessian=kron", "posterior subset=all hessian=diag predictive=mc samples=20", "posterior prior=0.5"] {
      let outcome = engine.execute(line)
      #expect(!outcome.failed, "\(line): \(outcome.text)")
    }
    #expect(engine.spec.posterior?.priorPrecision == 0.5 && engine.spec.posterior?.priorTuning == .fixed)
    // A change of optimizer keeps it (the weights and the likelihood are the same) …
    #expect(!engine.execute("optimizer sgd lr=0.1").failed)
    #expect(engine.spec.posterior != nil)
    // … a change of the model does not.
    #expect(!engine.execute("set dense1 units=8").failed)
    #expect(engine.spec.posterior == nil)
    #expect(engine.state!.tensors.keys.allSatisfy { !$0.hasPrefix("posterior/") })
    // And undo brings back the session as it was, posterior and all.
    #expect(!engine.execute("undo").failed)
    #expect(engine.spec.posterior?.priorPrecision == 0.5)
  }

  @Test func aPosteriorThatCannotBeHadChangesNothing() throws {
    let engine = trained()
    let before = (engine.spec, engine.state)
    for (line, fragment) in [
      ("posterior hessian=blocky", "hessian must be one of full, diag, kron"),
      ("posterior noise=0.3", "noise_sigma is for mse"),
      ("posterior prior=-1", "prior must be a positive number"),
      ("posterior off", "the session has no posterior"),
      ("posterior sampels=3", "did you mean \"samples\""),
    ] {
      let outcome = engine.execute(line)
      #expect(outcome.failed && outcome.text.contains(fragment), "\(line): \(outcome.text)")
    }
    _ = engine.execute("loss huber")
    let huber = engine.execute("posterior")
    #expect(huber.failed && huber.text.contains("huber is not the negative log-likelihood"), "\(huber.text)")
    _ = engine.execute("undo")
    #expect(engine.spec == before.0 && engine.state == before.1)
    // Not while training.
    _ = engine.execute("train 100000")
    let running = engine.execute("posterior")
    #expect(running.failed && running.text.contains("stop it first"), "\(running.text)")
    _ = engine.execute("stop")
    waitForTraining(engine)
  }

  @Test func variationalLayersTurnOnWithTheTrainedWeightsAsMeansAndOffKeepingThem() throws {
    let engine = trained()
    let mean = engine.state!.tensors["param/dense2.weight"]!
    let on = engine.execute("variational dense2 prior=gaussian sigma=0.5 train_samples=2")
    #expect(!on.failed, "\(on.text)")
    #expect(on.text.contains("the trained weights are the means"))
    #expect(engine.spec.model.variational?.layers == ["dense2"])
    #expect(engine.state!.tensors["param/dense2.weight"] == mean)
    #expect(engine.state!.tensors["param/dense2.weight_rho"]!.scalars.allSatisfy { $0 == -5 })
    #expect(engine.snapshot.tensorValues["dense2.weight_sigma"]?.first == VariationalSpec.softplus(-5))
    // It trains on reference and fast, and calibration shows the variational predictive.
    for backend in ["reference", "fast"] {
      #expect(!engine.execute("backend \(backend)").failed)
      #expect(!engine.execute("train 5 --wait").failed)
      waitForTraining(engine)
    }
    #expect(engine.state!.step == 70)
    #expect(engine.execute("calibration").text.contains("variational (32 draws)"))
    #expect(engine.execute("posterior").text.contains("model.variational"))
    // Exports: ONNX holds the mean network and says so; the PyTorch script is refused.
    let folder = temporaryFolder()
    let onnx = engine.execute("export onnx \(folder)/v.onnx")
    #expect(!onnx.failed && onnx.text.contains("not carried: the variational layers' σ (model.variational: dense2)"), "\(onnx.text)")
    let torch = engine.execute("export pytorch \(folder)/v.py")
    #expect(torch.failed && torch.text.contains("model.variational: the script would train dense2 as point weights"), "\(torch.text)")
    #expect(!FileManager.default.fileExists(atPath: folder + "/v.py"))
    // jax says it cannot.
    #expect(JaxBackend().capabilities.unsupported(in: engine.spec).map(\.path.description) == ["model.variational"])
    let trainedMean = engine.state!.tensors["param/dense2.weight"]!
    #expect(!engine.execute("variational off").failed)
    #expect(engine.spec.model.variational == nil && engine.state!.tensors["param/dense2.weight"] == trainedMean)
    #expect(engine.state!.tensors.keys.allSatisfy { !$0.contains("_rho") })
  }

  @Test func aVariationalLayerThatIsNotThereIsNamed() {
    let engine = trained()
    let before = (engine.spec, engine.state)
    for (line, fragment) in [
      ("variational dense3", "model.variational.layers[0]: names \"dense3\", but the model has no such layer (did you mean \"dense1\"?)"),
      ("variational dense2,dense2", "names \"dense2\" twice"),
      ("variational dense2 prior=gaussian sigma=0", "model.variational.prior.sigma"),
      ("variational dense2 train_samples=65", "an integer from 1 to 64"),
      ("variational dense2 colour=blue", "colour"),
      ("variational off", "the model has no variational layers"),
    ] {
      let outcome = engine.execute(line)
      #expect(outcome.failed && outcome.text.contains(fragment), "\(line): \(outcome.text)")
    }
    #expect(engine.spec == before.0 && engine.state == before.1)
  }
}
