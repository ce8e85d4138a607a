"""Unit tests of the framework core: configuration, storage, checkpoints, experiment folders, logging."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from mnist_classifier.framework import checkpoints
from mnist_classifier.framework.configuration import Configuration, apply_defaults, read_json_file, validate
from mnist_classifier.framework.errors import UserError
from mnist_classifier.framework.experiment import Experiment, _ranges, check_name
from mnist_classifier.framework.logs import attach_log_file, setup_logging
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
])
def test_schema_errors_name_the_key(change: dict, key: str) -> None:
    with pytest.raises(UserError, match=f"at {key}:"):
        validate({**DEFAULT, **change}, SCHEMA)


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
    experiment.create({"a": 1}, 5, {"train_indexes": [0, 2], "validation_indexes": [1]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]
    assert experiment.load().seed == 5
    assert experiment.info()["splits"] == {"train": 2, "validation": 1}
    with pytest.raises(UserError, match="already exists"):
        Experiment(tmp_path, "e").create({}, 0, {})


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
    logger = setup_logging(verbose=False)
    logger.info("before attaching")
    log = tmp_path / "verbose.log"
    assert not log.exists()
    attach_log_file(logger, log)
    logger.info("after attaching")
    for handler in logger.handlers:
        handler.flush()
    text = log.read_text()
    assert text.index("before attaching") < text.index("after attaching")
