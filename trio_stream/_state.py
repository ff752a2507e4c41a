"""A run's state, and the proxy that turns Python mutations into state operations.

The front-end mirrors the run's state by replaying ``update-state`` operations:
``set`` (replace the value at a path) and ``append-text`` (extend the string at
a path). ``StateTree`` holds the server's copy and applies operations to
it; ``StateProxy`` lets a run write ``controller.state["a"]["b"] = v`` or
``controller.state["log"] += "…"`` and emits the matching operations.

Updates are copy-on-write: applying an operation copies the containers along
its path and never mutates a container in place. Chunks already emitted hold
references into earlier versions of the state, and must not change after the
fact. The price is that one operation costs the size of the containers on its
path, so a list grown one item at a time costs quadratic time overall; keep
state lists modest, or set whole values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ._json import ensure_text, normalized
from .chunks import StateOperation

__all__ = ["StateProxy", "StateTree"]

Key = str | int


def _format_path(path: Sequence[str]) -> str:
    return "[" + ", ".join(path) + "]"


def _list_index(key: str, size: int, path: Sequence[str]) -> int:
    """The list index ``key`` names; ``size`` itself is allowed (it appends)."""
    try:
        index = int(key)
    except ValueError:
        raise KeyError(f"state path {_format_path(path)}: {key!r} is not a list index") from None
    if not 0 <= index <= size:
        raise KeyError(f"state path {_format_path(path)}: index {index} is out of range")
    return index


def _applied(node: Any, path: Sequence[str], depth: int, op: StateOperation) -> Any:
    """``node`` with ``op`` applied below it, copying every container on the way."""
    if depth == len(path):
        if op["type"] == "set":
            return op["value"]
        if node is None:
            return op["value"]
        if not isinstance(node, str):
            raise TypeError(
                f"append-text at state path {_format_path(path)}: "
                f"the value there is a {type(node).__name__}, not a str"
            )
        return node + op["value"]
    key = path[depth]
    if isinstance(node, list):
        index = _list_index(key, len(node), path[: depth + 1])
        items = list(node)
        if index == len(items):
            items.append(_applied(None, path, depth + 1, op))
        else:
            items[index] = _applied(items[index], path, depth + 1, op)
        return items
    if node is None:
        node = {}
    if not isinstance(node, dict):
        raise TypeError(
            f"state path {_format_path(path[: depth + 1])}: cannot index into a "
            f"{type(node).__name__}"
        )
    mapping = dict(node)
    mapping[key] = _applied(node.get(key), path, depth + 1, op)
    return mapping


def _value_at(node: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` below ``node``, or ``None`` if there is none."""
    for key in path:
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


class StateTree:
    """The server's copy of a run's state.

    ``value`` must already be in its JSON form (see ``normalized``);
    ``emit`` receives every batch of operations applied here.
    """

    __slots__ = ("_emit", "_takers", "_value")

    def __init__(self, value: Any, emit: Callable[[list[StateOperation]], None]) -> None:
        self._value = value
        self._emit = emit
        self._takers: list[Callable[[], None]] = []

    def attach(self, take_in: Callable[[], None]) -> None:
        """Call ``take_in`` before every write from now on.

        A flusher (``trio_stream._flusher``) takes in what worker threads
        wrote there, so that their writes apply before the one being made.
        """
        self._takers.append(take_in)

    def detach(self, take_in: Callable[[], None]) -> None:
        self._takers.remove(take_in)

    @property
    def value(self) -> Any:
        """The current state itself: treat it as read-only.

        Operations never mutate it (they build new containers), but it is
        shared with chunks already emitted, so neither may a caller.
        """
        return self._value

    def lookup(self, path: Sequence[str]) -> Any:
        """The value at ``path``; ``KeyError`` if there is none."""
        node = self._value
        for depth, key in enumerate(path):
            if isinstance(node, list):
                index = _list_index(key, len(node) - 1, path[: depth + 1])
                node = node[index]
            elif isinstance(node, dict) and key in node:
                node = node[key]
            else:
                raise KeyError(f"state path {_format_path(path[: depth + 1])} does not exist")
        return node

    def apply(self, operations: list[StateOperation]) -> None:
        """Apply ``operations`` in order, all or none, and emit them.

        A ``set`` value is replaced by its JSON form (see
        ``normalized``), so the server's copy holds
        exactly what the client receives and shares nothing with the caller.
        """
        for take_in in self._takers:
            take_in()
        value = self._value
        applied: list[StateOperation] = []
        for op in operations:
            path = op["path"]
            for key in path:
                ensure_text(key, f"the state path {_format_path(path)}")
            if op["type"] == "set":
                op = {
                    "type": "set",
                    "path": path,
                    "value": normalized(op["value"], f"update-state set at {_format_path(path)}"),
                }
            elif not isinstance(op["value"], str):
                raise TypeError(
                    f"append-text at state path {_format_path(path)} needs a str, "
                    f"not {type(op['value']).__name__}"
                )
            else:
                ensure_text(op["value"], f"append-text at state path {_format_path(path)}")
                if _value_at(value, path) is None:
                    # Nothing (or null) there: the server counts it as "", but
                    # clients refuse to append to what they do not have.
                    op = {"type": "set", "path": path, "value": op["value"]}
            value = _applied(value, path, 0, op)
            applied.append(op)
        self._emit(applied)
        self._value = value

    def assign(self, path: Sequence[str], value: Any) -> None:
        """Write ``value`` at ``path`` the way ``=`` on the state means it.

        A string that extends the current non-empty string there is sent as
        ``append-text`` with just the new part; anything else as ``set``.
        """
        if isinstance(value, StateProxy):
            if value._tree is self and value._path == list(path):
                return  # the write-back half of ``+=`` on a container
            raise TypeError("state values must be plain data; use proxy.value to copy one")
        try:
            current = self.lookup(path)
        except KeyError:
            current = None
        if (
            isinstance(current, str)
            and current
            and isinstance(value, str)
            and len(value) > len(current)
            and value.startswith(current)
        ):
            self.append_text(path, value[len(current) :])
        else:
            self.set(path, value)

    def set(self, path: Sequence[Key], value: Any) -> None:
        """Replace the value at ``path``."""
        self.apply([{"type": "set", "path": [str(k) for k in path], "value": value}])

    def append_text(self, path: Sequence[Key], text: str) -> None:
        """Append ``text`` to the string at ``path`` (a missing value counts as "")."""
        self.apply([{"type": "append-text", "path": [str(k) for k in path], "value": text}])


