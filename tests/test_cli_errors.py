"""Bad input: a non-zero exit, one ``error:`` line on stderr naming the problem, no traceback, nothing changed."""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import socket
from pathlib import Path

import pytest
import torch
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


def _raw(work: Path) -> Path:
    return work / "data" / "MNIST" / "raw"


def _patch_bytes(path: Path, offset: int, value: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[offset:offset + len(value)] = value
    path.write_bytes(bytes(data))


def _bad_magic(work: Path) -> None:
    _patch_bytes(_raw(work) / "train-images-idx3-ubyte", 2, b"\x0d")


def _truncated_images(work: Path) -> None:
    path = _raw(work) / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])


def _bad_label(work: Path) -> None:
    _patch_bytes(_raw(work) / "train-labels-idx1-ubyte", 8 + 17, b"\x0c")


def _fewer_labels(work: Path) -> None:
    path = _raw(work) / "t10k-labels-idx1-ubyte"
    data = path.read_bytes()
    path.write_bytes(data[:4] + (len(data) - 9).to_bytes(4, "big") + data[8:-1])


def _truncated_gz(work: Path) -> None:
    raw = work / "gzdata" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "wb") as file:
        file.write((_raw(work) / "train-images-idx3-ubyte").read_bytes())
    (raw / "train-images-idx3-ubyte.gz").write_bytes((raw / "train-images-idx3-ubyte.gz").read_bytes()[:500])


def _checkpoint(work: Path, epoch: int = 2) -> Path:
    return work / "experiments" / "base" / "checkpoints" / f"{epoch}.checkpoint.pkl"


def _truncate_checkpoint(work: Path) -> None:
    _checkpoint(work).write_bytes(_checkpoint(work).read_bytes()[:4096])


def _empty_checkpoint(work: Path) -> None:
    _checkpoint(work).write_bytes(b"")


class _Hostile:
    def __reduce__(self):
        return (os.system, ("touch hostile-code-ran",))


def _hostile_checkpoint(work: Path) -> None:
    torch.save({"model": _Hostile()}, _checkpoint(work))


def _damage_config(work: Path) -> None:
    (work / "experiments" / "base" / "config.json").write_text('{"seed": ')


def _damage_data_json(work: Path) -> None:
    (work / "experiments" / "base" / "data.json").write_text("[")


def _hold_lock(work: Path):
    file = open(work / "experiments" / "base" / ".lock", "r+b")  # noqa: SIM115 (closed by the cleanup)
    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return file.close


def _busy_port(work: Path):
    server = socket.create_server(("127.0.0.1", 0))
    (work / "port").write_text(str(server.getsockname()[1]))
    return server.close


