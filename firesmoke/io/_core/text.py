"""Text files with a few lines that are not UTF-8: keep the rest, list those lines.

A FIRMS CSV of a million rows with one damaged byte should lose one row, not the file.
:func:`blank_bad_lines` copies a text file into memory with every line that does not
decode as UTF-8 replaced by a one-field placeholder line, so that a CSV parser reports it
as a malformed row *at its physical line number* (the line count is unchanged), and
returns those line numbers so the caller can give them their true reason.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

__all__ = ["PLACEHOLDER", "blank_bad_lines"]

PLACEHOLDER = b"\x00not-utf8\x00"
"""The content of a replaced line (one CSV field; NUL bytes never occur in text)."""


def blank_bad_lines(path: str | os.PathLike[str], skip: int = 1) -> tuple[io.BytesIO, list[int]]:
    """The bytes of ``path`` with non-UTF-8 lines replaced, and their 1-based numbers.

    Parameters
    ----------
    path
        A text file (read whole into memory: this is the rare, damaged-file path).
    skip
        Leading lines copied as they are (the header, checked by the caller).

    Returns
    -------
    (io.BytesIO, list of int)
        The cleaned content, positioned at the start, and the replaced line numbers.
        Line endings are kept, so a last line without a newline stays without one.
    """
    out = io.BytesIO()
    bad: list[int] = []
    with open(Path(path), "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if number > skip:
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    bad.append(number)
                    end = b"\r\n" if line.endswith(b"\r\n") else b"\n" if line.endswith(b"\n") else b""
                    line = PLACEHOLDER + end
            out.write(line)
    out.seek(0)
    return out, bad
