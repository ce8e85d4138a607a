"""The one exception type the CLI turns into a single ``error: ...`` line instead of a traceback."""


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and what to do about it."""
