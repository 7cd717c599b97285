"""Experiment configuration: frozen dataclasses, a YAML file per experiment, ``--set`` overrides.

Defaults live in code (the dataclasses), a YAML file changes some of them, and ``--set
key.sub=value`` on the command line changes them again. The resolved result is a plain dict
that is saved with every run and inside every checkpoint, and loads back to the same object.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from bengaliai.core.errors import BengaliaiError

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A nested plain dict of a config dataclass (for YAML, JSON and checkpoints): tuples become lists."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build a config dataclass from a nested mapping, checking every key and value type."""
    if not isinstance(data, Mapping):
        raise BengaliaiError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise BengaliaiError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    values = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    return cls(**values)


def load_config(cls: type[T], path: Path | None = None, overrides: Iterable[str] = (), option: str = "--set") -> T:
    """Defaults of ``cls``, updated by the YAML file at ``path``, then by ``key=value`` overrides.

    ``option`` is the command-line option the overrides came from, named in their error messages.
    """
    data: dict[str, Any] = to_dict(cls())
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise BengaliaiError(f"config file not found: {path}") from None
        except yaml.YAMLError as error:
            raise BengaliaiError(f"{path}: not valid YAML {_yaml_problem(error)}") from None
        if not isinstance(loaded, dict):
            raise BengaliaiError(f"{path}: expected a mapping of settings at the top level")
        _merge(data, loaded, str(path))
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise BengaliaiError(f"{option} {override!r}: expected key=value, e.g. optim.lr=0.001")
        patch: dict[str, Any] = {}
        node = patch
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        try:
            node[leaf] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as error:
            raise BengaliaiError(
                f"{option} {override!r}: the value {text} is not valid YAML ({_yaml_problem(error, lines=False)}); "
                "a list is written [0.4, 1.0]"
            ) from None
        _merge(data, patch, f"{option} {override}")
    return from_dict(cls, data)


def _yaml_problem(error: yaml.YAMLError, lines: bool = True) -> str:
    """One line for a YAML parser error (PyYAML's own message spans several, with a caret drawing)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if mark is None:
        return problem
    return f"at line {mark.line + 1}, column {mark.column + 1}: {problem}" if lines else f"column {mark.column + 1}: {problem}"


def _merge(base: dict[str, Any], patch: Mapping[str, Any], where: str) -> None:
    for key, value in patch.items():
        if key not in base:
            raise BengaliaiError(f"{where}: unknown key {key!r}; known: {', '.join(base)}")
        if isinstance(base[key], dict) and isinstance(value, Mapping):
            _merge(base[key], value, where)
        else:
            base[key] = value


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check ``value`` against a type hint, converting the few safe cases (int -> float, list -> tuple)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except BengaliaiError as error:
                errors.append(str(error))
        raise BengaliaiError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits none of {hint}")
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise BengaliaiError(f"{where}: {value!r} is not one of {', '.join(map(repr, typing.get_args(hint)))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise BengaliaiError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_coerce(item, v, where) for v in value)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        # PyYAML reads 1e-3 (no dot) as a string: YAML 1.1 wants 1.0e-3, people write 1e-3.
        try:
            return float(value)
        except ValueError:
            raise BengaliaiError(f"{where}: expected a number, got {value!r}") from None
    if hint in (int, float) and isinstance(value, bool):
        raise BengaliaiError(f"{where}: expected a number, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise BengaliaiError(f"{where}: expected true or false, got {value!r}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise BengaliaiError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
