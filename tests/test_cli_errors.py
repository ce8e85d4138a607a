"""Bad input: a non-zero exit, one ``error:`` line on stderr naming the problem, no traceback, nothing changed."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torchvision

from conftest import snapshot
from mnist_classifier.__main__ import main


def _write_bad_files(work: Path) -> None:
    """Broken configuration and schema files, next to the good ones, for the cases below to point at."""
    config = json.loads((work / "config.default.json").read_text())
    files = {
        "bad-lr.json": json.dumps({**config, "training": {**config["training"], "lr": -1}}),
        "unknown.json": json.dumps({**config, "extra": 1}),
        "wrong-type.json": json.dumps({**config, "training": {**config["training"], "batch_size": "64"}}),
        "broken.json": '{"data": {"val_split": 0.2},',
        "list.json": "[1, 2]",
        "bad-schema.json": '{"type": "no-such-type"}',
    }
    for name, text in files.items():
        (work / name).write_text(text)


INIT = ["--experiment-name", "n", "init"]
BASE = ["--experiment-name", "base"]
CASES = [  # (id, argv run in the trained workdir, a fragment the one-line message must contain)
    ("init-existing", [*BASE, "init"], "already exists"),
    ("init-missing-config", [*INIT, "--config-path", "nope.json"], "nope.json"),
    ("init-config-is-dir", [*INIT, "--config-path", "experiments"], "is a directory"),
    ("init-broken-json", [*INIT, "--config-path", "broken.json"], "not valid JSON"),
    ("init-not-object", [*INIT, "--config-path", "list.json"], "(top level)"),
    ("init-schema-violation", [*INIT, "--config-path", "bad-lr.json"], "training.lr"),
    ("init-unknown-key", [*INIT, "--config-path", "unknown.json"], "extra"),
    ("init-wrong-type", [*INIT, "--config-path", "wrong-type.json"], "training.batch_size"),
    ("init-missing-schema", [*INIT, "--config-schema-file", "no.json"], "no.json"),
    ("init-invalid-schema", [*INIT, "--config-schema-path", "bad-schema.json"], "schema"),
    ("init-negative-seed", [*INIT, "--seed", "-1"], "--seed"),
    ("init-no-data-offline", ["--data-path", "empty", *INIT], "could not be downloaded"),
    ("no-experiment-name", ["train"], "--experiment-name"),
    ("bad-name-dots", ["--experiment-name", "..", "init"], "invalid experiment name"),
    ("bad-name-slash", ["--experiment-name", "a/b", "init"], "invalid experiment name"),
    ("bad-name-absolute", ["--experiment-name", "/tmp/x", "info"], "invalid experiment name"),
    ("train-missing-experiment", ["--experiment-name", "ghost", "train"], "does not exist"),
    ("train-unknown-epoch", [*BASE, "train", "--epoch", "9"], "epoch 9"),
    ("train-zero-epochs", [*BASE, "train", "--max-epochs", "0"], "--max-epochs"),
    ("train-word-epochs", [*BASE, "train", "--max-epochs", "ten"], "ten"),
    ("train-cuda-unavailable", [*BASE, "train", "--device", "cuda:7"], "cuda:7"),
    ("train-unknown-device", [*BASE, "train", "--device", "tpu"], "unknown device"),
    ("train-negative-workers", [*BASE, "train", "--num-workers", "-2"], "--num-workers"),
    ("test-unknown-epoch", [*BASE, "test", "--epoch", "5"], "epoch 5"),
    ("test-missing-experiment", ["--experiment-name", "ghost", "test"], "does not exist"),
    ("test-sample-out-of-range", [*BASE, "test_sample", "--sample", "200"], "out of range"),
    ("test-sample-missing", [*BASE, "test_sample"], "--sample"),
    ("release-unknown-epoch", [*BASE, "create_release", "--epoch", "3"], "epoch 3"),
    ("info-missing-experiment", ["--experiment-name", "ghost", "info"], "does not exist"),
    ("tensorboard-bad-port", [*BASE, "tensorboard", "--port", "70000"], "70000"),
    ("unknown-pipeline", [*BASE, "fly"], "fly"),
]


@pytest.mark.parametrize(("argv", "fragment"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input(argv: list[str], fragment: str, trained_workdir: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(trained_workdir)
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])  # offline, even with network
    _write_bad_files(trained_workdir)
    before = snapshot(trained_workdir / "experiments")
    with pytest.raises(SystemExit) as exited:  # argparse exits by itself; the pipelines return the code
        raise SystemExit(main(argv))
    out, err = capsys.readouterr()
    assert exited.value.code not in (0, None)
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert fragment in err, err
    assert "Traceback" not in out + err
    assert snapshot(trained_workdir / "experiments") == before


def test_port_in_use(trained_workdir: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(trained_workdir)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert main(["--experiment-name", "base", "tensorboard", "--port", str(port)]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot listen on 127.0.0.1:{port}")


def test_debug_shows_the_traceback(trained_workdir: Path, monkeypatch) -> None:
    monkeypatch.chdir(trained_workdir)
    from mnist_classifier.framework import UserError

    with pytest.raises(UserError, match="does not exist"):
        main(["--experiment-name", "ghost", "--debug", "info"])


def test_failed_init_leaves_no_folder(trained_workdir: Path, monkeypatch) -> None:
    monkeypatch.chdir(trained_workdir)
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    assert main(["--experiment-name", "fresh", "--data-path", "missing", "init"]) == 2
    assert sorted(p.name for p in (trained_workdir / "experiments").iterdir()) == ["base"]
