"""Hook contracts: an app that breaks one gets one line naming the hook and what to do, exit status 1, no
traceback, and the experiment folder as it was. Run in process on the second app, with one hook broken each."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from regression_app.__main__ import APP
from regression_app.data import RegressionData
from regression_app.runner import RegressionRunner

from conftest import REPO, snapshot
from mnist_classifier.framework import App, DataDescription, Metric, Runner, TestResult
from mnist_classifier.framework.progress import count_items

SMALL = ["--set", "data.size=200"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Experiment 'r' of the second app, trained one epoch; tests copy it."""
    work = tmp_path_factory.mktemp("contracts")
    shutil.copy(REPO / "tests" / "regression_app" / "config.json", work / "config.default.json")
    shutil.copy(REPO / "tests" / "regression_app" / "config.schema.json", work / "config.schema.json")
    common = ["--experiment-name", "r", "--experiments-path", str(work / "experiments")]
    assert APP.run([*common, "init", "--config-path", str(work / "config.default.json"),
                    "--config-schema-file", str(work / "config.schema.json"), *SMALL]) == 0
    assert APP.run([*common, "train", "--max-epochs", "1", "--device", "cpu"]) == 0
    return work


def _app(runner: Callable[[], Runner] = RegressionRunner, data: Callable = RegressionData,
         judged_by: Metric = APP.judged_by) -> App:
    return App("regression_app", data, runner, judged_by=judged_by)


class TestReturnsADict(RegressionRunner):
    __test__ = False

    def test(self, epoch: int | None, device: torch.device) -> TestResult:
        result = super().test(epoch, device)
        return {"summary": result.summary, **result.metrics}


class TestIgnoresItsEpoch(RegressionRunner):
    __test__ = False

    def test(self, epoch: int | None, device: torch.device) -> TestResult:
        return super().test(None, device)


class ValidateReturnsAFloat(RegressionRunner):
    def validate(self, device: torch.device) -> float:
        return super().validate(device)["loss"]


class TrainStepReturnsOneLossPerItem(RegressionRunner):
    def train_step(self, it_data: dict, device: torch.device) -> torch.Tensor:
        return (self.model(it_data["x"]) - it_data["y"]).square()


class NoModel(RegressionRunner):
    def init_model(self, device: torch.device) -> None:
        self.net = torch.nn.Linear(4, 1)


class NoTest(Runner):
    init_model, init_optimizer, train_step = RegressionRunner.init_model, None, None


class NoValidationLoader(RegressionData):
    def load_loaders(self, data_path: Path, num_workers: int) -> None:
        super().load_loaders(data_path, num_workers)
        del self.loaders["validation"]


class TestFromAMixin:
    __test__ = False

    def test(self, epoch: int | None, device: torch.device) -> dict:
        return {"summary": "tested"}


class MixedIn(TestFromAMixin, RegressionRunner):
    pass


class TestMetricIsATensor(RegressionRunner):
    __test__ = False

    def test(self, epoch: int | None, device: torch.device) -> TestResult:
        result = super().test(epoch, device)
        return TestResult(result.summary, {"loss": torch.tensor(result.metrics["loss"])})


class TestDetailsClash(RegressionRunner):
    __test__ = False

    def test(self, epoch: int | None, device: torch.device) -> TestResult:
        result = super().test(epoch, device)
        return TestResult(result.summary, result.metrics, {"epoch": 99})


class SavesAnObject(RegressionRunner):
    def save_states_others(self) -> dict:
        return {"when": object()}


class KeepsNone(RegressionRunner):
    def checkpoints_to_keep(self) -> int:
        return 0


class ReleasesNothing(RegressionRunner):
    def release_others(self, checkpoint: dict) -> None:
        return None


class WatchesAMissingMetric(RegressionRunner):
    early_stopping_metric = Metric("validation_r2", higher_is_better=True)

    def early_stopping_patience(self) -> int:
        return 2


class DescribesWithADict(RegressionData):
    def describe(self) -> DataDescription:
        return {"splits": {"train": 1}}


