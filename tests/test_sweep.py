"""``sweep`` and ``compare`` on the second app (``tests/regression_app``), through its CLI: a sweep is a folder
whose trials are experiments; it continues where it stopped, never loses a trial to a crash or a signal, and
gives the same parameters and weights for the same seed."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from conftest import APP_PYTHONPATH, REPO, Watched, app_cli, snapshot, wait_for_tensorboard

if TYPE_CHECKING:
    import optuna

    from mnist_classifier.framework.sweep import Settings, Sweep

APP = REPO / "tests" / "regression_app"
PYTHONPATH = APP_PYTHONPATH
SPACE = {"training.lr": {"low": 0.001, "high": 0.05, "log": True}, "model.hidden": {"choices": [8, 16, 32]}}


def workdir(root: Path, space: dict = SPACE, size: int = 4000) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = json.loads((APP / "config.json").read_text())
    config["data"]["size"] = size
    (root / "config.json").write_text(json.dumps(config))
    shutil.copy(APP / "config.schema.json", root / "config.schema.json")
    (root / "space.json").write_text(json.dumps(space))
    return root


def start(name: str, *options: str) -> list[str]:
    return ["--experiment-name", name, "sweep", "--config-path", "config.json", "--space", "space.json",
            "--device", "cpu", *options]


def compared(cwd: Path, *names: str) -> list[dict]:
    return json.loads(app_cli(cwd, "compare", *names, "--json").stdout)


def weights(cwd: Path, trial: str, epoch: int) -> dict[str, torch.Tensor]:
    path = cwd / "experiments" / trial / "checkpoints" / f"{epoch}.checkpoint.pkl"
    return torch.load(path, weights_only=True)["model"]


def test_a_sweep_runs_continues_and_compares(tmp_path: Path) -> None:
    work = workdir(tmp_path)
    out = app_cli(work, *start("s", "--trials", "3", "--max-epochs", "2", "--pruner", "none")).stdout
    assert "Created sweep 's'" in out and "Sweep 's': 3 trials ended (3 finished, 0 pruned, 0 failed)" in out
    rows = compared(work, "s")
    assert [row["state"] for row in rows] == ["finished"] * 3
    assert sorted(row["experiment"] for row in rows) == ["s.0", "s.1", "s.2"]
    values = [row["best_value"] for row in rows]
    assert values == sorted(values), "best first (lower validation loss)"
    for row in rows:
        assert set(row["params"]) == {"training.lr", "model.hidden"} and row["epochs"] == 2
        assert 0.001 <= row["params"]["training.lr"] <= 0.05 and row["params"]["model.hidden"] in (8, 16, 32)
        stored = json.loads((work / "experiments" / row["experiment"] / "config.json").read_text())["config"]
        assert stored["training"]["lr"] == row["params"]["training.lr"], "the trial's experiment has its values"
    again = app_cli(work, "--experiment-name", "s", "sweep", "--device", "cpu").stdout
    assert "Trial" not in again and "3 trials ended" in again, "a finished sweep runs nothing more"
    more = app_cli(work, "--experiment-name", "s", "sweep", "--trials", "4", "--device", "cpu").stdout
    assert "Trial 3 of sweep 's'" in more and "4 trials ended" in more
    best = rows[0]["experiment"]
    assert "Test of epoch 2" in app_cli(work, "--experiment-name", best, "test", "--device", "cpu").stdout
    table = app_cli(work, "compare", "s").stdout.splitlines()
    assert table[0].split()[:3] == ["experiment", "state", "training.lr"] and table[1].startswith(f"*  {best} ")
    csv = app_cli(work, "compare", "s", "--csv").stdout.splitlines()
    assert csv[0].startswith("experiment,state,training.lr,model.hidden,best validation_loss") and len(csv) == 5


@pytest.mark.slow
def test_the_same_seed_gives_the_same_parameters_and_weights(tmp_path: Path) -> None:
    runs = [workdir(tmp_path / name) for name in ("a", "b")]
    for work in runs:
        app_cli(work, *start("s", "--trials", "8", "--max-epochs", "2", "--seed", "5", "--pruner", "none"))
    first, second = (sorted(compared(work, "s"), key=lambda row: int(row["experiment"][2:])) for work in runs)
    assert len(first) == 8 and [row["params"] for row in first] == [row["params"] for row in second]
    assert [row["best_value"] for row in first] == [row["best_value"] for row in second], "the same metrics"
    for number in range(8):
        a, b = (weights(work, f"s.{number}", 2) for work in runs)
        assert all(torch.equal(a[key], b[key]) for key in a), f"trial {number} trained otherwise"


@pytest.mark.slow
def test_kill_9_or_sigint_mid_trial_then_the_same_command_loses_nothing(tmp_path: Path) -> None:
    """A worker killed mid-trial, then one interrupted by Ctrl-C: the same command each time takes the trial up
    again with its parameters in its experiment, and the sweep ends as an unbroken one does, bit for bit."""
    options = ("--trials", "8", "--max-epochs", "3", "--pruner", "none")
    unbroken, broken = workdir(tmp_path / "unbroken", size=12000), workdir(tmp_path / "broken", size=12000)
    app_cli(unbroken, *start("s", *options))
    command = [sys.executable, "-m", "regression_app", *start("s", *options)]
    env = {"PYTHONPATH": PYTHONPATH}
    watched = Watched(command, broken, env=env)
    watched.wait_for("Trial 1 of sweep 's'")
    _wait_for(broken / "experiments" / "s.1" / "checkpoints" / "1.checkpoint.pkl")
    watched.process.kill()
    watched.finish()
    killed = _trials_in(broken, "running")  # trial 1, unless it ended before the signal landed
    assert len(killed) == 1 and (broken / "experiments" / f"s.{killed[0]}" / "checkpoints").is_dir()
    killed_log = broken / "experiments" / f"s.{killed[0]}" / "verbose.log"
    watched = Watched(command[:6] + ["--device", "cpu"], broken, env=env)
    watched.wait_for(f"Trial {killed[0]} of sweep 's'")
    # killed while it wrote to the journal, it left Optuna's lock behind: Optuna breaks it after 30 s, and warns
    for line in iter(watched.process.stderr.readline, ""):
        if "left running by a worker that stopped" in line:
            break
        assert "lock file" in line, f"unexpected on stderr: {line}"
    watched.wait_for(f"Trial {killed[0] + 1} of sweep 's'")
    assert "Loaded" in killed_log.read_text(), "the killed trial resumed from its checkpoint"
    _wait_for(broken / "experiments" / f"s.{killed[0] + 1}" / "checkpoints" / "1.checkpoint.pkl")
    watched.process.send_signal(signal.SIGINT)
    code, err = watched.finish()
    assert code == 130 and "run the same sweep command to continue" in err
    interrupted = _trials_in(broken, "interrupted")
    assert len(interrupted) == 1
    before = snapshot(broken / "experiments" / "s.0")
    done = app_cli(broken, "--experiment-name", "s", "sweep", "--device", "cpu").stdout
    assert f"Trial {interrupted[0]} of sweep 's'" in done and "8 trials ended (8 finished" in done
    assert snapshot(broken / "experiments" / "s.0") == before, "a finished trial is left alone"
    names = sorted(path.name for path in (broken / "experiments").iterdir())
    assert names == sorted(["s", *(f"s.{n}" for n in range(8))]), "no trial twice"
    first, second = (sorted(compared(work, "s"), key=lambda row: row["experiment"]) for work in (unbroken, broken))
    assert [(row["params"], row["best_value"]) for row in first] == [(row["params"], row["best_value"])
                                                                       for row in second]
    for number in range(8):
        a, b = weights(unbroken, f"s.{number}", 3), weights(broken, f"s.{number}", 3)
        assert all(torch.equal(a[key], b[key]) for key in a), f"trial {number} differs from the unbroken sweep"


def _trials_in(cwd: Path, state: str) -> list[int]:
    """The numbers of the trials whose ``trial.json`` says ``state``."""
    found = [json.loads(path.read_text()) for path in (cwd / "experiments").glob("s.*/trial.json")]
    return sorted(trial["number"] for trial in found if trial["state"] == state)


def _wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


@pytest.mark.slow
def test_a_journal_lock_left_by_a_killed_worker_is_broken_and_the_sweep_goes_on(tmp_path: Path) -> None:
    """A worker killed while it wrote to journal.log leaves Optuna's lock (a symlink) behind: the next run waits
    out Optuna's grace period, breaks it, and finishes the sweep."""
    work = workdir(tmp_path)
    app_cli(work, *start("s", "--trials", "1", "--max-epochs", "1", "--pruner", "none"))
    journal = work / "experiments" / "s" / "journal.log"
    (journal.parent / "journal.log.lock").symlink_to(journal)  # as a killed writer leaves it
    result = subprocess.run([sys.executable, "-m", "regression_app", "--experiment-name", "s", "sweep", "--trials",
                             "2", "--device", "cpu"], cwd=work, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": PYTHONPATH})
    assert result.returncode == 0, result.stderr
    assert "2 trials ended (2 finished" in result.stdout and "Forcibly releasing the lock file" in result.stderr
    assert not (journal.parent / "journal.log.lock").exists()


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    work = workdir(tmp_path, space={"training.lr": {"choices": [1e30]}})
    out = app_cli(work, *start("s", "--trials", "2", "--max-epochs", "2")).stdout
    assert "Trial 0 failed: the training loss became" in out
    assert "2 trials ended (0 finished, 0 pruned, 2 failed)" in out
    rows = compared(work, "s")
    assert [row["state"] for row in rows] == ["failed", "failed"]
    assert rows[0]["reason"].startswith("the training loss became")


@pytest.mark.slow
def test_a_bad_trial_is_pruned(tmp_path: Path) -> None:
    """Trials with a learning rate that learns nothing are stopped once five trials have finished."""
    work = workdir(tmp_path, space={"training.lr": {"choices": [0.01, 1e-7]}})
    app_cli(work, *start("s", "--trials", "9", "--max-epochs", "3", "--seed", "1"))
    rows = compared(work, "s")
    pruned = [row for row in rows if row["state"] == "pruned"]
    assert pruned and all(row["params"]["training.lr"] == 1e-7 and row["epochs"] < 3 for row in pruned)
    assert len(rows) == 9 and (work / "experiments" / pruned[0]["experiment"] / "config.json").exists()


@pytest.mark.parametrize(("space", "message"), [
    ({"training.lr": {"low": -1, "high": 0.1}},
     "search space space.json can give training.lr = -1, which the configuration schema refuses (at training.lr"),
    ({"training.speed": {"choices": [1, 2]}},
     "search space space.json can give training.speed = 1, which the configuration schema refuses (at "
     "training.speed: unknown key"),
    ({"model.hidden": {"choices": ["wide"]}},
     "search space space.json can give model.hidden = \"wide\", which the configuration schema refuses"),
    ({"training.lr": {"low": 0.1, "high": 0.01}}, "search space space.json has training.lr from 0.1 to 0.01"),
    ({"training.lr": [0.1, 0.2]}, "search space space.json has training.lr = [0.1, 0.2], give it"),
    ([], "search space space.json must be a JSON object of dotted keys"),
], ids=["below-minimum", "unknown-key", "wrong-type", "empty-range", "not-a-range", "not-an-object"])
def test_a_space_the_schema_refuses_is_one_line_before_any_trial(tmp_path: Path, space: object,
                                                                  message: str) -> None:
    work = workdir(tmp_path, space=space)
    result = app_cli(work, *start("s", "--trials", "2"), expect=2)
    assert result.stderr.startswith(f"error: {message}") and result.stderr.count("\n") == 1, result.stderr
    assert not (work / "experiments").exists() or not list((work / "experiments").iterdir()), "nothing is created"


def test_continuing_keeps_the_stored_settings(tmp_path: Path) -> None:
    work = workdir(tmp_path)
    result = app_cli(work, "--experiment-name", "s", "sweep", "--device", "cpu", expect=2)
    assert result.stderr == "error: sweep 's' does not exist yet, start it with --config-path CONFIG.json --space " \
                            "SPACE.json\n"
    app_cli(work, *start("s", "--trials", "1", "--max-epochs", "1"))
    result = app_cli(work, *start("s"), expect=2)
    assert result.stderr == "error: sweep 's' exists and keeps its settings, run it without --config-path (or " \
                            "start another sweep)\n"
    result = app_cli(work, "compare", "nothing", expect=2)
    assert result.stderr.startswith("error: 'nothing' is neither an experiment nor a sweep in experiments")


@pytest.mark.slow
def test_two_workers_share_one_sweep_and_run_each_trial_once(tmp_path: Path) -> None:
    work = workdir(tmp_path)
    result = app_cli(work, *start("s", "--trials", "5", "--max-epochs", "2", "--workers", "2", "--pruner", "none"))
    started = dict(line.split(" of sweep 's': ") for line in result.stdout.splitlines() if " of sweep " in line)
    assert sorted(started) == [f"Trial {n}" for n in range(5)] and len(set(started.values())) == 5, \
        f"each trial started once, by one of the workers, with parameters of its own\n{result.stdout}{result.stderr}"
    rows = compared(work, "s")
    assert sorted(row["experiment"] for row in rows) == [f"s.{n}" for n in range(5)]
    assert all(row["state"] == "finished" for row in rows)


@pytest.mark.slow
def test_a_database_storage_holds_the_study(tmp_path: Path) -> None:
    """``--storage`` takes any database URL Optuna's RDB storage does (SQLite here; PostgreSQL across machines)."""
    work = workdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    app_cli(work, *start("s", "--trials", "2", "--max-epochs", "1", "--storage", url))
    assert (tmp_path / "study.db").stat().st_size > 0 and not (work / "experiments" / "s" / "journal.log").exists()
    again = app_cli(work, "--experiment-name", "s", "sweep", "--trials", "3", "--device", "cpu").stdout
    assert "Trial 2 of sweep 's'" in again and "3 trials ended" in again, "the stored URL is used again"


@pytest.mark.slow
def test_info_tensorboard_and_the_best_trial(tmp_path: Path) -> None:
    work = workdir(tmp_path)
    app_cli(work, *start("s", "--trials", "2", "--max-epochs", "2", "--pruner", "none"))
    best = app_cli(work, "compare", "s", "--best").stdout.strip()
    assert best == compared(work, "s")[0]["experiment"]
    info = app_cli(work, "--experiment-name", best, "info").stdout.splitlines()
    assert info[1].startswith(f"Trial {best[2:]} of sweep 's': finished | training.lr ")
    assert "Saved release" in app_cli(work, "--experiment-name", best, "create_release").stdout
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "regression_app", "--experiment-name", "s", "tensorboard",
                                "--port", str(port)], cwd=work, env={**os.environ, "PYTHONPATH": PYTHONPATH},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        runs = wait_for_tensorboard(process, port)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/data/plugin/hparams/experiment",
                                         data=b'{"experimentName": ""}', headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            hparams = json.loads(response.read())
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert {run.split("/")[0] for run in runs} == {"s.0", "s.1"}, f"every trial by its name: {sorted(runs)}"
    swept = {info["name"]: info for info in hparams["hparamInfos"]}
    assert {"training.lr", "model.hidden"} <= set(swept), "HParams compares the trials by their parameters"
    assert "loss/epoch/validation" in {info["name"]["tag"] for info in hparams["metricInfos"]}


