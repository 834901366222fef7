"""The command line's overrides checked against the config schema before Hydra composes.

Hydra alone lets ``+actors.num_actor=3`` (a misspelt key, with Hydra's own advice to add the
``+``) through to a run that ignores it, and answers a value of the wrong type with a
multi-line block. Here every override is parsed with Hydra's own grammar and checked first: an
unknown key fails whether or not it has a ``+`` and names the nearest valid key, a value of the
wrong type and an unknown group option fail in the one-line form of the range errors.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from apex_dqn.config import Config, ConfigError, section_type

# Keys under these are passed through: Hydra's own, and the free-form dicts of the schema.
HYDRA_PREFIXES = ("hydra.", "hydra/")
_OPEN = object()  # a field whose keys are the user's (dict fields): anything below it goes


def schema(cls: type = Config, prefix: str = "") -> dict[str, Any]:
    """Every key of the config schema with its type hint (sections included, as dataclasses)."""
    keys: dict[str, Any] = {}
    hints = get_type_hints(cls)
    for f in fields(cls):
        key, hint = f"{prefix}{f.name}", hints[f.name]
        keys[key] = hint
        section = section_type(hint)
        if section is not None:
            keys.update(schema(section, f"{key}."))
        elif get_origin(hint) is dict:
            keys[f"{key}.*"] = _OPEN
    return keys


def config_groups(conf_dir: str | Path) -> dict[str, list[str]]:
    """The config groups of ``conf_dir`` (its folders) and their options (the YAML files)."""
    root = Path(conf_dir)
    return {
        d.name: sorted(p.stem for p in d.glob("*.yaml"))
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(("_", "."))
    }


def check_overrides(overrides: Sequence[str], groups: Mapping[str, Sequence[str]]) -> None:
    """Raise ConfigError for the first override that names no key or group of the schema, an
    unknown option of a group, or a value of the wrong type."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    keys = schema()
    parser = OverridesParser.create()
    for text in overrides:
        try:
            (override,) = parser.parse_overrides([text])
        except HydraException as exc:
            raise ConfigError(f"cannot parse {text!r}: {_first_line(str(exc))}") from None
        key = override.key_or_group
        if key.startswith(HYDRA_PREFIXES) or key == "hydra":
            continue
        if key in groups:
            _check_group(key, _values(override), groups[key])
        elif key in keys:
            if not override.is_delete():
                _check_type(key, keys[key], _values(override))
        elif not _open_key(key, keys):
            raise ConfigError(_unknown(key, [*keys, *groups]))


def _open_key(key: str, keys: Mapping[str, Any]) -> bool:
    """Whether ``key`` lies under a dict field (``learner.resources.gpu_node``)."""
    parts = key.split(".")
    return any(keys.get(".".join(parts[:i]) + ".*") is _OPEN for i in range(1, len(parts)))


def _unknown(key: str, known: Iterable[str]) -> str:
    names = [k for k in known if not k.endswith(".*")]
    near = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if not near:  # a misspelt section: compare the last part with the keys' last parts
        last = key.rsplit(".", 1)[-1]
        tails = {k.rsplit(".", 1)[-1]: k for k in names}
        near = [tails[t] for t in difflib.get_close_matches(last, list(tails), n=1, cutoff=0.8)]
    hint = f"; did you mean {near[0]}?" if near else ""
    return (
        f"unknown key {key}{hint} (apex-dqn --help: the sections, and where each key is documented)"
    )


def _values(override: Any) -> list[Any]:
    """The value of an override, or each value of a sweep over a list of choices or a range."""
    if not override.is_sweep_override():
        return [override.value()]
    try:
        return list(override.sweep_iterator())
    except Exception:  # an interval sweep (a sweeper plugin's): its bounds are numbers
        return []


def _check_group(group: str, values: list[Any], options: Sequence[str]) -> None:
    for value in values:
        chosen = value if isinstance(value, list) else [value]
        for option in chosen:
            if option is not None and str(option) not in options:
                raise ConfigError(f"{group} must be one of {', '.join(options)}; got {option!r}")


def _check_type(key: str, hint: Any, values: list[Any]) -> None:
    for value in values:
        if isinstance(value, str) and value.startswith("${"):
            continue  # an interpolation: OmegaConf resolves and the schema checks it
        expected = _mismatch(hint, value)
        if expected is not None:
            raise ConfigError(f"{key} must be {expected}, got {value!r}")


def _mismatch(hint: Any, value: Any) -> str | None:
    """None if ``value`` fits ``hint``, else what was expected (for the message)."""
    if hint is Any:
        return None
    if section_type(hint) is not None:
        return None if isinstance(value, dict) or value is None else "a section (key=value)"
    origin, args = get_origin(hint), get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        misses = [_mismatch(a, value) for a in inner]
        return None if None in misses else " or ".join(m for m in misses if m) + " or null"
    if origin is list:
        if not isinstance(value, list):
            return "a list such as [64,64]"
        misses = [_mismatch(args[0], v) for v in value] if args else []
        return next((f"a list whose items are each {m}" for m in misses if m), None)
    if origin is dict:
        return None if isinstance(value, dict) else "a dict such as {key:value}"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "a number"
    if hint is str:
        return None if isinstance(value, (str, int, float)) else "a string"
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
