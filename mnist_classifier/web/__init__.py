"""``serve``'s web side: the HTTP API on Starlette (``app.py``) and the drawing page (``page/``)."""
