"""Edits of a parsed config by dotted path, as the config tests make them."""

from __future__ import annotations

from typing import Any


class _Delete:
    def __repr__(self) -> str:
        return "<deleted>"


DELETE = _Delete()
"""The value that deletes the key at the path instead of setting it."""


def set_path(data: dict, path: str, value: Any) -> None:
    """Set (or, with DELETE, delete) the value at dotted `path` of `data`, list indexes as numbers."""
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = data
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
