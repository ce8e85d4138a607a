"""The one exception type the CLI turns into a single ``error: ...`` line instead of a traceback."""


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and what to do about it."""


class Interrupted(Exception):  # noqa: N818 (a requested stop, not an error)
    """Training stopped on SIGINT/SIGTERM after saving; the CLI exits with 128 + the signal number."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
