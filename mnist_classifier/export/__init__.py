"""``export``: a release as a folder that runs anywhere: ``model.onnx`` (verified against PyTorch at export),
``model.safetensors`` and ``config.json``, a model card, and a page that classifies in the browser."""
