"""The HTTP side of ``serve``, on Starlette: the drawing page, and ``/predict``, ``/info``, ``/health`` as JSON.

``POST /predict`` takes an image as a multipart file, as raw bytes (``Content-Type: image/...``) or as JSON
``{"image": "data:image/png;base64,..."}`` and answers what ``predict --json`` prints for a file. A bad request
is ``{"error": "<what>, <what to do>"}`` with a 4xx status, like the CLI's one-line errors. A body over
``max_bytes`` is refused from its Content-Length, or as soon as that many bytes arrived: never read whole.
The model is loaded once by ``serve``; requests run it on worker threads, as many at once as there are cores,
so the event loop keeps accepting.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..framework.errors import UserError
from ..inference.images import MAX_PIXELS, ImageTooLargeError, open_image

if TYPE_CHECKING:
    from ..inference.onnx_model import OnnxModel
    from ..inference.release import ReleasedModel

PAGE = Path(__file__).with_name("page")
MAX_BYTES = 10 * 1024 * 1024
RAW_TYPES = ("image/", "application/octet-stream")
logger = logging.getLogger("mnist_classifier.web")


class BadRequest(Exception):  # noqa: N818 (it is the HTTP status's name)
    """A request this API refuses: its status and the one-line reason sent back."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_web_app(model: ReleasedModel | OnnxModel, source: str, max_bytes: int = MAX_BYTES) -> Starlette:
    """The ASGI app serving ``model`` (``source``: the release file or the experiment's checkpoint it came from).
    Run it with any ASGI server: ``serve`` uses uvicorn."""
    about = {"source": source, "dataset": model.dataset, "model": model.model_name, "epoch": model.epoch,
             "test_accuracy": model.test_accuracy, "class_names": model.class_names,
             "max_upload_bytes": max_bytes, "max_pixels": MAX_PIXELS}

    # As many images at once as there are cores: more only share them (8 clients, 2 cores: 1.6x the requests/s).
    limiter = anyio.CapacityLimiter(os.cpu_count() or 1)

    async def page(request: Request) -> Response:
        return FileResponse(PAGE / "index.html")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def info(request: Request) -> Response:
        return JSONResponse(about)

    async def predict(request: Request) -> Response:
        try:
            top_k = _top_k(request, len(model.class_names))
            data = await _image_bytes(request, max_bytes)
            show_input = _flag(request, "show_input")
            answer = await anyio.to_thread.run_sync(_classify, model, data, top_k, show_input, limiter=limiter)
        except BadRequest as refused:
            return _error(refused.status, str(refused))
        return JSONResponse(answer)

    routes = [Route("/", page), Route("/health", health), Route("/info", info),
              Route("/predict", predict, methods=["POST"]), Mount("/page", StaticFiles(directory=PAGE))]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _internal_error})


def _classify(model: ReleasedModel | OnnxModel, data: bytes, top_k: int, show_input: bool) -> dict[str, Any]:
    try:
        image = open_image(data)
    except ImageTooLargeError as error:
        raise BadRequest(413, str(error)) from None
    except UserError as error:
        raise BadRequest(422, f"{error}, send a PNG, JPEG, BMP, GIF or WebP image") from None
    prediction = model.predict([image], top_k)[0]
    answer = prediction.to_json()
    if show_input:
        png = io.BytesIO()
        Image.fromarray(prediction.input, mode="L").save(png, format="PNG")
        answer["input"] = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    return answer


async def _image_bytes(request: Request, max_bytes: int) -> bytes:
    """The image's bytes, from whichever of the three forms the request's Content-Type says it uses."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/json") and not kind.startswith(RAW_TYPES):
        raise BadRequest(415, f"Content-Type '{kind or 'none'}' is not accepted, send image/png (or another "
                              "image/ type), multipart/form-data with a file, or application/json")
    body = await _body(request, max_bytes)
    if not body:
        raise BadRequest(400, "the request has no body, send an image")
    if kind == "multipart/form-data":
        data = await _from_form(request, body)
    elif kind == "application/json":
        data = _from_json(body)
    else:
        data = body
    if not data:
        raise BadRequest(400, "the image is empty (0 bytes), send an image file")
    return data


async def _body(request: Request, max_bytes: int) -> bytes:
    too_large = (f"the request is larger than {max_bytes} bytes ({max_bytes / 2**20:g} MiB), send a smaller "
                 "image or start serve with a larger --max-upload-mb")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(400, f"Content-Length '{declared}' is not a number of bytes, send a valid one")
        if int(declared) > max_bytes:
            raise BadRequest(413, too_large)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BadRequest(413, too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def _from_form(request: Request, body: bytes) -> bytes:
    async def replay() -> dict[str, Any]:  # the body was already read, within the limit: parse it from memory
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(request.scope, replay).form(max_files=1, max_fields=10) as form:
            files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
            if not files:
                raise BadRequest(400, "the form has no file, send the image as a file field named 'image'")
            return await files[0].read()
    except HTTPException as error:  # what Starlette's form parser refuses (no boundary, too many parts...)
        raise BadRequest(400, f"the multipart form cannot be read ({error.detail}), send one file field") from None


def _from_json(body: bytes) -> bytes:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(400, 'the body is not valid JSON, send {"image": "data:image/png;base64,..."}') from None
    text = document.get("image") if isinstance(document, dict) else None
    if not isinstance(text, str):
        raise BadRequest(400, 'the JSON has no "image" string, send {"image": "data:image/png;base64,..."}')
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise BadRequest(400, "the data URL is not base64, send data:image/png;base64,...")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(400, "the image is not valid base64, send data:image/png;base64,... or bare base64"
                         ) from None


def _top_k(request: Request, classes: int) -> int:
    text = request.query_params.get("top_k", "1")
    if not text.isdigit() or not 1 <= int(text) <= classes:
        raise BadRequest(400, f"top_k '{text}' is not a whole number from 1 to {classes}, fix the query")
    return int(text)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() in ("1", "true", "yes")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (no such route, wrong method) as JSON errors too."""
    assert isinstance(error, HTTPException)
    path = request.url.path
    if error.status_code == 404:
        message = f"there is no {path}, use GET /, GET /info, GET /health or POST /predict"
    elif error.status_code == 405:
        allowed = {key.lower(): value for key, value in (error.headers or {}).items()}.get("allow", "another method")
        message = f"{path} does not take {request.method}, use {allowed}"
    else:
        message = str(error.detail)
    return JSONResponse({"error": message}, status_code=error.status_code, headers=error.headers)


async def _internal_error(request: Request, error: Exception) -> Response:  # a bug: logged, one line sent
    logger.error("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return _error(500, f"unexpected {type(error).__name__} in the server, see its log and report it")
