"""The names of the burned-area product modes and compat choices, and nothing else.

They live apart from :mod:`firesmoke.burned.rules` (numpy, pandas) because the command
line's parser offers them as choices: ``firesmoke --help`` imports this module only.
:mod:`firesmoke.burned.rules` re-exports both and checks that every name has its rules.
"""

from __future__ import annotations

__all__ = ["COMPAT_MODES", "MODES"]

MODES = ("monthly", "range", "nrt")
"""Burned-area product modes."""

COMPAT_MODES = ("banet-0.6.7",)
"""The names ``compat=`` accepts (besides None): the reference software, BA-Net 0.6.7."""
