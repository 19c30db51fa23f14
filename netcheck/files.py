"""Small files the user names (a token, an allow list, a lab spec) read with a bound: a path
to a device or a huge file is one line, never a hang or a traceback."""

from __future__ import annotations


class FileProblem(Exception):
    """What is wrong with the file, in a few words ("cannot read it (...)"); the caller puts
    the option and the path in front and the fix after."""


def size_words(n: int) -> str:
    """64 MiB, 4096 bytes."""
    return f"{n >> 20} MiB" if n >= 1 << 20 and not n % (1 << 20) else f"{n} bytes"


def read_text(path: str, limit: int) -> str:
    """The file's UTF-8 text, at most `limit` bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise FileProblem(f"cannot read it ({exc.strerror})") from None
    if len(data) > limit:
        raise FileProblem(f"larger than {size_words(limit)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"not UTF-8 text (byte {exc.start})") from None
