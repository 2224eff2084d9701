"""Field validators of TOML specs: each checks one value and names the file and field.

Used by :mod:`firesmoke.campaign.spec`; a :class:`Ctx` carries the spec file (for
errors) and its folder (relative paths resolve against it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from firesmoke import bounds
from firesmoke.dates import as_date
from firesmoke.errors import InputError
from firesmoke.paths import is_url, safe_join

__all__ = ["Ctx", "boolean", "date", "integer", "paths", "plain_name", "string", "table"]


class Ctx:
    """Where we are in the spec (file and base folder), for error messages and paths."""

    def __init__(self, path: Path | None, base: Path) -> None:
        self.path = path
        self.base = base

    def error(self, message: str, fld: str) -> InputError:
        return InputError(message, path=self.path, field=fld)

    def resolve(self, value: Any, fld: str, url_ok: bool = False) -> Path:
        if not isinstance(value, str) or not value:
            raise self.error(f"expected a path string, got {value!r}", fld)
        if url_ok and is_url(value):  # object storage (s3://, gs://, ...): as given
            return value  # type: ignore[return-value]
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base / p)


def table(ctx: Ctx, value: Any, fld: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ctx.error(f"expected a table, got {type(value).__name__}", fld)
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ctx.error(f"unknown key(s) {unknown}; allowed: {list(allowed)}", fld)
    return dict(value)


def integer(ctx: Ctx, value: Any, fld: str, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer in ``[minimum, maximum]`` (:func:`firesmoke.bounds.check_integer`)."""
    if isinstance(value, float):  # TOML 1e15 is a float: refused as not an integer
        raise ctx.error(f"expected an integer, got {value!r}", fld)
    return bounds.check_integer(value, fld, minimum, maximum, path=ctx.path)


def boolean(ctx: Ctx, value: Any, fld: str) -> bool:
    if not isinstance(value, bool):
        raise ctx.error(f"expected true or false, got {value!r}", fld)
    return value


def string(ctx: Ctx, value: Any, fld: str, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise ctx.error(f"expected a non-empty string, got {value!r}", fld)
    if choices is not None and value not in choices:
        raise ctx.error(f"{value!r} is not one of {list(choices)}", fld)
    return value


def plain_name(ctx: Ctx, value: Any, fld: str) -> str:
    """A name used in file names: refuse anything that could escape the output folder."""
    name = string(ctx, value, fld)
    bounds.check_name_length(name, fld, ctx.path)
    try:
        safe_join(ctx.base, name)
    except InputError as exc:
        raise ctx.error(f"{name!r} is not a plain name (letters, digits, '.', '_', '-')", fld) from exc
    return name


def date(ctx: Ctx, value: Any, fld: str) -> dt.date:
    """A date field (``YYYY-MM-DD`` string or TOML date)."""
    if not isinstance(value, (str, dt.date)):
        raise ctx.error(f"expected a date (YYYY-MM-DD), got {value!r}", fld)
    try:
        return as_date(value, fld)
    except InputError as exc:
        raise ctx.error(f"not a date: {value!r}", fld) from exc


def paths(ctx: Ctx, value: Any, fld: str) -> tuple[Path, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ctx.error("expected a path or a list of paths", fld)
    return tuple(ctx.resolve(v, f"{fld}[{i}]") for i, v in enumerate(value))
