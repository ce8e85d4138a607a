"""The export's ``README.md``: a model card (Mitchell et al., 2019) from what the export measured and recorded:
data, recipe and configuration, accuracy in all and per class, real-picture figures, limits, and use."""

from __future__ import annotations

import json
from typing import Any


def _percent(value: float | None) -> str:
    return "not measured" if value is None else f"{100 * value:.2f}%"


def model_card(config: dict[str, Any], training: dict[str, Any] | None) -> str:
    """Markdown for the export described by ``config`` (its ``config.json``); ``training``: the experiment's
    configuration and seed, when the export knows them."""
    release, evaluation, verification = config["release"], config["evaluation"], config["verification"]
    name, dataset = release["architecture"]["name"], release["dataset"]
    mean, std = release["normalization"]["mean"][0], release["normalization"]["std"][0]
    preparation = release["preprocessing"]
    centre = "centre of mass" if preparation["centre"] == "mass" else "box"
    drawn = ", drawn ink found under uneven light, specks dropped (mnist_classifier.inference.strokes)" \
        if preparation.get("stroke_width") else ""
    batches = ", ".join(map(str, verification["batch_sizes"]))
    calibration = release["calibration"]
    no_digit = (f", and a picture whose two likeliest classes together have under {calibration['no_digit_below']:.0%} "
                "is called `no digit`" if calibration.get("no_digit_below") else "")
    typed = (training["config"].get("data", {}).get("typed_digits") or {}) if training else {}
    lines = [f"# {dataset} classifier ({name}), epoch {config['epoch']}", "",
             f"Exported by {config['exported_by']} from {config['source']}, with PyTorch {config['torch']} "
             f"(ONNX opset {config['opset']}).", "",
             "## Model", "",
             f"- Architecture: `{name}` with `{json.dumps(release['architecture'].get('kwargs', {}))}`.",
             f"- Input: `{config['input']['name']}`, float32 `[batch, 1, 28, 28]`, pixels normalised as "
             f"`(p - 255 * {mean:.4f}) / (255 * {std:.4f})`.",
             f"- Output: `{config['output']['name']}`, float32 `[batch, {len(release['class_names'])}]`, "
             f"log-probabilities of the classes {', '.join(release['class_names'])}.",
             f"- Picture preparation: the object brought to a {preparation['box']}-pixel box in 28x28, centred by "
             f"its {centre}{drawn}.",
             f"- Calibration: temperature {calibration['temperature']:.3f} fitted on {calibration['images']} "
             f"validation images; an answer below {calibration['unsure_below']:.0%} calibrated confidence is called "
             f"unsure{no_digit}.", "",
             "## Training", ""]
    if training:
        mixed = f", with digits rendered from fonts mixed in ({json.dumps(typed)})" if typed else ""
        lines += [f"- Data: {dataset}{mixed}.",
                  f"- Seed {training['seed']}; configuration:", "", "```json",
                  json.dumps(training["config"], indent=2), "```"]
    else:
        lines.append(f"- Data: {dataset}. The release file does not record its training configuration.")
    lines += ["", "## Evaluation", "",
              f"- Test accuracy of this ONNX model on the {evaluation['images']} {dataset} test images: "
              f"{_percent(evaluation['accuracy'])} (the release recorded {_percent(release.get('test_accuracy'))}).",
              "", "| class | accuracy |", "| --- | --- |"]
    lines += [f"| {label} | {_percent(value)} |" for label, value in evaluation["per_class_accuracy"].items()]
    pictures = config.get("pictures")
    lines += ["", "### Real pictures", ""]
    if pictures:
        lines += [f"Read by this model from `{pictures['folder']}` (labelled by the first character of each file "
                  "name):", "", "| pictures | files | read right |", "| --- | --- | --- |"]
        lines += [f"| {group} | {count} | {_percent(right)} |" for group, (right, count) in pictures["groups"].items()]
    else:
        lines.append("Not measured at export: `export --pictures DIR` reads a folder of labelled pictures.")
    lines += ["", "### Verified at export", "",
              f"ONNX Runtime and PyTorch ran the same {verification['images']} test images in batches of {batches}: "
              f"{verification['disagreements']} classes differed, and log-probabilities were at most "
              f"{verification['max_difference']:.2e} apart.", "",
              "## Limits", "",
              f"- It knows the {len(release['class_names'])} classes above and nothing else: any picture gets one of "
              "them; a low calibrated confidence (status `unsure` or `no digit`) is the sign of a guess, or of a "
              "picture of none"
              + (" (it was trained to give letters, signs and kana low confidence: `not_digits`)."
                 if typed.get("not_digits") else "."),
              f"- It was trained on {dataset}'s 28x28 images: pictures are brought to that form first, and a picture "
              "unlike them (several objects, a cluttered background, a tiny digit) is read less well than the "
              "test accuracy says.",
              "- The page's preparation (`page/classifier.js`) is the server's for drawings on its canvas; photos "
              "are read best by `predict` or `serve`.", "",
              "## Use", "",
              "```",
              "python -m mnist_classifier predict --release . picture.png     # on ONNX Runtime, no PyTorch",
              "python -m mnist_classifier serve --release .",
              "python -m http.server --directory .                           # index.html: the page, in the browser",
              "```", "",
              "ONNX Runtime in five lines of Python (the input is a digit already in MNIST's form):", "",
              "```python",
              "import json, numpy as np, onnxruntime",
              "release = json.load(open('config.json'))['release']",
              "session = onnxruntime.InferenceSession('model.onnx')",
              "pixels = np.zeros((1, 1, 28, 28), np.float32)  # your digit: light on black, 0-255",
              f"print(release['class_names'][session.run(None, {{'image': (pixels - {255 * mean!r}) / "
              f"{255 * std!r}}})[0].argmax()])",
              "```", ""]
    return "\n".join(lines)
