"""``serve``: the HTTP API over a real uvicorn server on loopback, as a client would use it. The page in a real
browser needs a model that reads drawn digits, so that test is in ``test_real_mnist.py``."""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image
from test_predict import render

from conftest import Watched, run_cli

LIMIT = 2**20  # the server below runs with --max-upload-mb 1


class Server:
    """``python -m mnist_classifier ... serve --port 0 ...`` in a subprocess; ``url`` is the one it printed."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.watched = Watched([sys.executable, "-m", "mnist_classifier", *args, "--port", "0"], cwd)
        self.watched.wait_for("(Ctrl-C to stop)", timeout=120)
        self.url = re.search(r"at (http://\S+/) ", self.watched.seen[-1]).group(1)
        self.port = int(self.url.rsplit(":", 1)[1].rstrip("/"))

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str]:
        self.watched.process.send_signal(signum)
        code, stderr = self.watched.finish(timeout=30)
        rest = []
        while (line := self.watched.lines.get(timeout=10)) != "":  # the reader thread's lines, to the end
            rest.append(line)
        return code, "".join(self.watched.seen + rest) + stderr


@pytest.fixture(scope="module")
def release(tmp_path_factory, trained_experiment: Path) -> Path:
    work = tmp_path_factory.mktemp("serve") / "work"
    shutil.copytree(trained_experiment, work)
    run_cli(work, "--experiment-name", "base", "create_release", "--epoch", "2")
    return work / "experiments" / "base" / "checkpoints" / "2.checkpoint.release.pkl"


@pytest.fixture(scope="module")
def server(release: Path) -> Iterator[Server]:
    served = Server(release.parent, "serve", "--release", str(release), "--max-upload-mb", "1")
    yield served
    code, output = served.stop()
    assert code == 0 and "stopped serving" in output, output


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    """Digits as PNG, JPEG, BMP, GIF, an RGBA PNG and a large grey photo-like JPEG."""
    folder = tmp_path_factory.mktemp("images")
    files = []
    for digit, suffix in zip(range(10), [".png", ".jpg", ".bmp", ".gif", ".png", ".jpg", ".png", ".bmp", ".jpg",
                                         ".png"], strict=True):
        image = render(digit, size=60 + 10 * digit, stroke=digit % 3, canvas=(160 + 20 * digit, 180))
        if digit == 4:
            image = render(digit, ink=(0, 0, 0, 255), paper=(255, 255, 255, 0), mode="RGBA")
        files.append(folder / f"{digit}{suffix}")
        image.save(files[-1])
    return files


@pytest.fixture(scope="module")
def predicted(release: Path, images: list[Path]) -> dict[str, dict]:
    """What ``predict --json --top-k 3`` answers for each file, without its path."""
    result = run_cli(release.parent, "predict", "--release", str(release), *map(str, images), "--json",
                     "--top-k", "3")
    return {entry.pop("path"): entry for entry in json.loads(result.stdout)}


def data_url(path: Path) -> str:
    kind = {".jpg": "jpeg"}.get(path.suffix, path.suffix[1:])
    return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode()


def ask(client: httpx.Client, path: Path, form: str) -> httpx.Response:
    """POST one file to /predict?top_k=3 as a multipart file, raw bytes, a JSON data URL or bare JSON base64."""
    url = "/predict?top_k=3"
    if form == "multipart":
        return client.post(url, files={"image": (path.name, path.read_bytes(), "application/octet-stream")})
    if form == "raw":
        return client.post(url, content=path.read_bytes(), headers={"Content-Type": f"image/{path.suffix[1:]}"})
    image = data_url(path) if form == "data-url" else base64.b64encode(path.read_bytes()).decode()
    return client.post(url, json={"image": image})


FORMS = ("multipart", "raw", "data-url", "base64")


def test_every_input_form_answers_what_predict_prints(server: Server, images: list[Path],
                                                      predicted: dict[str, dict]) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path in images:
            for form in FORMS:
                response = ask(client, path, form)
                assert response.status_code == 200, (path, form, response.text)
                assert response.json() == predicted[str(path)], (path, form)
        shown = client.post("/predict?show_input=true", content=images[3].read_bytes(),
                            headers={"Content-Type": "image/gif"}).json()
        assert shown["label"] == predicted[str(images[3])]["label"] and len(shown["top_k"]) == 1
        picture = Image.open(io.BytesIO(base64.b64decode(shown["input"].split(",")[1])))
        assert picture.size == (28, 28) and picture.mode == "L" and picture.getextrema()[1] > 200


def test_info_health_and_the_page(server: Server, release: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/health").json() == {"status": "ok"}
        info = client.get("/info").json()
        assert info["source"] == str(release) and info["dataset"] == "mnist" and info["model"] == "cnn"
        assert info["epoch"] == 2 and 0 <= info["test_accuracy"] <= 1
        assert info["class_names"] == [str(digit) for digit in range(10)] and info["max_upload_bytes"] == LIMIT
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<canvas id="canvas"' in page.text
        for asset in re.findall(r'(?:src|href)="(/page/[^"]+)"', page.text):  # all served here: no CDN
            assert client.get(asset).status_code == 200, asset
        assert "http" not in page.text.replace("http-equiv", ""), "the page must load nothing from elsewhere"


def raw_exchange(port: int, head: str, body: bytes = b"") -> tuple[int, dict]:
    """Send a request's bytes as they are and read the status and JSON of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


