"""YAML configuration: loading, ``key.path=value`` overrides, validation against a schema, saving.

Configs keep the original schema (top-level sections such as ``Decoder``, ``Training``, ``Data``) and
are handled as plain nested dicts. Validation fills documented defaults for optional keys, checks the type
of every value (pydantic, strict: ``n_epochs: abc`` or ``bs: 0`` are errors, not crashes later) and raises a
:class:`ConfigError` naming the file, the section, the key, the value and what is expected when a
required key is missing, a key is unknown (typically misspelt) or a value has the wrong type. A schema
entry is a default value (its type is the default's type; ``None``: any value), ``REQUIRED`` (any value),
a nested section (a dict) or a :class:`Key` with an explicit type. Keys starting with ``_`` are private
bookkeeping (e.g. ``_path``, the file the config was read from; ``_overrides``, the keys set on the
command line) and are neither validated nor saved.
"""
from __future__ import annotations

import copy
import difflib
import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Mapping, Optional, Union, get_args, get_origin

import yaml
from annotated_types import Ge, Gt, Le
from pydantic import BeforeValidator, TypeAdapter, ValidationError

from utils.atomic import atomic_write_text
from utils.errors import I2VError, MissingFileError

logger = logging.getLogger(__name__)

REQUIRED = object()  # marker: the key must be present
PLACEHOLDER = "INSERT_"  # the shipped configs' placeholders: INSERT_PATH_HERE, INSERT_NAME_HERE, ...


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-5`` (no dot) as a float, as the original configs write it."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text_or_stream: Any) -> Any:
    """Parse YAML with the float rule above."""
    return yaml.load(text_or_stream, Loader=_Loader)


class ConfigError(I2VError, ValueError):
    """A configuration file is missing a key, has an unknown key, or holds a wrong or inconsistent value."""


# ----------------------------------------------------------------------------- value types