def _no_cxx(work: Path):
    os.environ["CXX"] = str(work / "no-such-g++")
    return lambda: os.environ.pop("CXX")


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
    ("init-no-fashion-offline", ["--data-path", "empty", *INIT, "--set", "data.dataset=fashion_mnist"],
     "FashionMNIST is not in empty/FashionMNIST/raw"),
    ("init-set-unknown-key", [*INIT, "--set", "training.momentum=0.9"], "--set training.momentum=0.9 violates the "
     "schema at training.momentum: unknown key"),
    ("init-set-bad-value", [*INIT, "--set", "training.lr=-1"], "--set training.lr=-1 violates the schema at "
     "training.lr"),
    ("init-set-word-for-number", [*INIT, "--set", "training.batch_size=many"], "training.batch_size: 'many'"),
    ("init-set-unknown-model", [*INIT, "--set", "model.name=resnet"], "model.name: 'resnet' is not one of"),
    ("init-set-other-models-key", [*INIT, "--set", "model.fc1=4"], "model.fc1: unknown key"),
    ("init-set-mlp-bad-size", [*INIT, "--set", "model.name=mlp", "--set", "model.fc2=0"], "model.fc2"),
    ("init-set-unknown-dataset", [*INIT, "--set", "data.dataset=cifar10"], "data.dataset"),
    ("init-set-zero-patience", [*INIT, "--set", "training.early_stopping_patience=0"],
     "training.early_stopping_patience"),
    ("init-set-zero-kept", [*INIT, "--set", "training.keep_checkpoints=0"], "training.keep_checkpoints"),
    ("init-set-no-equals", [*INIT, "--set", "training.lr"], "is not KEY=VALUE"),
    ("init-set-through-a-number", [*INIT, "--set", "training.lr.decay=1"], "training.lr is 1.0, not an object"),
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
    ("train-compile-no-compiler", [*BASE, "train", "--max-epochs", "3", "--compile", "--device", "cpu"],
     "--compile on cpu needs a C++ compiler", _no_cxx),
    ("test-bf16-on-cpu", [*BASE, "test", "--precision", "bf16", "--device", "cpu"],
     "error: --precision bf16 needs a CUDA device, use --device cuda or the default fp32"),
    ("train-negative-workers", [*BASE, "train", "--num-workers", "-2"], "--num-workers"),
    ("test-unknown-epoch", [*BASE, "test", "--epoch", "5"], "epoch 5"),
    ("test-missing-experiment", ["--experiment-name", "ghost", "test"], "does not exist"),
    ("test-sample-out-of-range", [*BASE, "test_sample", "--sample", "200"], "out of range"),
    ("test-sample-missing", [*BASE, "test_sample"], "--sample"),
    ("release-unknown-epoch", [*BASE, "create_release", "--epoch", "3"], "epoch 3"),
    ("info-missing-experiment", ["--experiment-name", "ghost", "info"], "does not exist"),
    ("tensorboard-bad-port", [*BASE, "tensorboard", "--port", "70000"], "70000"),
    ("unknown-pipeline", [*BASE, "fly"], "fly"),
    ("data-bad-magic", [*BASE, "train"], "wrong magic number", _bad_magic),
    ("data-truncated-images", [*BASE, "test"], "bytes but its header announces", _truncated_images),
    ("data-label-out-of-range", [*BASE, "train"], "labels up to 12", _bad_label),
    ("data-fewer-labels", [*BASE, "test"], "200 t10k images but 199 labels", _fewer_labels),
    ("data-truncated-gz", ["--data-path", "gzdata", *INIT], "MD5", _truncated_gz),
    ("checkpoint-truncated", [*BASE, "test", "--epoch", "2"], "is damaged", _truncate_checkpoint),
    ("checkpoint-empty", [*BASE, "create_release", "--epoch", "2"], "is damaged", _empty_checkpoint),
    ("checkpoint-hostile", [*BASE, "test_sample", "--sample", "0"], "was refused", _hostile_checkpoint),
    ("config-json-damaged", [*BASE, "info"], "config.json is missing or damaged", _damage_config),
    ("data-json-damaged", [*BASE, "test"], "data.json is missing or damaged", _damage_data_json),
    ("experiment-locked", [*BASE, "train"], "is in use by", _hold_lock),
    ("tensorboard-port-busy", [*BASE, "tensorboard", "--port", "{port}"], "cannot listen", _busy_port),
    ("tensorboard-bad-host", [*BASE, "tensorboard", "--host", "no-such-host.invalid"], "cannot listen"),
    ("tensorboard-compare-nothing", ["--experiments-path", "nowhere", "tensorboard", "--compare"],
     "does not exist"),
]


def test_the_table_is_broad() -> None:
    assert len(CASES) >= 25 and len({case[0] for case in CASES}) == len(CASES)
    for pipeline in ("init", "train", "test", "test_sample", "info", "create_release", "tensorboard"):
        assert any(pipeline in case[1] for case in CASES), pipeline


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input(case: tuple, trained_workdir: Path, monkeypatch, capsys) -> None:
    _, argv, fragment, *setup = case
    monkeypatch.chdir(trained_workdir)
    for dataset in (torchvision.datasets.MNIST, torchvision.datasets.FashionMNIST, torchvision.datasets.KMNIST):
        monkeypatch.setattr(dataset, "mirrors", ["http://127.0.0.1:9/"])  # offline, even with a network
    _write_bad_files(trained_workdir)
    cleanup = setup[0](trained_workdir) if setup else None
    if (trained_workdir / "port").exists():
        argv = [arg.replace("{port}", (trained_workdir / "port").read_text()) for arg in argv]
    before = snapshot(trained_workdir / "experiments")
    try:
        with pytest.raises(SystemExit) as exited:  # argparse exits by itself; the pipelines return the code
            raise SystemExit(main(argv))
    finally:
        if cleanup:
            cleanup()
    assert not (trained_workdir / "hostile-code-ran").exists(), "a checkpoint ran code while loading"
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
