"""The model as an ONNX graph, by ``torch.onnx.export``'s dynamo exporter: eval mode, a named dynamic batch
dimension, the opset pinned."""

from __future__ import annotations

import contextlib
import copy
import io
import warnings

import torch

from ..framework.errors import UserError

OPSET = 18  # ONNX Runtime (Python and Web) has run opset 18 since 1.14
INPUT, OUTPUT = "image", "log_probabilities"  # [batch, 1, 28, 28] normalised pixels -> [batch, classes]


def to_onnx(model: torch.nn.Module, name: str) -> bytes:
    """The serialised ONNX model of ``model`` (registered as ``name``). A model the exporter cannot handle is a
    ``UserError`` naming it."""
    model = copy.deepcopy(model).cpu().to(memory_format=torch.contiguous_format).eval()
    example = torch.zeros(2, 1, 28, 28)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (example,), dynamo=True, opset_version=OPSET, input_names=[INPUT], output_names=[OUTPUT],
                dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
    except Exception as error:  # noqa: BLE001 (the exporter raises many kinds; the user needs one line)
        reason = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise UserError(f"the ONNX exporter cannot handle model '{name}' ({reason[:200]}), export another "
                        "model or report it") from None
    return program.model_proto.SerializeToString()


def set_metadata(serialised: bytes, metadata: dict[str, str]) -> bytes:
    """``serialised`` with ``metadata`` added to (or replacing) its properties; the graph is untouched."""
    import onnx

    proto = onnx.load_from_string(serialised)
    kept = [entry for entry in proto.metadata_props if entry.key not in metadata]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()