ACCURACY = Metric("validation_accuracy", higher_is_better=True)
CASES = [
    # (id, app, pipeline arguments, the whole error line)
    ("test-returns-dict", _app(TestReturnsADict), ["test", "--epoch", "1"],
     "TestReturnsADict.test returned a dict, return a TestResult(summary, metrics) (see docs/framework.md)"),
    ("test-ignores-epoch", _app(TestIgnoresItsEpoch), ["test", "--epoch", "1"],
     "TestIgnoresItsEpoch.test was asked for epoch 1 but tested epoch 0, call self.load_states(epoch) first when "
     "epoch is not None (see docs/framework.md)"),
    ("validate-returns-float", _app(ValidateReturnsAFloat), ["train", "--max-epochs", "2"],
     "ValidateReturnsAFloat.validate returned a float, return a dict of finite numbers by name, such as "
     "{'loss': 0.1} (see docs/framework.md)"),
    ("train-step-not-scalar", _app(TrainStepReturnsOneLossPerItem), ["train", "--max-epochs", "2"],
     "TrainStepReturnsOneLossPerItem.train_step returned a tensor of shape [32], return the batch's loss as a "
     "scalar tensor that requires grad (see docs/framework.md)"),
    ("test-from-a-mixin", _app(MixedIn), ["test", "--epoch", "1"],
     "MixedIn.test returned a dict, return a TestResult(summary, metrics) (see docs/framework.md)"),
    ("test-metric-tensor", _app(TestMetricIsATensor), ["test", "--epoch", "1"],
     "TestMetricIsATensor.test returned metric 'loss' = tensor(", ),
    ("test-details-clash", _app(TestDetailsClash), ["test", "--epoch", "1"],
     "TestDetailsClash.test returned details ['epoch'] that clash with the epoch or a metric, give details their "
     "own names and plain values (see docs/framework.md)"),
    ("others-not-plain", _app(SavesAnObject), ["train", "--max-epochs", "2"],
     "SavesAnObject.save_states_others returned a dict holding more than tensors, numbers, strings, lists and "
     "dicts, return a dict of those (state_dict() is) (see docs/framework.md)"),
    ("keep-zero", _app(KeepsNone), ["train", "--max-epochs", "2"],
     "KeepsNone.checkpoints_to_keep returned 0, return a whole number of at least 1, or None (see "
     "docs/framework.md)"),
    ("release-others-none", _app(ReleasesNothing), ["create_release"],
     "ReleasesNothing.release_others returned None holding more than tensors, numbers, strings, lists and dicts, "
     "return a dict of those (see docs/framework.md)"),
    ("early-stopping-metric-missing", _app(WatchesAMissingMetric), ["train", "--max-epochs", "2"],
     "early stopping watches validation_r2, which epoch 2 does not have, set "
     "WatchesAMissingMetric.early_stopping_metric to one of its metrics"),
    ("no-model", _app(NoModel), ["test"],
     "NoModel.init_model left self.model as NoneType, set it to a torch.nn.Module on the device it is given (see "
     "docs/framework.md)"),
    ("no-model-in-train", _app(NoModel), ["train", "--max-epochs", "2"],
     "NoModel.init_model left self.model as NoneType, set it to a torch.nn.Module on the device it is given (see "
     "docs/framework.md)"),
    ("judged-metric-missing", _app(judged_by=ACCURACY), ["train", "--max-epochs", "2"],
     "the app is judged by validation_accuracy but epoch 2 has only validation_loss, validation_mae, return "
     "'accuracy' from validate or declare another metric in App(judged_by=...)"),
    ("no-validation-loader", _app(data=NoValidationLoader), ["train", "--max-epochs", "2"],
     "NoValidationLoader.load_loaders left no loader for validation, which train needs: fill self.loaders[...] "
     "(see docs/framework.md)"),
    ("hook-not-implemented", _app(NoTest), ["test"],
     "NoTest.test is not implemented, implement that hook to use this pipeline"),
]


@pytest.mark.parametrize(("case_id", "app", "argv", "message"), CASES, ids=[case[0] for case in CASES])
def test_a_broken_hook_is_named(case_id: str, app: App, argv: list[str], message: str, trained: Path,
                                tmp_path: Path, capsys) -> None:
    shutil.copytree(trained / "experiments", tmp_path / "experiments")
    before, log = snapshot(tmp_path / "experiments"), tmp_path / "experiments" / "r" / "verbose.log"
    logged = log.read_text()
    code = app.run(["--experiment-name", "r", "--experiments-path", str(tmp_path / "experiments"), *argv,
                    *(["--device", "cpu"] if argv[0] in ("train", "test") else [])])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"error: {message}")
    assert log.read_text().startswith(logged) and message in log.read_text()[len(logged):], "the bug is not logged"
    if argv[0] in ("test", "create_release"):  # nothing else changes
        after = snapshot(tmp_path / "experiments")
        assert {k: v for k, v in after.items() if k != "r/verbose.log"} == \
            {k: v for k, v in before.items() if k != "r/verbose.log"}, "a refused test changed the experiment"


def test_a_validate_metric_that_is_a_tensor_says_so(trained: Path, tmp_path: Path, capsys) -> None:
    class Tensors(RegressionRunner):
        def validate(self, device: torch.device) -> dict:
            return {"loss": torch.tensor(0.5)}

    shutil.copytree(trained / "experiments", tmp_path / "experiments")
    assert _app(Tensors).run(["--experiment-name", "r", "--experiments-path", str(tmp_path / "experiments"),
                              "train", "--max-epochs", "2", "--device", "cpu"]) == 1
    assert capsys.readouterr().err == ("error: Tensors.validate returned metric 'loss' = tensor(0.5000) (a tensor: use "
                                       ".item()), give each metric a name and a finite number (see "
                                       "docs/framework.md)\n")


def test_describe_must_return_a_data_description(trained: Path, tmp_path: Path, capsys) -> None:
    code = _app(data=DescribesWithADict).run(
        ["--experiment-name", "d", "--experiments-path", str(tmp_path), "init", *SMALL,
         "--config-path", str(trained / "config.default.json"),
         "--config-schema-file", str(trained / "config.schema.json")])
    assert code == 1 and capsys.readouterr().err == (
        "error: DescribesWithADict.describe returned {'splits': {'train': 1}}, return a DataDescription(splits={name: "
        "size}, details={name: JSON value}) (see docs/framework.md)\n")
    assert not list(tmp_path.iterdir()), "init left a folder behind"


@pytest.mark.parametrize(("batch", "count"), [
    (torch.zeros(5, 3), 5),
    ((torch.zeros(4, 28, 28), torch.zeros(4)), 4),
    ([torch.zeros(3, 2), torch.zeros(3)], 3),
    ({"ids": torch.zeros(6, 40), "label": torch.zeros(6)}, 6),
    ({"inputs": {"ids": torch.zeros(2, 9)}, "label": torch.zeros(2)}, 2),
])
def test_items_are_counted_in_any_batch_shape(batch: object, count: int) -> None:
    assert count_items(batch) == count
