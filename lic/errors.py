"""The project's own error type: what the CLI prints as one line with exit code 2."""


class LicError(Exception):
    """A user-facing error: bad input, a missing file, a checkpoint that does not match."""
