"""The one way a config dataclass is built from a dict (JSON, a pipeline's custom_config).

A key that is not a field is an error that names the fields, not a silent default: a typo
in a config file (`"epoch": 3`) must not train with the default instead. JSON has no
tuples, so a list becomes a tuple where the field is annotated as one.

Example:
    >>> @dataclasses.dataclass(frozen=True)
    ... class Knobs:
    ...     epochs: int = 6
    ...     ks: tuple[int, ...] = (20,)
    >>> from_fields(Knobs, {"ks": [10, 20]})
    Knobs(epochs=6, ks=(10, 20))
    >>> from_fields(Knobs, {"epoch": 3})
    Traceback (most recent call last):
    ...
    ValueError: unknown Knobs field 'epoch'; known: epochs, ks
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def check_fields(cls: type, fields: Mapping[str, Any], allowed: tuple[str, ...] = ()) -> None:
    """Raises ValueError for a key of `fields` that is neither a field of `cls` nor in `allowed`."""
    names = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(fields) - set(names) - set(allowed))
    if unknown:
        label = "fields" if len(unknown) > 1 else "field"
        raise ValueError(
            f"unknown {cls.__name__} {label} {', '.join(map(repr, unknown))}; known: {', '.join(names + list(allowed))}"
        )


def from_fields(cls: type[T], fields: Mapping[str, Any] | None) -> T:
    """`cls(**fields)`, refusing unknown keys, with JSON lists made tuples where the field is a tuple."""
    fields = dict(fields or {})
    check_fields(cls, fields)
    types = {field.name: str(field.type) for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name, value in fields.items():
        if isinstance(value, list) and types[name].startswith(("tuple", "Tuple")):
            fields[name] = tuple(value)
    return cls(**fields)