def _number_to_text(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _text_to_number(value: Any) -> Any:
    """'1e-5' -> 1e-5: plain YAML 1.1 loaders read a float without a dot as a string (the original's OmegaConf,
    and :func:`yaml_load`, read it as a number)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


Number = Annotated[float, BeforeValidator(_text_to_number)]
PosInt = Annotated[int, Gt(0)]
NonNegInt = Annotated[int, Ge(0)]
PosFloat = Annotated[Number, Gt(0)]
NonNegFloat = Annotated[Number, Ge(0)]
Probability = Annotated[Number, Ge(0), Le(1)]
Text = Annotated[str, BeforeValidator(_number_to_text)]  # names and paths: ``savename: 2021`` is the text '2021'
WandbMode = Literal["online", "offline", "disabled"]

_DESCRIPTIONS = {
    PosInt: "a positive integer", NonNegInt: "a non-negative integer", PosFloat: "a positive number",
    NonNegFloat: "a non-negative number", Probability: "a number in [0, 1]", Text: "a string",
    bool: "true or false", int: "an integer", Number: "a number",
    str: "a string", list: "a list",
}


@dataclass(frozen=True)
class Described:
    """Metadata of an ``Annotated`` value type: how error messages describe it (e.g. "a known dataset name")."""

    text: str


@dataclass(frozen=True)
class Key:
    """A schema entry with an explicit value type (an annotation pydantic validates) and a default."""

    type: Any
    default: Any = REQUIRED


def req(tp: Any) -> Key:
    """A required key whose value must have type ``tp``."""
    return Key(tp)


def opt(tp: Any, default: Any = None) -> Key:
    """An optional key: a value of type ``tp`` or ``None`` (null), ``default`` when absent."""
    return Key(Optional[tp], default)


def describe(tp: Any) -> str:
    """What a value of type ``tp`` must look like, for error messages."""
    if tp in _DESCRIPTIONS:
        return _DESCRIPTIONS[tp]
    described = [m for m in getattr(tp, "__metadata__", ()) if isinstance(m, Described)]
    if described:
        return described[-1].text
    origin, args = get_origin(tp), get_args(tp)
    if origin is Union:
        rest = [a for a in args if a is not type(None)]
        return " or ".join(describe(a) for a in rest) + (" or null" if len(rest) < len(args) else "")
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is list:
        return f"a list, each item {describe(args[0])}" if args else "a list"
    return getattr(tp, "__name__", str(tp))


def _entry_type(entry: Any) -> Any:
    """The type a schema entry checks: a :class:`Key`'s, else the default's (``None``/``REQUIRED``: any)."""
    if isinstance(entry, Key):
        return entry.type
    if isinstance(entry, bool):
        return bool
    if isinstance(entry, (int, float)):
        return Number if isinstance(entry, float) else int
    if isinstance(entry, str):
        return Text
    if isinstance(entry, list):
        return list
    return None


@functools.lru_cache(maxsize=None)
def _adapter(tp: Any) -> TypeAdapter:
    return TypeAdapter(tp)


def _checked_value(value: Any, entry: Any, dotted: str, where: str, overrides: Mapping[str, str]) -> Any:
    """``value`` validated against the schema entry's type, strictly (``'4'`` is no integer, ``True`` no number;
    only a number key reads a numeric string such as ``'1e-5'``)."""
    tp = _entry_type(entry)
    if tp is None:
        return value
    try:
        return _adapter(tp).validate_python(value, strict=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        origin = f", set by the override '{overrides[dotted]}'" if dotted in overrides else ""
        detail = f" ({err['msg'].removeprefix('Value error, ')})" if err["type"] == "value_error" else ""
        item = f" (item {err['loc'][0]}: {err['input']!r})" if err["loc"] else ""
        raise ConfigError(f"{where}: key '{dotted}' = {value!r} ({type(value).__name__}{origin}): expected "
                          f"{describe(tp)}{item}{detail}") from None


def _where(path: str | Path | None) -> str:
    return f"config '{path}'" if path else "config"


def _suggest(key: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _required(entry: Any) -> bool:
    return entry is REQUIRED or (isinstance(entry, Key) and entry.default is REQUIRED)


def _validate_section(values: Any, schema: dict, section: str, path: str | Path | None,
                      overrides: Mapping[str, str]) -> dict:
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{_where(path)}: section '{section}' must be a mapping, got {type(values).__name__}")
    out = {}
    for key in values:
        if str(key).startswith("_"):
            out[key] = values[key]
        elif key not in schema:
            raise ConfigError(
                f"{_where(path)}: unknown key '{key}' in section '{section}'{_suggest(key, schema)}; "
                f"allowed keys: {sorted(schema)}"
            )
    for key, entry in schema.items():
        if isinstance(entry, dict):
            out[key] = _validate_section(values.get(key), entry, f"{section}.{key}", path, overrides)
        elif key in values:
            out[key] = _checked_value(values[key], entry, f"{section}.{key}", _where(path), overrides)
        elif _required(entry):
            raise ConfigError(f"{_where(path)}: missing required key '{key}' in section '{section}'")
        else:
            out[key] = copy.deepcopy(entry.default if isinstance(entry, Key) else entry)
    return out


def validate_config(config: Mapping, schema: Mapping, path: str | Path | None = None) -> dict:
    """Check ``config`` against ``schema`` (e.g. :data:`stage1_VAE.config.STAGE1_SCHEMA`) and return it with
    defaults filled and values of the declared types."""
    if not isinstance(schema, Mapping):
        raise TypeError(f"schema must be a mapping of sections (e.g. STAGE1_SCHEMA), got {type(schema).__name__}")
    path = path or config.get("_path")
    overrides = config.get("_overrides") or {}
    out = {}
    for section in config:
        if str(section).startswith("_"):
            out[section] = config[section]
        elif section not in schema:
            raise ConfigError(f"{_where(path)}: unknown section '{section}'{_suggest(section, schema)}")
    for section, sub in schema.items():
        if section not in config:
            if any(_required(v) for v in sub.values()):
                raise ConfigError(f"{_where(path)}: missing section '{section}'")
        out[section] = _validate_section(config.get(section), sub, section, path, overrides)
    return out


def _parse_value(text: str) -> Any:
    try:
        return yaml_load(text)
    except yaml.YAMLError:
        return text


def _sections_with(key: str, config: Mapping, schema: Mapping | None) -> list[str]:
    tree = schema if schema is not None else config
    return [s for s, sub in tree.items() if isinstance(sub, Mapping) and key in sub]


def apply_overrides(config: dict, overrides: Iterable[str], path: str | Path | None = None,
                    schema: Mapping | None = None) -> dict:
    """Apply ``Section.key=value`` strings (values parsed as YAML) to a copy of ``config``; the overridden
    keys are recorded under ``_overrides`` (so that errors name the override). A section the schema knows
    but the file lacks is created."""
    if schema is not None and not isinstance(schema, Mapping):
        raise TypeError(f"schema must be a mapping of sections (e.g. STAGE1_SCHEMA), got {type(schema).__name__}")
    config = copy.deepcopy(config)
    done: dict[str, str] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like Section.key=value")
        dotted, value = item.split("=", 1)
        keys = dotted.strip().split(".")
        if len(keys) < 2:
            hint = "".join(f"; did you mean '{s}.{keys[0]}={value}'?"
                           for s in _sections_with(keys[0], config, schema)[:1])
            raise ConfigError(f"{_where(path)}: override '{item}' names no section: write Section.key=value{hint}")
        node, known = config, schema
        for k in keys[:-1]:
            known = known.get(k) if isinstance(known, Mapping) else None
            if k not in node and isinstance(known, Mapping):
                node[k] = {}
            if k not in node or not isinstance(node[k], dict):
                raise ConfigError(f"{_where(path)}: override '{item}': no section '{k}'{_suggest(k, node)}")
            node = node[k]
        node[keys[-1]] = _parse_value(value)
        done[".".join(keys)] = item
    if done:
        config["_overrides"] = {**config.get("_overrides", {}), **done}
    return config


def load_config(path: str | Path, schema: Mapping | None = None, overrides: Iterable[str] = ()) -> dict:
    """Read a YAML config, apply overrides, validate it against ``schema`` (None: no validation); the file's
    path is kept under ``_path``."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"config file not found: {path.resolve()}")
    try:
        with path.open() as f:
            config = yaml_load(f) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{_where(path)}: not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:  # a binary or garbled file
        raise ConfigError(f"{_where(path)}: not valid YAML: not UTF-8 text ({exc})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{_where(path)}: top level must be a mapping of sections")
    config = apply_overrides(config, overrides, path, schema)
    config["_path"] = str(path.resolve())
    if schema is not None:
        config = validate_config(config, schema, path)
    return config


def placeholders(config: Mapping, prefix: str = "") -> dict[str, str]:
    """``{'Section.key': value}`` of every string value still holding a shipped placeholder (``INSERT_...``)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if str(key).startswith("_"):
            continue
        if isinstance(value, Mapping):
            out.update(placeholders(value, f"{prefix}{key}."))
        elif isinstance(value, str) and PLACEHOLDER in value:
            out[f"{prefix}{key}"] = value
    return out


def strip_private(config: Mapping) -> dict:
    """Drop the private ``_``-prefixed bookkeeping keys (recursively)."""
    return {
        k: strip_private(v) if isinstance(v, Mapping) else v
        for k, v in config.items()
        if not str(k).startswith("_")
    }


def save_config(config: Mapping, path: str | Path) -> None:
    """Write the (merged) config as YAML beside a run, atomically."""
    atomic_write_text(yaml.safe_dump(strip_private(config), sort_keys=False), Path(path))
