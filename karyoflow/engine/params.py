"""One merge for every option table: defaults, then config layers, unknown keys refused."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["merge_params"]


def merge_params(
    defaults: Mapping[str, Any],
    *layers: Mapping[str, Any] | None,
    what: str = "option",
    nested: Collection[str] | bool = (),
    replace: Collection[str] = (),
    open_keys: Collection[str] = (),
    skip_none: bool = False,
) -> dict[str, Any]:
    """A fresh copy of ``defaults`` with each layer merged over it, in order.

    Parameters
    ----------
    defaults : mapping
        The option table (``DEFAULT_*`` of a module); never changed.
    *layers : mapping or None
        Config sections, most general first (global params, per-model params, a grid
        point...). ``None`` layers are skipped.
    what : str
        Names the table in errors: ``unknown <what> 'key'``.
    nested : collection of str or bool
        Top-level keys whose mapping values are merged key by key (their unknown keys
        refused, named ``'key.sub'``) instead of replaced; ``True``: every mapping
        value, at every depth.
    replace : collection of str
        Dotted paths of mappings a layer replaces whole (free-form tables).
    open_keys : collection of str
        Dotted paths of mappings merged key by key that accept new keys.
    skip_none : bool
        Leave a default in place where a layer gives ``None``.

    Returns
    -------
    dict
        The merged options (deep copies: changing them never changes ``defaults``).

    Raises
    ------
    ValueError
        For the first unknown key, or a mapping option given something else.

    Examples
    --------
    >>> d = {"epochs": 10, "augment": {"hflip": 0.5, "vflip": 0.0}}
    >>> merge_params(d, {"epochs": 2}, {"augment": {"vflip": 0.5}}, nested=["augment"])
    {'epochs': 2, 'augment': {'hflip': 0.5, 'vflip': 0.5}}
    >>> merge_params(d, {"augment": {"flip": 1}}, what="training option", nested=True)
    Traceback (most recent call last):
    ...
    ValueError: unknown training option 'augment.flip'
    >>> merge_params(d, {"augment": {"flip": 1}}, nested=True, open_keys=["augment"])["augment"]
    {'hflip': 0.5, 'vflip': 0.0, 'flip': 1}
    """
    out = copy.deepcopy(dict(defaults))
    rules = (what, nested, set(replace), set(open_keys), skip_none)
    for layer in layers:
        _merge_into(out, layer or {}, (), rules)
    return out


def _merge_into(
    out: dict[str, Any], layer: Mapping[str, Any], path: tuple[str, ...], rules: tuple
) -> None:
    what, nested, replace, open_keys, skip_none = rules
    if not isinstance(layer, Mapping):
        raise ValueError(f"{what} {'.'.join(path)!r} must be a mapping")
    here = ".".join(path)
    for key, value in layer.items():
        dotted = ".".join((*path, str(key)))
        if key not in out and here not in open_keys:
            raise ValueError(f"unknown {what} {dotted!r}")
        if value is None and skip_none:
            continue
        deep = nested is True or (not path and key in (nested or ()))
        if dotted in replace:
            if not isinstance(value, Mapping):
                raise ValueError(f"{what} {dotted!r} must be a mapping")
            out[key] = copy.deepcopy(dict(value))
        elif deep and isinstance(out.get(key), Mapping):
            inner = dict(out[key])
            _merge_into(inner, value, (*path, str(key)), rules)
            out[key] = inner
        else:
            out[key] = copy.deepcopy(value)