class StateProxy:
    """A live view of one container (dict or list) in a run's state.

    Reading an item gives a plain value for scalars and a proxy for
    containers. Writing an item emits a ``set`` operation, except that
    assigning a string that extends the current non-empty string emits
    ``append-text`` with just the new part, so ``state["log"] += "…"``
    streams a delta rather than the whole text. ``append``, ``extend`` and
    ``+=`` on a list emit one ``set`` per new index. Mutations that have no
    operation (``pop``, ``del``, ``insert``…) are not offered.
    """

    __slots__ = ("_path", "_tree")

    def __init__(self, tree: StateTree, path: Sequence[str] = ()) -> None:
        self._tree = tree
        self._path = list(path)

    @property
    def value(self) -> Any:
        """A plain copy of the value this proxy points at, free to modify."""
        return normalized(self._current(), "state")

    def _current(self) -> Any:
        return self._tree.lookup(self._path)

    def _wrap(self, name: str, child: Any) -> Any:
        if isinstance(child, dict | list):
            return StateProxy(self._tree, [*self._path, name])
        return child

    def _child_key(self, container: Any, key: Key, *, existing: bool) -> str:
        if isinstance(container, list):
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise TypeError(f"state list indices must be integers, not {key!r}") from None
            if index < 0:
                index += len(container)
            limit = len(container) - 1 if existing else len(container)
            if not 0 <= index <= limit:
                raise IndexError(f"state list index {key} is out of range")
            return str(index)
        if isinstance(container, dict):
            name = str(key)
            if existing and name not in container:
                raise KeyError(key)
            return name
        raise TypeError(
            f"state value at {_format_path(self._path)} is a "
            f"{type(container).__name__}, not a dict or list"
        )

    def __getitem__(self, key: Key) -> Any:
        container = self._current()
        name = self._child_key(container, key, existing=True)
        child = container[int(name)] if isinstance(container, list) else container[name]
        return self._wrap(name, child)

    def __setitem__(self, key: Key, value: Any) -> None:
        name = self._child_key(self._current(), key, existing=False)
        self._tree.assign([*self._path, name], value)

    def __iadd__(self, other: Iterable[Any]) -> StateProxy:
        self.extend(other)
        return self

    def append(self, item: Any) -> None:
        """Append ``item`` to the list this proxy points at."""
        self.extend([item])

    def extend(self, items: Iterable[Any]) -> None:
        """Append every item of ``items`` to the list this proxy points at."""
        container = self._current()
        if not isinstance(container, list):
            raise TypeError(
                f"state value at {_format_path(self._path)} is a "
                f"{type(container).__name__}, not a list"
            )
        if isinstance(items, StateProxy):
            items = items._current()  # ``apply`` copies each value it sets
        start = len(container)
        operations: list[StateOperation] = [
            {"type": "set", "path": [*self._path, str(start + i)], "value": item}
            for i, item in enumerate(items)
        ]
        if operations:
            self._tree.apply(operations)

    def get(self, key: Key, default: Any = None) -> Any:
        """``self[key]`` if it exists, else ``default``."""
        try:
            return self[key]
        except (KeyError, IndexError):
            return default
        except TypeError:
            if isinstance(self._current(), list):
                return default  # not an index: no such item
            raise

    def setdefault(self, key: Key, default: Any = None) -> Any:
        """``self[key]``, first setting it to ``default`` if it is missing."""
        if str(key) not in self._mapping():
            self[key] = default
        return self[key]

    def keys(self) -> list[str]:
        """The keys of the dict this proxy points at."""
        return list(self._mapping())

    def values(self) -> list[Any]:
        """The values of the dict: plain scalars, proxies for containers."""
        return [self._wrap(name, child) for name, child in self._mapping().items()]

    def items(self) -> list[tuple[str, Any]]:
        """The items of the dict: plain scalars, proxies for containers."""
        return [(name, self._wrap(name, child)) for name, child in self._mapping().items()]

    def _mapping(self) -> dict[str, Any]:
        container = self._current()
        if not isinstance(container, dict):
            raise TypeError(
                f"state value at {_format_path(self._path)} is a "
                f"{type(container).__name__}, not a dict"
            )
        return container

    def __len__(self) -> int:
        return len(self._current())

    def __iter__(self) -> Iterator[Any]:
        """A dict's keys, or a list's items (plain scalars, proxies for containers)."""
        container = self._current()
        if isinstance(container, dict):
            return iter(list(container))
        return iter([self._wrap(str(i), child) for i, child in enumerate(container)])

    def __contains__(self, item: object) -> bool:
        container = self._current()
        if isinstance(container, dict) and isinstance(item, int):
            item = str(item)
        return item in container

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StateProxy):
            other = other._current()
        return bool(self._current() == other)

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return bool(self._current())

    def __repr__(self) -> str:
        return f"StateProxy({self._current()!r})"
