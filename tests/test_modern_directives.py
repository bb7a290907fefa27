"""The directives of the modern semantics: parsed, defaulted to the thesis, every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_batchfile import HEAD, REPO, errors_of, parse

from actors.batchfile.parse import load_batch
from brain.modern import Modern, Schedule
from brain.preprocessing import PreProcessing

MODERN = HEAD + "Semantics: Modern\n"


def network(folder: Path, *layers: str) -> str:
    (folder / "net.txt").write_text("\n".join(layers) + "\n")
    return f"NetworkFile: {folder / 'net.txt'}\nTrainFile: train.csv\nTestFile: test.csv\n"


def test_defaults_are_the_thesis_behaviour():
    s = parse(HEAD + "Train: 1").passes[0].settings
    math = (s.semantics, s.loss, s.lambda_l1, s.lambda_l2, s.bias, s.init)
    assert math == ("Thesis", "Quadratic", None, None, True, "Uniform")
    optimizer = (s.optimizer, s.momentum, s.beta1, s.beta2, s.epsilon, s.rho)
    assert optimizer == ("SGD", 0.9, 0.9, 0.999, 1e-8, 0.95)
    runtime = (s.schedule, s.update, s.minibatch, s.precision, s.merge, s.rounds)
    assert runtime == ("Constant", "Online", 100, "float64", "Harmonic", "Sync")
    assert not s.is_modern


def test_every_modern_directive_is_read_in_any_letter_case():
    text = MODERN + (
        "loss: crossentropy\nLambdaL1: 0.001\nLAMBDAL2: 0.002\nBias: off\nInit: lecun\n"
        "Optimizer: nadam\nMomentum: 0.5\nBeta1: 0.8\nBeta2: 0.99\nEpsilon: 1e-7\nRho: 0.9\n"
        "LearningRateSchedule: plateau\nStepEvery: 4\nStepFactor: 0.1\nCosineEpochs: 20\n"
        "PlateauPatience: 3\nPlateauFactor: 0.2\nUpdate: minibatch\nMiniBatch: 32\nPrecision: FLOAT32\n"
        "Merge: mean\nRounds: async\nTrain: 1"
    )
    s = parse(text).passes[0].settings
    math = (s.loss, s.lambda_l1, s.lambda_l2, s.bias, s.init)
    assert math == ("CrossEntropy", 0.001, 0.002, False, "LeCun")
    optimizer = (s.optimizer, s.momentum, s.beta1, s.beta2, s.epsilon, s.rho)
    assert optimizer == ("NAdam", 0.5, 0.8, 0.99, 1e-7, 0.9)
    schedule = (
        s.schedule,
        s.step_every,
        s.step_factor,
        s.cosine_epochs,
        s.plateau_patience,
        s.plateau_factor,
    )
    assert schedule == ("Plateau", 4, 0.1, 20, 3, 0.2)
    runtime = (s.update, s.minibatch, s.precision, s.merge, s.rounds)
    assert runtime == ("MiniBatch", 32, "float32", "Mean", "Async")


def test_lambda_sets_both_terms_unless_one_is_set_on_its_own():
    s = parse(MODERN + "Lambda: 0.01\nTrain: 1").passes[0].settings
    assert (s.effective_lambda_l1, s.effective_lambda_l2) == (0.01, 0.01)
    s = parse(MODERN + "LambdaL1: 0\nLambda: 0.01\nTrain: 1").passes[0].settings
    assert (s.effective_lambda_l1, s.effective_lambda_l2) == (0.0, 0.01)


def test_settings_build_the_modern_hyper_parameters_and_schedule():
    text = MODERN + (
        "LearningRate: 0.2\nLambda: 0\nLambdaL2: 1e-4\nOptimizer: Momentum\nPreProcessing: Proportional\n"
        "ELUAlpha: 1\nLoss: CrossEntropy\nPrecision: float32\nLearningRateSchedule: Step\nStepEvery: 2\n"
        "Update: MiniBatch\nMiniBatch: 50\nTrain: 1\nUpdate: Online\nTrain: 1"
    )
    minibatch, online = (p.settings for p in parse(text).passes)
    assert minibatch.modern_hyper() == Modern(
        learning_rate=0.2, loss="crossentropy", lambda_l1=0.0, lambda_l2=1e-4, optimizer="momentum",
        minibatch=50, precision="float32", preprocessing=PreProcessing.Proportional, elu_alpha=1.0,
    )  # fmt: skip
    assert online.modern_hyper().minibatch == 1
    assert minibatch.learning_rate_schedule() == Schedule("step", step_every=2)


@pytest.mark.parametrize(
    ("line", "message", "allowed"),
    [
        ("LearningRate: -0.1", "LearningRate: -0.1 must be greater than 0", "a finite number > 0"),
        ("Beta1: 1", "Beta1: 1.0 is out of range", "a number in [0, 1)"),
        ("Beta1: 1.5", "Beta1: 1.5 is out of range", "a number in [0, 1)"),
        ("Beta2: -0.1", "Beta2: -0.1 is out of range", "a number in [0, 1)"),
        ("Momentum: 1", "Momentum: 1.0 is out of range", "a number in [0, 1)"),
        ("Rho: nan", "Rho: 'nan' is not a finite number", "a number in [0, 1)"),
        ("Epsilon: 0", "Epsilon: 0.0 must be greater than 0", "a finite number > 0"),
        ("MiniBatch: 0", "MiniBatch: 0 is below 1", "an integer ≥ 1"),
        ("LambdaL1: -1", "LambdaL1: -1.0 is below 0", "a finite number ≥ 0"),
        ("StepFactor: 0", "StepFactor: 0.0 is out of range", "a number in (0, 1]"),
        ("PlateauFactor: 2", "PlateauFactor: 2.0 is out of range", "a number in (0, 1]"),
        ("PlateauPatience: 0", "PlateauPatience: 0 is below 1", "an integer ≥ 1"),
        ("Optimizer: LBFGS", "Optimizer: unknown value 'LBFGS'", "SGD, Momentum, Nesterov, AdaGrad, RMSProp, "
                                                                 "Adam, NAdam, AdaDelta"),
        ("LearningRateSchedule: Exp", "unknown value 'Exp'", "Constant, Step, Cosine, Plateau"),
        ("Semantics: Go", "Semantics: unknown value 'Go'", "Thesis, Modern"),
        ("Loss: Hinge", "Loss: unknown value 'Hinge'", "Quadratic, CrossEntropy"),
        ("Init: Xavier", "Init: unknown value 'Xavier'", "Uniform, He, Glorot, LeCun"),
        ("Update: Batch", "Update: unknown value 'Batch'", "Online, MiniBatch"),
        ("Precision: float16", "Precision: unknown value 'float16'", "float64, float32"),
        ("Merge: Median", "Merge: unknown value 'Median'", "Harmonic, Mean, Sum"),
        ("Rounds: Lockstep", "Rounds: unknown value 'Lockstep'", "Sync, Async"),
        ("Bias: maybe", "Bias: 'maybe' is not a switch", "on, true, yes, off, false, no"),
    ],
)  # fmt: skip
def test_bad_values_name_file_line_and_what_is_allowed(line, message, allowed):
    (error,) = errors_of(MODERN + line + "\nTrain: 1")
    assert error.startswith("/batches/b.txt:5: ")
    assert message in error
    assert error.endswith(f"(allowed: {allowed})")


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("Loss: CrossEntropy", "Loss"),
        ("Optimizer: Adam", "Optimizer"),
        ("Update: MiniBatch", "Update"),
        ("Precision: float32", "Precision"),
        ("Bias: off", "Bias"),
        ("LambdaL1: 0.5", "LambdaL1"),
        ("LambdaL2: 0", "LambdaL2"),
    ],
)
def test_modern_only_settings_are_errors_with_thesis_semantics(line, key):
    (error,) = errors_of(HEAD + line + "\nTrain: 1")
    assert error.startswith("/batches/b.txt:5: ")
    assert f"{key}:" in error and "needs Semantics: Modern" in error
    assert "allowed: Semantics: Modern above this line" in error
    assert parse(MODERN + line + "\nTrain: 1").passes  # fine with modern semantics


def test_thesis_accepts_what_does_not_change_the_step():
    # Init, the schedule, Merge and Rounds work with both semantics; LambdaL1 equal to
    # Lambda changes nothing; a Test pass does not use the optimizer.
    text = HEAD + (
        "Init: He\nLearningRateSchedule: Cosine\nMerge: Sum\nRounds: Async\nLambda: 0.1\nLambdaL1: 0.1\n"
        "Train: 1\nOptimizer: Adam\nTest: 1"
    )
    assert [p.mode for p in parse(text).passes] == ["train", "test"]


def test_bias_off_is_an_error_for_a_thesis_test_too():
    (error,) = errors_of(HEAD + "Train: 1\nBias: off\nTest: 1")
    assert error.startswith("/batches/b.txt:6: Bias: off needs Semantics: Modern")


def test_cross_entropy_needs_a_softmax_or_logistic_output(tmp_path):
    head = network(tmp_path, "Identity, 4", "ReLU, 3", "Identity, 2")
    (error,) = errors_of(head + "Semantics: Modern\nLoss: CrossEntropy\nTrain: 1", tmp_path)
    assert error.startswith(
        f"{tmp_path / 'b.txt'}:6: Loss CrossEntropy needs a SoftMax or Logistic output layer"
    )
    assert f"network file {tmp_path / 'net.txt'} ends in Identity, 2" in error
    assert error.endswith(
        "(allowed: Loss: Quadratic, or a network file whose last layer is SoftMax or Logistic)"
    )
    for output in ("SoftMax, 2", "Logistic, 2"):
        head = network(tmp_path, "Identity, 4", "ReLU, 3", output)
        assert parse(head + "Semantics: Modern\nLoss: CrossEntropy\nTrain: 1", tmp_path).passes


def test_an_unreadable_network_file_is_left_to_the_runner(tmp_path):
    text = f"NetworkFile: {tmp_path / 'missing.txt'}\nTrainFile: t.csv\n"
    text += "Semantics: Modern\nLoss: CrossEntropy\nTrain: 1"
    assert parse(text, tmp_path).passes


def test_selu_without_lecun_init_is_a_warning(tmp_path):
    head = network(tmp_path, "Identity, 4", "SELU, 3", "SoftMax, 2")
    batch = parse(head + "Semantics: Modern\nTrain: 1\nInit: LeCun\nTrain: 1", tmp_path)
    assert len(batch.passes) == 2
    (warning,) = batch.warnings
    assert str(warning).startswith(
        f"{tmp_path / 'b.txt'}:5: network file {tmp_path / 'net.txt'} has SELU layers"
    )
    assert "Init is Uniform" in str(warning) and str(warning).endswith("(allowed: Init: LeCun)")


def test_no_warnings_without_selu(tmp_path):
    head = network(tmp_path, "Identity, 4", "ELU, 3", "SoftMax, 2")
    assert parse(head + "Train: 1", tmp_path).warnings == ()


def test_modern_batch_file_runs_the_modern_benchmark():
    batch = load_batch(REPO / "batch" / "modern.txt")
    assert [p.mode for p in batch.passes] == ["train", "test"] * 10
    assert batch.warnings == ()
    s = batch.passes[0].settings
    assert (s.semantics, s.loss, s.optimizer, s.update, s.minibatch, s.parallel) == (
        "Modern", "CrossEntropy", "Momentum", "MiniBatch", 100, 2,
    )  # fmt: skip
    assert s.persistence_file == REPO / "results" / "modern.npz"
    assert s.result_file == REPO / "results" / "modern.csv"
    assert s.train_file == REPO / "data" / "mnist" / "train-images-idx3-ubyte.gz"