@pytest.mark.slow
def test_the_mnist_app_sweeps_and_compares(workdir: Path) -> None:
    """The framework's sweep on the MNIST app, its trials then used as any experiment: compare, release, predict."""
    from conftest import run_cli

    (workdir / "space.json").write_text(json.dumps({"training.lr": {"low": 0.3, "high": 1.0}}))
    run_cli(workdir, "--experiment-name", "m", "sweep", "--config-path", "config.default.json", "--space",
            "space.json", "--trials", "2", "--max-epochs", "1", "--device", "cpu")
    rows = json.loads(run_cli(workdir, "compare", "m", "--json").stdout)
    assert [row["state"] for row in rows] == ["finished", "finished"]
    assert all(0 < row["best_value"] <= 1 for row in rows), "judged by validation accuracy"
    assert rows[0]["best_value"] >= rows[1]["best_value"], "higher is better, first"
    best = run_cli(workdir, "compare", "m", "--best").stdout.strip()
    run_cli(workdir, "--experiment-name", best, "create_release")
    assert (workdir / "experiments" / best / "checkpoints" / "1.checkpoint.release.pkl").exists()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on a free loopback port (Debian's ``postgresql``; ``.ci/run`` installs it),
    stopped and deleted after the tests. Missing is a failure in CI, a skip elsewhere."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        message = "PostgreSQL is not installed: apt-get install postgresql (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pg_bin = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="sweep-postgres-", dir="/tmp"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # it refuses to run as root
    if as_postgres:
        shutil.chown(root, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = root / "data"
    subprocess.run([*as_postgres, str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run([*as_postgres, str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_two_machines_share_a_sweep_through_postgresql(tmp_path: Path, postgres_url: str) -> None:
    """Two worker commands started apart, as on two machines sharing the experiments folder, with the study in
    a real PostgreSQL database: each trial runs once, and the sweep ends with exactly the trials asked for."""
    work = workdir(tmp_path)
    first = app_cli(work, *start("s", "--trials", "1", "--max-epochs", "1", "--storage", postgres_url)).stdout
    assert "1 trials ended" in first
    command = [sys.executable, "-m", "regression_app", "--experiment-name", "s", "sweep", "--trials", "5",
               "--device", "cpu"]
    machines = [subprocess.Popen(command, cwd=work, env={**os.environ, "PYTHONPATH": APP_PYTHONPATH},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [machine.communicate(timeout=600) for machine in machines]
    assert all(machine.returncode == 0 for machine in machines), outputs
    started = [line.split()[1] for out, _ in outputs for line in out.splitlines()
               if line.startswith("Trial ") and " of sweep " in line]
    assert sorted(started, key=int) == ["1", "2", "3", "4"], "each trial once, on one machine or the other"
    rows = compared(work, "s")
    assert sorted(row["experiment"] for row in rows) == [f"s.{n}" for n in range(5)]
    assert not (work / "experiments" / "s" / "journal.log").exists(), "the study is in the database"


def test_a_storage_that_cannot_be_opened_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    work = workdir(tmp_path)
    result = app_cli(work, *start("s", "--storage", "postgresql://nobody@127.0.0.1:1/none"), expect=2)
    assert result.stderr.startswith("error: cannot open the sweep's storage (") and \
        result.stderr.endswith("), check --storage\n") and result.stderr.count("\n") == 1, result.stderr
    assert not (work / "experiments" / "s").exists()


def test_a_trial_is_running_while_its_lock_is_held_or_another_machines_heartbeat_is_fresh(tmp_path: Path) -> None:
    """On this machine the kernel's lock says whether the worker lives; a worker of another machine, whose lock
    a shared filesystem may not show, lives while its heartbeat is younger than the grace."""
    from mnist_classifier.framework import sweep as sweeps
    from mnist_classifier.framework.storage import write_json

    folder = sweeps.Sweep(tmp_path, "s")
    folder.path.mkdir()
    assert not sweeps._is_held(folder, 0), "never started"
    with sweeps.holding(folder, 0):
        assert sweeps._is_held(folder, 0), "its lock is held"
        beat = json.loads(folder.heartbeat_path(0).read_text())
        assert beat["host"] == socket.gethostname() and abs(beat["time"] - time.time()) < 5
    assert not sweeps._is_held(folder, 0), "this machine's worker let go: its heartbeat does not keep it"
    write_json(folder.heartbeat_path(0), {"host": "another-machine", "pid": 1, "time": time.time()})
    assert sweeps._is_held(folder, 0), "another machine's fresh heartbeat"
    write_json(folder.heartbeat_path(0), {"host": "another-machine", "pid": 1,
                                          "time": time.time() - sweeps.HEARTBEAT_GRACE - 1})
    assert not sweeps._is_held(folder, 0), "another machine's heartbeat stopped"


def test_a_trial_that_ends_while_it_is_looked_at_is_left_as_it_ended(tmp_path: Path, monkeypatch) -> None:
    """``recover`` reads the running trials, then each one's lock. A worker tells the study how its trial ended
    before it lets the lock go: when that happens in between, the trial stays finished, and nothing fails."""
    import datetime
    import logging

    import optuna

    from mnist_classifier.framework import sweep as sweeps

    folder, settings, study = bare_sweep(tmp_path, trials=1)
    taken = sweeps.take_trial(study, settings)
    assert taken is not None
    probe = sweeps._is_held

    def ends_in_between(sweep: sweeps.Sweep, index: int) -> bool:
        study.tell(taken[0], 0.5)  # its worker, after recover read the trial as running
        return probe(sweep, index)

    monkeypatch.setattr(sweeps, "_is_held", ends_in_between)
    later = datetime.datetime.now() + datetime.timedelta(seconds=5)  # the trial began before this worker did
    sweeps.recover(study, folder, logging.getLogger("test"), later)
    assert sweeps.tally(folder, settings) == {"finished": 1, "pruned": 0, "failed": 0}
    assert not study.get_trials(states=(optuna.trial.TrialState.WAITING,)), "nothing to retry"


def test_a_worker_waits_its_turn_to_take_a_trial(tmp_path: Path) -> None:
    """The workers of one machine take turns to recover, count and take a trial with its lock, so none sees
    another's trial between asked and locked (and fails it as lost) or draws from the same seed."""
    from mnist_classifier.framework.lock import turn

    work = workdir(tmp_path)
    app_cli(work, *start("s", "--trials", "1", "--max-epochs", "1", "--pruner", "none"))
    locks = work / "experiments" / "s" / "locks"
    with turn(locks / "turn.lock"):  # another worker's turn
        process = subprocess.Popen([sys.executable, "-m", "regression_app", "--experiment-name", "s", "sweep",
                                    "--trials", "2", "--device", "cpu"], cwd=work, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env={**os.environ, "PYTHONPATH": PYTHONPATH})
        deadline = time.monotonic() + 120
        while not _has_open(process.pid, locks / "turn.lock"):
            assert process.poll() is None and time.monotonic() < deadline, "the worker went on without its turn"
            time.sleep(0.05)
        time.sleep(1)  # waiting for the turn, it has asked for nothing
        assert process.poll() is None and sorted(p.name for p in work.joinpath("experiments").iterdir()) == \
            ["s", "s.0"]
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0 and "2 trials ended (2 finished" in out, err


def test_a_trial_killed_before_it_had_an_index_is_retried_once(tmp_path: Path, caplog) -> None:
    """A worker killed between asking for a trial and giving it its index: the trial is failed and retried, the
    retry takes the index, and once it has ended nothing is retried again."""
    import datetime
    import logging

    import optuna

    from mnist_classifier.framework import sweep as sweeps

    folder, settings, study = bare_sweep(tmp_path, trials=2)
    killed = study.ask()  # and its worker died
    later = datetime.datetime.now() + datetime.timedelta(seconds=5)  # the trial began before this worker did
    with caplog.at_level(logging.WARNING):
        sweeps.recover(study, folder, logging.getLogger("test"), later)
    assert caplog.messages == ["a trial of sweep 's' was left by a worker that stopped before it began; it is "
                               "taken again"]
    retry = sweeps.take_trial(study, settings)
    assert retry is not None and retry[1] == 0 and retry[0].number != killed.number
    study.tell(retry[0], 0.5)
    sweeps.recover(study, folder, logging.getLogger("test"), datetime.datetime.now())
    assert not study.get_trials(states=(optuna.trial.TrialState.WAITING,)), "retried once"
    following = sweeps.take_trial(study, settings)
    assert following is not None and following[1] == 1


def bare_sweep(root: Path, trials: int) -> tuple[Sweep, Settings, optuna.Study]:
    """A sweep ``s`` in ``root`` with no configuration or space, and its study, to drive ``take_trial`` and
    ``recover`` by hand as its workers would."""
    from mnist_classifier.framework import sweep as sweeps

    folder = sweeps.Sweep(root, "s")
    folder.path.mkdir()
    settings = sweeps.Settings(config={}, schema={}, space={}, trials=trials, seed=0, pruner="none", max_epochs=1,
                               objective={"metric": "loss", "higher_is_better": False})
    return folder, settings, folder.study(settings)


def _has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open, by Linux's /proc."""
    for fd in glob.glob(f"/proc/{pid}/fd/*"):
        try:
            if os.readlink(fd) == str(path.resolve()):
                return True
        except OSError:  # closed meanwhile
            pass
    return False


def test_two_workers_asking_for_the_last_trial_at_once_run_it_once(tmp_path: Path) -> None:
    """Workers look at the count and ask apart: when two both see the last trial missing and both ask, the later
    is a surplus that is never run, counted or retried, and a longer sweep later numbers on without a hole."""
    import dataclasses
    import datetime
    import logging

    import optuna

    from mnist_classifier.framework import sweep as sweeps

    folder, settings, study = bare_sweep(tmp_path, trials=1)
    first, second = sweeps.take_trial(study, settings), sweeps.take_trial(study, settings)
    assert first is not None and first[1] == 0 and second is None, "the trial, then the surplus"
    study.tell(first[0], 0.5)
    sweeps.recover(study, folder, logging.getLogger("test"), datetime.datetime.now())
    assert sweeps.tally(folder, settings) == {"finished": 1, "pruned": 0, "failed": 0}
    assert not study.get_trials(states=(optuna.trial.TrialState.WAITING,)), "a surplus is not retried"
    longer = dataclasses.replace(settings, trials=2)
    third = sweeps.take_trial(study, longer)
    assert third is not None and third[1] == 1, "the surplus took no index"
    study.tell(third[0], 0.4)
    killed = study.ask()  # a worker killed between asking and marking its surplus: its retry is the surplus
    study.tell(killed, state=optuna.trial.TrialState.FAIL)
    sweeps.recover(study, folder, logging.getLogger("test"), datetime.datetime.now())
    assert sweeps.take_trial(study, longer) is None
    sweeps.recover(study, folder, logging.getLogger("test"), datetime.datetime.now())
    assert not study.get_trials(states=(optuna.trial.TrialState.WAITING,)), "retried once, then never again"
