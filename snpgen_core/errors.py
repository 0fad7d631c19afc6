"""Errors raised for bad user input: the CLI and the app turn them into one clear line."""


class InputError(ValueError):
    """A problem with a user's file, option or parameter.

    The message names the file (and line or column) when there is one, says what is wrong and how to fix it.
    Code that catches it shows ``str(err)`` to the user, never a traceback.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None, hint: str | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        text = where + message
        if hint:
            text += f" ({hint})"
        super().__init__(text)
        self.path = path
        self.line = line
        self.hint = hint


def not_utf8(path, gz: bool = False) -> InputError:
    """The InputError for a text file that is not UTF-8, naming the first line holding a byte that is not."""
    import gzip

    opener = gzip.open if gz else open
    line = None
    try:
        with opener(path, "rb") as fh:
            for no, raw in enumerate(fh, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    line = no
                    break
    except (OSError, EOFError):
        pass
    return InputError("is not UTF-8 text (a byte such as Latin-1 or binary data)", path=str(path), line=line,
                      hint="convert it, e.g. iconv -f latin1 -t utf-8 FILE > NEW")
