"""Validation helpers of the config schemas: each check names the full key and the allowed
range, so a bad override fails with one line before anything starts."""

from __future__ import annotations

import math
from typing import Any


class ConfigError(ValueError):
    """A configuration value outside what apex-dqn accepts; the message names key and range."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(key: str, value: Any, *, lo: int | None = None, hi: int | None = None) -> None:
    """Raise ConfigError unless ``value`` is an int in [lo, hi]."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        raise ConfigError(f"{key} must be an integer {_range_text(lo, hi)}, got {value!r}")


def check_float(
    key: str,
    value: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    """Raise ConfigError unless ``value`` is a finite number in the given (half-)open range."""
    ok = _is_number(value) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        lo_b = "(" if lo_open else "["
        hi_b = ")" if hi_open else "]"
        lo_t = "-inf" if lo is None else f"{lo:g}"
        hi_t = "inf" if hi is None else f"{hi:g}"
        raise ConfigError(f"{key} must be a number in {lo_b}{lo_t}, {hi_t}{hi_b}, got {value!r}")


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")


def check_bool_or_auto(key: str, value: Any) -> None:
    """Raise ConfigError unless ``value`` is a boolean or 'auto' (decided at run time)."""
    if not (isinstance(value, bool) or value == "auto"):
        raise ConfigError(f"{key} must be one of true, false, auto; got {value!r}")


def check_int_or_auto(key: str, value: Any, *, lo: int, hi: int) -> None:
    """Raise ConfigError unless ``value`` is 'auto' (decided at run time) or an int in [lo, hi]."""
    if value == "auto":
        return
    ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
    if not ok:
        raise ConfigError(f"{key} must be auto or an integer in [{lo}, {hi}]; got {value!r}")


def _range_text(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"in [{lo}, {hi}]"
    if lo is not None:
        return f">= {lo}"
    if hi is not None:
        return f"<= {hi}"
    return ""