FORM = "multipart/form-data; boundary=XyZ"
FIELD_ONLY = b'--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--XyZ--\r\n'


def test_bad_requests_get_a_json_error_and_a_4xx_status(server: Server, images: list[Path], tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    Image.new("L", (10000, 6000)).save(huge)  # 60 megapixels in a few kilobytes
    png = images[0].read_bytes()
    cases = [
        ("not an image", 422, dict(content=b"hello", headers={"Content-Type": "image/png"}),
         "the image is not an image PIL can read (UnidentifiedImageError)"),
        ("empty body", 400, dict(content=b"", headers={"Content-Type": "image/png"}), "the request has no body"),
        ("empty file", 400, dict(files={"image": ("x.png", b"", "image/png")}), "the image is empty"),
        ("form without a file", 400, dict(content=FIELD_ONLY, headers={"Content-Type": FORM}), "the form has no file"),
        ("url-encoded form", 415, dict(data={"image": "x"}), "Content-Type 'application/x-www-form-urlencoded'"),
        ("text", 415, dict(content=b"abc", headers={"Content-Type": "text/plain"}), "Content-Type 'text/plain'"),
        ("no content type", 415, dict(content=png), "Content-Type 'none' is not accepted"),
        ("bad JSON", 400, dict(content=b"{", headers={"Content-Type": "application/json"}),
         "the body is not valid JSON"),
        ("JSON without image", 400, dict(json={"picture": "x"}), 'the JSON has no "image" string'),
        ("bad base64", 400, dict(json={"image": "data:image/png;base64,@@@"}), "the image is not valid base64"),
        ("not base64 data URL", 400, dict(json={"image": "data:image/png,abc"}), "the data URL is not base64"),
        ("too many pixels", 413, dict(content=huge.read_bytes(), headers={"Content-Type": "image/png"}),
         "the image has 10000x6000 pixels, more than 50 million, scale it down"),
        ("body too large", 413, dict(content=b"\0" * (LIMIT + 1), headers={"Content-Type": "image/png"}),
         f"the request is larger than {LIMIT} bytes (1 MiB)"),
    ]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for name, status, request, message in cases:
            response = client.post("/predict", **request)
            assert response.status_code == status, (name, response.text)
            error = response.json()["error"]
            assert error.startswith(message), (name, error)
            assert ", " in error and "\n" not in error, "one line: what is wrong, what to do"
        for query in ("top_k=0", "top_k=11", "top_k=two"):
            response = client.post(f"/predict?{query}", content=png, headers={"Content-Type": "image/png"})
            assert response.status_code == 400 and "top_k" in response.json()["error"], query
        response = client.get("/predict")
        assert response.status_code == 405 and response.json()["error"] == "/predict does not take GET, use POST"
        response = client.get("/nothing-here")
        assert response.status_code == 404 and response.json()["error"].startswith("there is no /nothing-here")
    # Refused from the Content-Length alone: the body is never sent, and the answer still comes.
    status, answer = raw_exchange(server.port, f"POST /predict HTTP/1.1\nHost: x\nContent-Type: image/png\n"
                                               f"Content-Length: {100 * LIMIT}\n")
    assert status == 413 and answer["error"].startswith("the request is larger than")
    # Without a Content-Length (chunked), refused once the limit is passed, before the body ends.
    chunk = b"\0" * (LIMIT // 2)
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))  # no final chunk: never ends
    status, answer = raw_exchange(server.port, "POST /predict HTTP/1.1\nHost: x\nContent-Type: image/png\n"
                                               "Transfer-Encoding: chunked\n", body)
    assert status == 413 and answer["error"].startswith("the request is larger than")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/health").status_code == 200, "the server goes on after every refusal"


