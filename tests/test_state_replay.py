"""Property: replaying the emitted operations rebuilds exactly the server's state.

The client (assistant-ui) mirrors a run's state by applying each ``update-state``
operation in order. Whatever sequence of writes a run makes, a client doing
just that must end up with the state the server holds.
"""

from __future__ import annotations

import copy
from typing import Any

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_stream import RunController, create_run
from trio_stream.chunks import StateOperation, UpdateStateChunk

scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def client_apply(state: Any, op: StateOperation) -> Any:
    """A client's replay of one operation: an independent reference implementation."""
    if not op["path"]:
        if op["type"] == "set":
            return copy.deepcopy(op["value"])
        return (state or "") + op["value"]
    state = copy.deepcopy(state)
    parent = state
    *head, last = op["path"]
    for key in head:
        parent = parent[int(key)] if isinstance(parent, list) else parent.setdefault(key, {})
    if isinstance(parent, list):
        index = int(last)
        if index == len(parent):
            parent.append(None)
        old = parent[index]
    else:
        old = parent.get(last)
    new = copy.deepcopy(op["value"]) if op["type"] == "set" else (old or "") + op["value"]
    if isinstance(parent, list):
        parent[int(last)] = new
    else:
        parent[last] = new
    return state


# One write: (kind, a choice used to pick a target, a value, a text delta).
writes = st.lists(
    st.tuples(
        st.sampled_from(["set", "append", "text", "root"]),
        st.integers(0, 50),
        values,
        st.text(max_size=4),
    ),
    max_size=25,
)


def containers(proxy: Any) -> list[Any]:
    """Every dict and list proxy below (and including) ``proxy``."""
    found = [proxy]
    children = proxy.values() if isinstance(proxy.value, dict) else list(proxy)
    for child in children:
        if hasattr(child, "value"):
            found.extend(containers(child))
    return found


def apply_write(controller: RunController, write: tuple[str, int, Any, str]) -> None:
    kind, choice, value, text = write
    root = controller.state
    if kind == "root" or not hasattr(root, "value"):
        controller.state = {"seed": value}
        return
    targets = containers(root)
    target = targets[choice % len(targets)]
    current = target.value
    if kind == "append" and isinstance(current, list):
        target.append(value)
    elif kind == "text":
        keys = list(current) if isinstance(current, dict) else list(range(len(current)))
        strings = [k for k in keys if isinstance(current[k], str)]
        if strings:
            key = strings[choice % len(strings)]
            target[key] += text
        elif isinstance(current, dict):
            target[f"t{choice}"] = text
    elif isinstance(current, dict):
        target[f"k{choice % 4}"] = value
    elif current:
        target[choice % len(current)] = value
    else:
        target.append(value)


@settings(max_examples=150, deadline=None)
@given(initial=values, writes=writes)
def test_replaying_the_operations_rebuilds_the_state(initial: Any, writes: list[Any]) -> None:
    final: list[Any] = []

    async def run(controller: RunController) -> None:
        for i, write in enumerate(writes):
            apply_write(controller, write)
            if i % 3 == 0:
                await trio.lowlevel.checkpoint()  # some batches go out separately
        state = controller.state
        final.append(state.value if hasattr(state, "value") else state)

    async def main() -> list[StateOperation]:
        async with create_run(run, state=initial) as chunks:
            return [
                op
                async for chunk in chunks
                if isinstance(chunk, UpdateStateChunk)
                for op in chunk.operations
            ]

    operations = trio.run(main)
    mirrored = copy.deepcopy(initial)
    for op in operations:
        mirrored = client_apply(mirrored, op)
    assert mirrored == final[0]
