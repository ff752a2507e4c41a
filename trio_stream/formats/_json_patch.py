"""A run's state operations as JSON Patch (RFC 6902), and JSON Patch back as operations.

AG-UI sends state changes as ``STATE_DELTA`` events whose ``delta`` is a JSON
Patch. A run's operations are ``set`` (replace the value at a path, creating
the dicts on the way) and ``append-text`` (extend the string at a path).
JSON Patch has neither of those exactly: ``add`` needs the parent to exist,
``replace`` needs the target to exist, and nothing appends to a string. So
both directions keep a copy of the state (a *mirror*):

- ``operation_patch`` turns one operation into one patch operation against
  the mirror: ``replace`` where the value exists, ``add`` where it is new, at
  the first missing or null node of the path (with the dicts below it built
  into the value), and for ``append-text`` the whole new string. An operation
  the state cannot take (a path through a string, text appended to a number)
  has no patch: the client could not apply it either.
- ``patch_operations`` applies one patch operation to the mirror, as the AG-UI
  client's ``fast-json-patch`` does (with its validation), and says what it
  did as operations: a ``replace`` that extends the non-empty string at its
  path is an ``append-text`` of the new part, as ``StateTree.assign`` reads
  ``state[key] += text``; anything else is a ``set``, of the path itself or,
  for ``remove``, ``move`` and an insertion into a list, of the container
  that changed.

The two directions agree: the encoder reads its own patch operation the way
the decoder will, and where that reading differs from the operation it
encoded (a ``set`` of a string that happens to extend the old one, an
``append-text`` to an empty string, a path whose dicts did not exist yet), it
adds a ``trioStream`` member naming the operation's type and path. RFC 6902
lets an operation carry members it does not define, and clients ignore them.

Both mirrors are copy-on-write, like ``StateTree``: a value already handed
out in a chunk is never modified afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .._state import _applied
from ..chunks import StateOperation

__all__ = [
    "MARK",
    "PatchError",
    "check_patch",
    "json_equal",
    "operation_patch",
    "parse_pointer",
    "patch_operations",
    "pointer",
]

MARK = "trioStream"
"""The member that names the operation a patch operation stands for, where needed."""

_POINTER = re.compile(r"(/([^/~]|~[01])*)*")


class PatchError(Exception):
    """A patch operation that does not apply to the state, as the client would refuse it."""


def pointer(path: Sequence[str]) -> str:
    """``path`` as a JSON Pointer (RFC 6901): ``~`` and ``/`` escaped."""
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in path)


def parse_pointer(text: str) -> list[str]:
    """The keys of a JSON Pointer; ``ValueError`` if ``text`` is not one."""
    if _POINTER.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not a JSON Pointer")
    return [key.replace("~1", "/").replace("~0", "~") for key in text.split("/")[1:]]


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values as JavaScript sees it: ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(json_equal(value, b[key]) for key, value in a.items())
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


# -- reading a patch operation as an operation ----------------------------------


def _read(kind: str, path: list[str], value: Any, current: Any) -> StateOperation:
    """What an ``add`` or ``replace`` of ``value`` over ``current`` at ``path`` does."""
    if (
        kind == "replace"
        and isinstance(value, str)
        and isinstance(current, str)
        and current
        and len(value) > len(current)
        and value.startswith(current)
    ):
        return {"type": "append-text", "path": path, "value": value[len(current) :]}
    return {"type": "set", "path": path, "value": value}


def _value_at(node: Any, path: Sequence[str]) -> Any:
    """The value at ``path``, or ``None`` where there is none."""
    for key in path:
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and key.isdecimal() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


# -- encoding ---------------------------------------------------------------------


def _landing(state: Any, path: list[str]) -> tuple[str, list[str]]:
    """Where an applicable operation at ``path`` lands in JSON Patch terms.

    The kind (``add`` or ``replace``) and the keys of the first node of the
    path that is missing or null, or of the path itself; list indices in
    their plain decimal spelling.
    """
    node, keys = state, list[str]()
    for key in path:
        if node is None:
            return "replace", keys  # null: replaced by the dicts that hold the value
        if isinstance(node, list):
            index = int(key)
            keys.append(str(index))
            if index == len(node):
                return "add", keys
            node = node[index]
        else:
            keys.append(key)
            if key not in node:
                return "add", keys
            node = node[key]
    return "replace", keys


def operation_patch(state: Any, op: StateOperation) -> tuple[dict[str, Any], Any] | None:
    """The patch operation for ``op`` against ``state``, and the state after it.

    ``None`` if the state cannot take ``op``.
    """
    try:
        after = _applied(state, op["path"], 0, op)
    except (TypeError, KeyError):
        return None
    kind, keys = _landing(state, op["path"])
    value = _value_at(after, keys)
    patch: dict[str, Any] = {"op": kind, "path": pointer(keys), "value": value}
    reading = _read(kind, keys, value, _value_at(state, keys))
    if reading["type"] != op["type"] or reading["path"] != op["path"]:
        patch[MARK] = {"type": op["type"], "path": op["path"]}
    return patch, after


# -- decoding ---------------------------------------------------------------------


def _index(key: str, size: int, *, adding: bool) -> int:
    """A list index as fast-json-patch reads it (``-`` is the end when adding)."""
    if adding and key == "-":
        return size
    if not key.isdigit() and key != "":
        raise PatchError(f"{key!r} is not an array index")
    index = int(key or "0")
    if index > size or (index == size and not adding):
        raise PatchError(f"index {index} is out of range")
    return index


def _get(state: Any, keys: list[str]) -> Any:
    node = state
    for key in keys:
        if isinstance(node, list):
            node = node[_index(key, len(node), adding=False)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            raise PatchError(f"{pointer(keys)} does not exist")
    return node


def _with(node: Any, keys: list[str], depth: int, change: Any) -> Any:
    """``node`` with ``change(parent, key)`` applied to the parent of ``keys``, copied."""
    key = keys[depth]
    if depth + 1 == len(keys):
        return change(node, key)
    if isinstance(node, list):
        items = list(node)
        index = _index(key, len(items), adding=False)
        items[index] = _with(items[index], keys, depth + 1, change)
        return items
    if isinstance(node, dict) and key in node:
        mapping = dict(node)
        mapping[key] = _with(node[key], keys, depth + 1, change)
        return mapping
    raise PatchError(f"{pointer(keys[: depth + 1])} does not exist")


def _add(state: Any, keys: list[str], value: Any) -> tuple[Any, list[StateOperation]]:
    if not keys:
        return value, [_read("add", [], value, None)]
    inserted: list[bool] = []

    def add(parent: Any, key: str) -> Any:
        if isinstance(parent, list):
            index = _index(key, len(parent), adding=True)
            inserted.append(index < len(parent))
            return [*parent[:index], value, *parent[index:]]
        if isinstance(parent, dict):
            return {**parent, key: value}
        raise PatchError(f"cannot add to {pointer(keys[:-1])}: it is not an object or array")

    after = _with(state, keys, 0, add)
    parent_keys = keys[:-1]
    if inserted and inserted[0]:  # later items moved: the list is what changed
        return after, [{"type": "set", "path": parent_keys, "value": _get(after, parent_keys)}]
    if isinstance(_get(state, parent_keys), list):
        keys = [*parent_keys, str(len(_get(state, parent_keys)))]  # ``-`` spelled out
    return after, [_read("add", keys, value, None)]


def _remove(state: Any, keys: list[str]) -> tuple[Any, list[StateOperation]]:
    if not keys:
        return None, [{"type": "set", "path": [], "value": None}]

    def remove(parent: Any, key: str) -> Any:
        if isinstance(parent, list):
            index = _index(key, len(parent), adding=False)
            return [*parent[:index], *parent[index + 1 :]]
        if isinstance(parent, dict) and key in parent:
            return {name: item for name, item in parent.items() if name != key}
        raise PatchError(f"{pointer(keys)} does not exist")

    after = _with(state, keys, 0, remove)
    return after, [{"type": "set", "path": keys[:-1], "value": _get(after, keys[:-1])}]


def _replace(state: Any, keys: list[str], value: Any) -> tuple[Any, list[StateOperation]]:
    current = _get(state, keys)
    if not keys:
        return value, [_read("replace", [], value, current)]

    def replace(parent: Any, key: str) -> Any:
        if isinstance(parent, list):
            items = list(parent)
            items[_index(key, len(items), adding=False)] = value
            return items
        return {**parent, key: value}

    return _with(state, keys, 0, replace), [_read("replace", keys, value, current)]


def _marked(patch: dict[str, Any], state: Any, keys: list[str]) -> StateOperation | None:
    """The operation a ``trioStream`` member names, if it names one that fits."""
    mark = patch.get(MARK)
    if not isinstance(mark, dict) or mark.get("type") not in ("set", "append-text"):
        return None
    path = mark.get("path")
    if not isinstance(path, list) or not all(isinstance(key, str) for key in path):
        return None
    if len(path) < len(keys):
        return None
    value = patch.get("value")
    for key in path[len(keys) :]:  # below the landing point, the value is dicts
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if mark["type"] == "set":
        return {"type": "set", "path": path, "value": value}
    # Below the landing point nothing was there; at it, the old value was.
    current = _value_at(state, keys) if len(path) == len(keys) else None
    if not isinstance(value, str):
        return None
    if isinstance(current, str):
        if not value.startswith(current):
            return None
        value = value[len(current) :]
    return {"type": "append-text", "path": path, "value": value}


_KINDS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def check_patch(patch: Any) -> str | None:
    """What is wrong with the shape of ``patch`` (a JSON Patch document), if anything.

    The schema's part: each operation an object with a known ``op``, a JSON
    Pointer ``path`` (and ``from``), and a ``value`` where one is needed.
    Whether it applies to a state is ``patch_operations``'s question.
    """
    if not isinstance(patch, list):
        return "a JSON Patch is an array"
    for index, operation in enumerate(patch):
        if not isinstance(operation, dict) or operation.get("op") not in _KINDS:
            return f"operation {index} is not an RFC 6902 operation"
        kind = operation["op"]
        pointers = [operation.get("path")]
        if kind in ("move", "copy"):
            pointers.append(operation.get("from"))
        if not all(isinstance(text, str) and _POINTER.fullmatch(text) for text in pointers):
            return f"operation {index} has a path that is not a JSON Pointer"
        if kind in ("add", "replace", "test") and "value" not in operation:
            return f"operation {index} ({kind}) has no value"
    return None


def _one(state: Any, patch: dict[str, Any]) -> tuple[Any, list[StateOperation]]:
    kind, keys = patch["op"], parse_pointer(patch["path"])
    value = patch.get("value")
    match kind:
        case "add" | "replace":
            marked = _marked(patch, state, keys)
            after, ops = (_add if kind == "add" else _replace)(state, keys, value)
            return after, ops if marked is None else [marked]
        case "remove":
            return _remove(state, keys)
        case "test":
            if not json_equal(_get(state, keys), value):
                raise PatchError(f"the test of {patch['path']} failed")
            return state, []
    origin = parse_pointer(patch["from"])
    if kind == "copy":
        return _add(state, keys, _get(state, origin))
    if origin == keys:
        _get(state, keys)
        return state, []
    if keys[: len(origin)] == origin:
        raise PatchError("a value cannot be moved into itself")
    moved = _get(state, origin)
    state, removed = _remove(state, origin)
    state, added = _add(state, keys, moved)
    return state, removed + added


def patch_operations(state: Any, patch: list[dict[str, Any]]) -> tuple[list[StateOperation], Any]:
    """What ``patch`` (checked by ``check_patch``) does to ``state``, as operations,
    and the state after it.

    All or nothing: ``PatchError`` if any operation does not apply, as the
    client then keeps its state as it was.
    """
    operations: list[StateOperation] = []
    for patch_operation in patch:
        state, done = _one(state, patch_operation)
        operations.extend(done)
    return operations, state
