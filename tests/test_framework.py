"""Unit tests of the framework core: configuration, storage, checkpoints, experiment folders, logging."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from mnist_classifier.framework import checkpoints
from mnist_classifier.framework.configuration import (
    Configuration,
    apply_defaults,
    apply_overrides,
    parse_override,
    read_json_file,
    validate,
)
from mnist_classifier.framework.errors import UserError
from mnist_classifier.framework.experiment import Experiment, _ranges, check_name
from mnist_classifier.framework.logs import attach_log_file, setup_logging
from mnist_classifier.framework.metrics import VALIDATION_LOSS, Metric, best_epoch, epochs_without_improvement
from mnist_classifier.framework.storage import atomic_write, read_json, remove_temporaries, write_json

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "config.schema.json").read_text())
DEFAULT = json.loads((REPO / "config.default.json").read_text())


# Configuration ----------------------------------------------------------------------------------------------------
def test_default_config_is_valid_and_defaults_are_filled() -> None:
    without_test_batch = {**DEFAULT, "training": {k: v for k, v in DEFAULT["training"].items()
                                                  if k != "test_batch_size"}}
    values = validate(without_test_batch, SCHEMA)
    assert values["training"]["test_batch_size"] == 1000
    assert "test_batch_size" not in without_test_batch["training"], "the input must not be modified"


def test_apply_defaults_recurses_and_keeps_given_values() -> None:
    schema = {"properties": {"a": {"properties": {"b": {"default": 1}, "c": {"default": 2}}}}}
    assert apply_defaults({"a": {"c": 5}}, schema) == {"a": {"b": 1, "c": 5}}


@pytest.mark.parametrize(("change", "key"), [
    ({"data": {"val_split": 1.0}}, "data.val_split"),
    ({"data": {"val_split": 0}}, "data.val_split"),
    ({"training": {**DEFAULT["training"], "batch_size": 0}}, "training.batch_size"),
    ({"training": {**DEFAULT["training"], "lr_gamma": 2}}, "training.lr_gamma"),
    ({"training": {"batch_size": 64, "lr": 1.0}}, "training"),
    ({"training": {**DEFAULT["training"], "max_epochs": 0}}, "training.max_epochs"),
    ({"training": {"batch_size": 64, "lr": 0.1, "schedule": "onecycle"}}, "training"),
])
def test_schema_errors_name_the_key(change: dict, key: str) -> None:
    with pytest.raises(UserError, match=f"at {key}:"):
        validate({**DEFAULT, **change}, SCHEMA)


@pytest.mark.parametrize(("text", "keys", "value"), [
    ("training.lr=0.5", ["training", "lr"], 0.5),
    ("model.name=mlp", ["model", "name"], "mlp"),  # a bare word is a string
    ('model.name="mlp"', ["model", "name"], "mlp"),
    ("a.b=true", ["a", "b"], True),
    ("a=null", ["a"], None),
    ('data={"val_split": 0.1}', ["data"], {"val_split": 0.1}),
    ("a=x=y", ["a"], "x=y"),  # only the first '=' separates
    ("a=", ["a"], ""),
])
def test_parse_override(text: str, keys: list[str], value: object) -> None:
    assert parse_override(text) == (keys, value)


@pytest.mark.parametrize("text", ["training.lr", "=1", "a..b=1", ".a=1", "a.=1"])
def test_malformed_overrides_are_refused(text: str) -> None:
    with pytest.raises(UserError, match="is not KEY=VALUE"):
        parse_override(text)


def test_overrides_apply_in_order_without_changing_the_input() -> None:
    values, origins = apply_overrides(DEFAULT, ["training.lr=0.1", "model.name=mlp", "training.lr=0.2", "new.key=1"])
    assert values["training"]["lr"] == 0.2 and values["model"] == {"name": "mlp"} and values["new"] == {"key": 1}
    assert origins == {"training.lr": "--set training.lr=0.2", "model.name": "--set model.name=mlp",
                       "new.key": "--set new.key=1"}
    assert DEFAULT["training"]["lr"] == 1.0 and DEFAULT["model"] == {"name": "cnn"}
    with pytest.raises(UserError, match="training.lr is 0.2, not an object"):
        apply_overrides(values, ["training.lr.x=1"])


def test_each_model_variant_gets_its_own_defaults_and_keys() -> None:
    mlp = validate(apply_overrides(DEFAULT, ["model.name=mlp", "model.fc2=8"])[0], SCHEMA)
    assert mlp["model"] == {"name": "mlp", "fc1": 1024, "fc2": 8, "dropout": 0.5}
    assert validate({k: v for k, v in DEFAULT.items() if k != "model"}, SCHEMA)["model"] == {"name": "cnn"}
    config, origins = apply_overrides(DEFAULT, ["model.fc1=4"])
    with pytest.raises(UserError, match=r"^--set model.fc1=4 violates the schema at model.fc1: unknown key "
                                        r"\(known here: name\), remove it or fix its spelling$"):
        validate(config, SCHEMA, "configuration file c.json", origins)
    with pytest.raises(UserError, match="^configuration file c.json violates the schema at extra: unknown key"):
        validate({**DEFAULT, "extra": 1}, SCHEMA, "configuration file c.json")


def test_read_json_file_reports_position(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{\n  "a": 1,\n}')
    with pytest.raises(UserError, match="line 3 column 1"):
        read_json_file(path, "configuration file")


def test_configuration_get() -> None:
    configuration = Configuration({"training": {"lr": 0.5}}, seed=3)
    assert configuration.get("training", "lr") == 0.5
    assert configuration.get("training", "missing", default=7) == 7
    assert configuration.get("training", "lr", "deeper") is None


# Storage ----------------------------------------------------------------------------------------------------------
def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "file.json"
    write_json(path, {"version": 1})

    def fail(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", fail)
    with pytest.raises(OSError):
        atomic_write(path, b'{"version": 2}')
    assert read_json(path) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"], "no temporary file may be left behind"


def test_remove_temporaries(tmp_path: Path) -> None:
    for name in (".1.checkpoint.pkl.abc.tmp", "1.checkpoint.pkl", ".lock"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in remove_temporaries(tmp_path)] == [".1.checkpoint.pkl.abc.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "1.checkpoint.pkl"]


def test_set_aside_never_overwrites(tmp_path: Path) -> None:
    for content in (b"first", b"second"):
        path = tmp_path / "3.checkpoint.pkl"
        path.write_bytes(content)
        checkpoints.set_aside(path)
    assert (tmp_path / "3.checkpoint.pkl.damaged").read_bytes() == b"first"
    assert (tmp_path / "3.checkpoint.pkl.damaged.2").read_bytes() == b"second"
    assert checkpoints.list_checkpoints(tmp_path) == []


def test_written_files_are_not_owner_only(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", {})
    assert (tmp_path / "a.json").stat().st_mode & 0o044, "others in the group should be able to read results"


# Checkpoints ------------------------------------------------------------------------------------------------------
def test_checkpoint_listing_is_numeric_and_ignores_other_files(tmp_path: Path) -> None:
    for name in ("10.checkpoint.pkl", "9.checkpoint.pkl", "2.checkpoint.release.pkl", ".3.checkpoint.pkl.x.tmp",
                 "notes.txt", "x.checkpoint.pkl"):
        (tmp_path / name).write_bytes(b"")
    assert checkpoints.list_checkpoints(tmp_path) == [9, 10]
    assert checkpoints.list_releases(tmp_path) == [2]
    assert checkpoints.list_checkpoints(tmp_path / "missing") == []


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    state = {"model": {"w": torch.arange(4.0)}, "counters": {"epoch": 2}, "history": [{"loss": 0.5}],
             "rng": torch.get_rng_state()}
    path = checkpoints.checkpoint_path(tmp_path, 2)
    checkpoints.save(path, state)
    loaded = checkpoints.load(path)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["history"] == state["history"]


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_damaged_checkpoints_are_named(tmp_path: Path, content: bytes | None) -> None:
    path = checkpoints.checkpoint_path(tmp_path, 1)
    if content is None:  # a real checkpoint cut in half
        checkpoints.save(path, {"w": torch.zeros(1000)})
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(UserError, match=f"checkpoint {path} is damaged"):
        checkpoints.load(path)


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/should-not-exist-mnist-classifier"),))


def test_unsafe_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = Path("/tmp/should-not-exist-mnist-classifier")
    marker.unlink(missing_ok=True)
    path = tmp_path / "1.checkpoint.release.pkl"
    torch.save({"model": {}, "payload": _Payload()}, path)
    with pytest.raises(UserError, match="refused"):
        checkpoints.load(path)
    assert not marker.exists(), "loading ran code from the file"
    with pytest.raises(pickle.UnpicklingError):  # sanity: the file really is hostile
        torch.load(path, weights_only=True)


def test_save_into_unwritable_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot write"):
        checkpoints.save(tmp_path / "missing-folder" / "1.checkpoint.pkl", {"w": torch.zeros(1)})


# Experiment folder ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a", "exp-1_b.c", "A" * 100])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "a/b", "/abs", "a b", "A" * 101, "a\\b", "é"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(UserError):
        check_name(name)


def test_create_is_all_or_nothing_and_refuses_to_overwrite(tmp_path: Path) -> None:
    experiment = Experiment(tmp_path, "e")
    state = {"train_indexes": [0, 2], "validation_indexes": [1]}
    experiment.create({"a": 1}, 5, state, data_description={"splits": {"train": 2, "validation": 1},
                                                            "details": {"vocabulary": 3}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]
    assert experiment.load().seed == 5 and experiment.load_data_state() == state
    assert experiment.info()["splits"] == {"train": 2, "validation": 1}
    assert experiment.info()["data"] == {"vocabulary": 3}
    with pytest.raises(UserError, match="already exists"):
        Experiment(tmp_path, "e").create({}, 0, {})


def test_data_json_of_version_0_1_still_reads(tmp_path: Path) -> None:
    """Version 0.1 wrote the data state alone; its ``<split>_indexes`` lists were the splits info showed."""
    experiment = Experiment(tmp_path, "old")
    experiment.create({}, 0, {})
    write_json(experiment.data_file, {"dataset": "mnist", "train_indexes": [0, 2], "validation_indexes": [1]})
    assert experiment.load_data_state() == {"dataset": "mnist", "train_indexes": [0, 2], "validation_indexes": [1]}
    assert experiment.info()["splits"] == {"train": 2, "validation": 1}
    assert experiment.info()["data"] == {"dataset": "mnist"}


def test_resolve_epoch(tmp_path: Path) -> None:
    experiment = Experiment(tmp_path, "e")
    experiment.create({}, 0, {})
    with pytest.raises(UserError, match="no checkpoints yet"):
        experiment.resolve_epoch(None)
    for epoch in (1, 2, 3, 7):
        experiment.checkpoint_path(epoch).write_bytes(b"")
    assert experiment.resolve_epoch(None) == 7 and experiment.resolve_epoch(2) == 2
    with pytest.raises(UserError, match="use one of 1-3, 7"):
        experiment.resolve_epoch(5)


def test_ranges() -> None:
    assert _ranges([1]) == "1" and _ranges([1, 2, 3, 5, 7, 8]) == "1-3, 5, 7-8"


# Logging ----------------------------------------------------------------------------------------------------------
def test_log_is_held_until_attached(tmp_path: Path) -> None:
    logger = setup_logging("test", verbose=False)
    logger.info("before attaching")
    log = tmp_path / "verbose.log"
    assert not log.exists()
    attach_log_file(logger, log)
    logger.info("after attaching")
    for handler in logger.handlers:
        handler.flush()
    text = log.read_text()
    assert text.index("before attaching") < text.index("after attaching")


# History: best epoch, patience ------------------------------------------------------------------------------------
def _history(*rows: tuple[float | None, float | None]) -> list[dict]:
    return [{"epoch": epoch, "validation_accuracy": accuracy, "validation_loss": loss}
            for epoch, (accuracy, loss) in enumerate(rows, start=1)]


ACCURACY = Metric("validation_accuracy", higher_is_better=True)


def test_best_epoch_is_highest_accuracy_then_lowest_loss_then_earliest() -> None:
    assert best_epoch(_history((0.9, 0.3), (0.95, 0.2), (0.93, 0.1)), ACCURACY) == 2
    assert best_epoch(_history((0.95, 0.3), (0.95, 0.2), (0.95, 0.2)), ACCURACY) == 2
    assert best_epoch(_history((None, 0.3), (None, 0.1), (None, 0.2)), ACCURACY) == 2  # no accuracy: lowest loss
    assert best_epoch(_history((float("nan"), 0.3), (0.5, 0.4)), ACCURACY) == 2
    assert best_epoch([], ACCURACY) is None and best_epoch([{"epoch": 1, "train_loss": 0.1}], ACCURACY) is None


def test_best_epoch_of_a_loss_judged_app_is_the_lowest_loss() -> None:
    """A regression app judged by its validation loss: lower is better, whatever the accuracy says."""
    history = _history((0.9, 0.3), (0.95, 0.2), (0.5, 0.1), (0.99, 0.15))
    assert best_epoch(history, VALIDATION_LOSS) == 3 and best_epoch(history, ACCURACY) == 4
    mae = Metric("validation_mae", higher_is_better=False)
    assert best_epoch([{"epoch": 1, "validation_mae": 2.0}, {"epoch": 2, "validation_mae": 1.0},
                       {"epoch": 3, "validation_mae": 1.5}], mae) == 2


def test_metrics_are_named_by_split() -> None:
    assert (ACCURACY.split, ACCURACY.name, ACCURACY.label) == ("validation", "accuracy", "validation accuracy")
    for bad in ("accuracy", "valid_accuracy", "validation_"):
        with pytest.raises(ValueError, match="<split>_<name>"):
            Metric(bad, True)


def test_epochs_without_improvement() -> None:
    assert epochs_without_improvement([]) == 0
    assert epochs_without_improvement(_history((0, 0.5), (0, 0.4), (0, 0.3))) == 0
    assert epochs_without_improvement(_history((0, 0.5), (0, 0.4), (0, 0.4), (0, 0.45))) == 2  # equal is no better
    assert epochs_without_improvement(_history((0, 0.5), (0, 0.6), (0, 0.4), (0, 0.7))) == 1
    assert epochs_without_improvement(_history((0.5, 0), (0.6, 0), (0.6, 0), (0.55, 0)), ACCURACY) == 2


def _checkpoints(tmp_path: Path, epochs: list[int]):
    from mnist_classifier.framework.training_state import CheckpointManager

    experiment = Experiment(tmp_path, "r")
    experiment.checkpoints_path.mkdir(parents=True)
    for epoch in epochs:
        experiment.checkpoint_path(epoch).write_bytes(b"x")
    experiment.release_path(1).write_bytes(b"release")
    return CheckpointManager(experiment, setup_logging("test", False)), experiment


def test_retention_keeps_the_newest_and_the_best(tmp_path: Path) -> None:
    history = _history((0.5, 0.9), (0.99, 0.1), (0.9, 0.2), (0.9, 0.2), (0.95, 0.15), (0.96, 0.14))
    manager, experiment = _checkpoints(tmp_path, [1, 2, 3, 4, 5, 6])
    manager.remove_old(6, keep=2, best=best_epoch(history, ACCURACY))
    assert experiment.checkpoint_epochs() == [2, 5, 6] and experiment.release_epochs() == [1]


def test_retention_leaves_later_epochs_of_an_earlier_run_and_is_off_by_default(tmp_path: Path) -> None:
    """After ``train --epoch 3`` over an 8-epoch run, epochs 5-8 are not this run's to delete."""
    manager, experiment = _checkpoints(tmp_path / "a", [1, 2, 3, 4, 5, 6, 7, 8])
    manager.remove_old(4, keep=1, best=4)
    assert experiment.checkpoint_epochs() == [4, 5, 6, 7, 8]
    manager, experiment = _checkpoints(tmp_path / "b", [1, 2, 3, 4])
    manager.remove_old(4, keep=None, best=4)
    assert experiment.checkpoint_epochs() == [1, 2, 3, 4]