def test_eight_concurrent_clients_get_exactly_what_predict_prints(server: Server, images: list[Path],
                                                                  predicted: dict[str, dict]) -> None:
    jobs = [(images[n % len(images)], FORMS[n % len(FORMS)]) for n in range(500)]

    def client_work(share: list[tuple[Path, str]]) -> list[tuple[Path, int, dict]]:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return [(path, (response := ask(client, path, form)).status_code, response.json())
                    for path, form in share]

    with ThreadPoolExecutor(8) as pool:
        answers = [item for part in pool.map(client_work, [jobs[k::8] for k in range(8)]) for item in part]
    assert len(answers) == 500
    assert all(status == 200 for _, status, _ in answers)
    wrong = [(path.name, answer) for path, _, answer in answers if answer != predicted[str(path)]]
    assert not wrong, wrong[:3]


@pytest.mark.slow
def test_serve_from_an_experiment_and_stop_with_sigterm(release: Path) -> None:
    work = release.parents[3]
    served = Server(work, "--experiment-name", "base", "serve", "--epoch", "1")
    with httpx.Client(base_url=served.url, timeout=30) as client:
        info = client.get("/info").json()
    assert info["epoch"] == 1 and info["source"] == "base, epoch 1"
    code, output = served.stop(signal.SIGTERM)
    assert code == 0 and "stopped serving" in output and "Traceback" not in output, output


@pytest.mark.slow
def test_serve_errors_are_one_line(release: Path, server: Server, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.checkpoint.release.pkl"
    damaged.write_bytes(release.read_bytes()[: len(release.read_bytes()) // 2])
    missing = tmp_path / "missing.checkpoint.release.pkl"
    cases = [
        (["serve", "--release", str(release), "--port", str(server.port)],
         f"error: cannot listen on 127.0.0.1:{server.port} (Address already in use), choose another --port or "
         "--host"),
        (["serve", "--release", str(release), "--host", "no-such-host.invalid"],
         "error: cannot listen on no-such-host.invalid:8000 ("),
        (["serve", "--release", str(missing)], f"error: release {missing} does not exist, check the path"),
        (["serve", "--release", str(damaged)],
         f"error: release {damaged} is damaged and cannot be loaded (RuntimeError), make it again with "),
        (["serve"], "error: serve needs a model, give --release PATH or --experiment-name NAME"),
        (["serve", "--release", str(release), "--port", "70000"], "error: argument --port: 70000 is not a TCP port"),
    ]
    for args, start in cases:
        result = run_cli(tmp_path, *args, expect=2)
        assert result.stderr.startswith(start) and result.stderr.count("\n") == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
