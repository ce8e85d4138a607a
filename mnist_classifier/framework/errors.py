"""The exceptions the CLI turns into one ``error: ...`` line instead of a traceback."""


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and what to do about it (exit status 2)."""


class HookError(Exception):
    """An application's hook broke the contract its docstring states: a bug in the app, not bad input.

    The message names the hook and says what it must do instead (exit status 1).
    """


class HookNotImplementedError(HookError, NotImplementedError):
    """A hook a pipeline needs is still the base class's; the message is ``Class.hook``."""

    def __str__(self) -> str:
        return f"{self.args[0]} is not implemented, implement that hook to use this pipeline"


class Interrupted(Exception):  # noqa: N818 (a requested stop, not an error)
    """Training stopped on SIGINT/SIGTERM after saving; the CLI exits with 128 + the signal number."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
