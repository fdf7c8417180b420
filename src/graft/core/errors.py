"""The one exception type for expected, user-facing failures."""


class GraftError(Exception):
    """Bad input or a failed check: the CLI prints the message as one line and exits 1, without a traceback."""
