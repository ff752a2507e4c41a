"""The run's state: ``controller.state``, the proxy it returns, and the operations emitted.

The front-end mirrors a run's state by replaying ``update-state`` operations:
``set`` replaces the value at a path, ``append-text`` extends the string at a
path. Path segments are always strings, list indexes included. State writes
are synchronous; the operations of a burst of writes travel as one chunk.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import collect
from trio_stream import (
    RunCallback,
    RunController,
    SerializationError,
    StateProxy,
    StreamClosedError,
    create_run,
)
from trio_stream.chunks import (
    AppendTextOperation,
    Chunk,
    ErrorChunk,
    SetOperation,
    StateOperation,
    TextDeltaChunk,
    UpdateStateChunk,
)

pytestmark = pytest.mark.anyio


def set_op(path: list[str], value: Any) -> SetOperation:
    return {"type": "set", "path": path, "value": value}


def append_op(path: list[str], value: str) -> AppendTextOperation:
    return {"type": "append-text", "path": path, "value": value}


def update(*operations: StateOperation) -> UpdateStateChunk:
    return UpdateStateChunk(operations=operations)


async def collect_into(received: list[Chunk], callback: RunCallback, **kwargs: Any) -> None:
    """Like ``collect``, but keeps the chunks when the run raises."""
    async with create_run(callback, **kwargs) as chunks:
        async for chunk in chunks:
            received.append(chunk)


# -- the root: controller.state -------------------------------------------


async def test_state_is_none_when_the_run_has_none() -> None:
    seen: list[Any] = []

    async def callback(controller: RunController) -> None:
        seen.append(controller.state)

    assert await collect(callback) == []
    assert seen == [None]


async def test_setting_the_whole_state_emits_a_set_at_the_root() -> None:
    async def callback(controller: RunController) -> None:
        controller.state = {"a": 1, "b": [1, 2]}
        assert isinstance(controller.state, StateProxy)
        assert controller.state == {"a": 1, "b": [1, 2]}
        assert controller.state.value == {"a": 1, "b": [1, 2]}

    assert await collect(callback) == [update(set_op([], {"a": 1, "b": [1, 2]}))]


async def test_initial_state_is_readable_and_emits_nothing() -> None:
    async def callback(controller: RunController) -> None:
        assert isinstance(controller.state, StateProxy)
        assert controller.state == {"a": {"b": 1}}

    assert await collect(callback, state={"a": {"b": 1}}) == []


async def test_replacing_an_existing_state_sets_the_root_again() -> None:
    async def callback(controller: RunController) -> None:
        controller.state = {"new": True}
        assert controller.state == {"new": True}

    chunks = await collect(callback, state={"old": 1})
    assert chunks == [update(set_op([], {"new": True}))]


async def test_scalar_root_state_is_read_as_a_plain_value() -> None:
    async def callback(controller: RunController) -> None:
        assert controller.state == 3
        assert not isinstance(controller.state, StateProxy)
        controller.state = None
        assert controller.state is None

    assert await collect(callback, state=3) == [update(set_op([], None))]


async def test_root_string_grows_with_append_text() -> None:
    async def callback(controller: RunController) -> None:
        controller.state = "abc"
        controller.state += "def"
        assert controller.state == "abcdef"
        assert not isinstance(controller.state, StateProxy)
        controller.state = "xyz"  # does not extend "abcdef": a set

    assert await collect(callback) == [
        update(set_op([], "abc"), append_op([], "def"), set_op([], "xyz")),
    ]


async def test_root_empty_string_grows_with_a_set() -> None:
    async def callback(controller: RunController) -> None:
        controller.state += "abc"

    assert await collect(callback, state="") == [update(set_op([], "abc"))]


async def test_root_list_grows_one_set_per_new_index() -> None:
    async def callback(controller: RunController) -> None:
        controller.state = []
        controller.state += ["a", "b"]
        controller.state.append("c")
        assert controller.state == ["a", "b", "c"]

    assert await collect(callback) == [
        update(
            set_op([], []),
            set_op(["0"], "a"),
            set_op(["1"], "b"),
            set_op(["2"], "c"),
        ),
    ]


# -- nested reads and writes ---------------------------------------------


async def test_nested_item_assignment_emits_a_set_at_its_path() -> None:
    async def callback(controller: RunController) -> None:
        controller.state["a"]["b"] = "v"
        controller.state["a"]["c"] = {"d": [1]}
        controller.state["top"] = 1
        assert controller.state == {"a": {"b": "v", "c": {"d": [1]}}, "top": 1}

    assert await collect(callback, state={"a": {}}) == [
        update(
            set_op(["a", "b"], "v"),
            set_op(["a", "c"], {"d": [1]}),
            set_op(["top"], 1),
        ),
    ]


async def test_reading_a_scalar_gives_the_value_and_a_container_gives_a_proxy() -> None:
    async def callback(controller: RunController) -> None:
        state = controller.state
        for scalar, expected in (("n", 1), ("s", "x"), ("f", 1.5), ("b", True), ("z", None)):
            assert state[scalar] == expected
            assert not isinstance(state[scalar], StateProxy)
        assert isinstance(state["d"], StateProxy)
        assert isinstance(state["l"], StateProxy)
        assert isinstance(state["l"][0], StateProxy)
        assert state["d"] == {"k": "v"}
        assert state["l"] == [{"x": 1}]
        assert state["l"][0]["x"] == 1

    initial = {"n": 1, "s": "x", "f": 1.5, "b": True, "z": None, "d": {"k": "v"}, "l": [{"x": 1}]}
    assert await collect(callback, state=initial) == []


async def test_a_proxy_is_a_live_view_of_its_path() -> None:
    async def callback(controller: RunController) -> None:
        inner = controller.state["a"]
        controller.state["a"]["b"] = 2
        assert inner == {"b": 2}
        assert inner["b"] == 2
        controller.state["a"] = {"c": 3}
        assert inner == {"c": 3}

    await collect(callback, state={"a": {"b": 1}})


async def test_proxy_value_is_a_plain_snapshot() -> None:
    async def callback(controller: RunController) -> None:
        before = controller.state.value
        assert type(before) is dict
        controller.state["a"]["b"] = 2
        assert before == {"a": {"b": 1}}
        assert controller.state.value == {"a": {"b": 2}}
        assert type(controller.state["a"].value) is dict

    await collect(callback, state={"a": {"b": 1}})


async def test_int_keys_on_a_dict_become_string_path_segments() -> None:
    async def callback(controller: RunController) -> None:
        controller.state[1] = "one"
        assert controller.state["1"] == "one"
        assert controller.state[1] == "one"

    assert await collect(callback, state={}) == [update(set_op(["1"], "one"))]


# -- text: += and append_state_text ----------------------------------------


async def test_iadd_on_a_non_empty_string_emits_only_the_delta() -> None:
    async def callback(controller: RunController) -> None:
        controller.state["text"] += "more"
        controller.state["text"] += " and more"
        assert controller.state["text"] == "some more and more"

    assert await collect(callback, state={"text": "some "}) == [
        update(append_op(["text"], "more"), append_op(["text"], " and more")),
    ]


async def test_iadd_on_an_empty_string_emits_a_set() -> None:
    async def callback(controller: RunController) -> None:
        controller.state["text"] += "first"
        controller.state["text"] += "second"

    assert await collect(callback, state={"text": ""}) == [
        update(set_op(["text"], "first"), append_op(["text"], "second")),
    ]


async def test_assigning_a_string_that_extends_the_current_one_streams_the_delta() -> None:
    async def callback(controller: RunController) -> None:
        controller.state["text"] = "abcd"  # extends "abc"
        controller.state["text"] = "xyz"  # does not
        controller.state["text"] = "xy"  # shorter

    assert await collect(callback, state={"text": "abc"}) == [
        update(append_op(["text"], "d"), set_op(["text"], "xyz"), set_op(["text"], "xy")),
    ]


async def test_assigning_the_same_string_or_a_non_string_sets_it() -> None:
    async def callback(controller: RunController) -> None:
        controller.state["text"] = "hello"  # unchanged: no delta to stream
        controller.state["text"] = 42

    assert await collect(callback, state={"text": "hello"}) == [
        update(set_op(["text"], "hello"), set_op(["text"], 42)),
    ]


async def test_iadd_on_a_string_inside_a_list() -> None:
    async def callback(controller: RunController) -> None:
        controller.state["log"][-1] += "!"
        assert controller.state["log"] == ["a", "b!"]

    assert await collect(callback, state={"log": ["a", "b"]}) == [
        update(append_op(["log", "1"], "!")),
    ]


async def test_append_state_text_emits_append_text() -> None:
    async def callback(controller: RunController) -> None:
        controller.append_state_text(["msgs", 0, "text"], " world")
        controller.append_state_text(("title",), "x")
        assert controller.state == {"msgs": [{"text": "hello world"}], "title": "x"}

    chunks = await collect(callback, state={"msgs": [{"text": "hello"}], "title": ""})
    assert chunks == [
        update(append_op(["msgs", "0", "text"], " world"), append_op(["title"], "x")),
    ]


async def test_append_state_text_on_a_missing_key_sets_it() -> None:
    # The server could count a missing value as "", but assistant-ui's clients
    # refuse to append to a path they do not have: the first piece is a set.
    async def callback(controller: RunController) -> None:
        controller.append_state_text(["new"], "abc")
        controller.append_state_text(["new"], "def")
        assert controller.state["new"] == "abcdef"

    assert await collect(callback, state={}) == [
        update(set_op(["new"], "abc"), append_op(["new"], "def")),
    ]


async def test_append_state_text_creates_missing_parent_objects() -> None:
    async def callback(controller: RunController) -> None:
        controller.append_state_text(["a", "b"], "x")
        assert controller.state == {"a": {"b": "x"}}

    assert await collect(callback, state={}) == [update(set_op(["a", "b"], "x"))]


async def test_append_state_text_at_the_root() -> None:
    async def callback(controller: RunController) -> None:
        controller.append_state_text([], "abc")
        assert controller.state == "abc"

    assert await collect(callback) == [update(set_op([], "abc"))]


# -- lists -----------------------------------------------------------------


async def test_list_append_extend_and_iadd_emit_one_set_per_new_index() -> None:
    async def callback(controller: RunController) -> None:
        items = controller.state["items"]
        items.append("a")
        items.extend(["b", "c"])
        controller.state["items"] += ["d", {"e": 1}]
        assert controller.state["items"] == ["a", "b", "c", "d", {"e": 1}]

    assert await collect(callback, state={"items": []}) == [
        update(
            set_op(["items", "0"], "a"),
            set_op(["items", "1"], "b"),
            set_op(["items", "2"], "c"),
            set_op(["items", "3"], "d"),
            set_op(["items", "4"], {"e": 1}),
        ),
    ]


async def test_extending_with_nothing_emits_nothing() -> None:
    async def callback(controller: RunController) -> None:
        controller.state["items"].extend([])
        controller.state["items"] += []

    assert await collect(callback, state={"items": [1]}) == []


async def test_extend_accepts_any_iterable_and_a_proxy() -> None:
    async def callback(controller: RunController) -> None:
        controller.state["items"].extend(str(i) for i in range(2))
        controller.state["copy"].extend(controller.state["items"])
        controller.state["items"] += controller.state["items"]
        assert controller.state == {"items": ["0", "1", "0", "1"], "copy": ["0", "1"]}

    assert await collect(callback, state={"items": [], "copy": []}) == [
        update(
            set_op(["items", "0"], "0"),
            set_op(["items", "1"], "1"),
            set_op(["copy", "0"], "0"),
            set_op(["copy", "1"], "1"),
            set_op(["items", "2"], "0"),
            set_op(["items", "3"], "1"),
        ),
    ]


async def test_list_item_assignment_and_negative_indexes() -> None:
    async def callback(controller: RunController) -> None:
        items = controller.state["items"]
        assert items[-1] == "c"
        assert items[-3] == "a"
        items[-1] = "C"
        items[0] = "A"
        items[3] = "d"  # the index one past the end appends
        assert items == ["A", "b", "C", "d"]

    assert await collect(callback, state={"items": ["a", "b", "c"]}) == [
        update(
            set_op(["items", "2"], "C"),
            set_op(["items", "0"], "A"),
            set_op(["items", "3"], "d"),
        ),
    ]


async def test_list_index_out_of_range_raises_index_error() -> None:
    async def callback(controller: RunController) -> None:
        items = controller.state["items"]
        with pytest.raises(IndexError):
            items[3]
        with pytest.raises(IndexError):
            items[-4]
        with pytest.raises(IndexError):
            items[4] = "x"
        with pytest.raises(IndexError):
            items[-4] = "x"
        with pytest.raises(IndexError):
            controller.state["empty"][0]
        with pytest.raises(IndexError):
            controller.state["empty"][-1]

    assert await collect(callback, state={"items": [1, 2, 3], "empty": []}) == []


async def test_list_only_methods_on_a_dict_raise_type_error() -> None:
    async def callback(controller: RunController) -> None:
        with pytest.raises(TypeError, match="not a list"):
            controller.state.append(1)
        with pytest.raises(TypeError, match="not a list"):
            controller.state["d"].extend([1])
        with pytest.raises(TypeError, match="not a list"):
            controller.state["d"] += [1]

    assert await collect(callback, state={"d": {}}) == []


async def test_list_mutations_with_no_operation_are_not_offered() -> None:
    """``pop``, ``remove``, ``insert``, ``clear`` and ``del`` would change indexes the client
    holds, and no operation says so: set the whole list instead."""

    async def callback(controller: RunController) -> None:
        items = controller.state["items"]
        for name in ("pop", "remove", "insert", "clear", "sort", "reverse"):
            assert not hasattr(items, name)
        with pytest.raises(AttributeError):
            del items[0]
        with pytest.raises(TypeError, match="state list indices must be integers, not 'x'"):
            items["x"] = 1
        assert items["1"] == "b"  # an index as text is still an index
        controller.state["items"] = ["b"]

    assert await collect(callback, state={"items": ["a", "b"]}) == [
        update(set_op(["items"], ["b"]))
    ]


# -- the mapping and sequence protocol -----------------------------------


async def test_missing_key_raises_key_error() -> None:
    async def callback(controller: RunController) -> None:
        with pytest.raises(KeyError):
            controller.state["missing"]
        with pytest.raises(KeyError):
            controller.state["a"]["missing"]

    assert await collect(callback, state={"a": {}}) == []


async def test_get() -> None:
    async def callback(controller: RunController) -> None:
        state = controller.state
        assert state.get("n") == 1
        assert state.get("missing") is None
        assert state.get("missing", "default") == "default"
        assert isinstance(state.get("l"), StateProxy)
        assert state.get("l") == [10, 20]
        assert state["l"].get(1) == 20
        assert state["l"].get(-1) == 20
        assert state["l"].get(2, "default") == "default"

    assert await collect(callback, state={"n": 1, "l": [10, 20]}) == []


async def test_setdefault_sets_only_a_missing_key() -> None:
    async def callback(controller: RunController) -> None:
        state = controller.state
        assert state.setdefault("n", 2) == 1
        assert state.setdefault("m", 2) == 2
        tags = state.setdefault("tags", [])
        assert isinstance(tags, StateProxy)
        tags.append("x")
        assert state.setdefault("tags", ["ignored"]) == ["x"]
        assert state == {"n": 1, "m": 2, "tags": ["x"]}

    assert await collect(callback, state={"n": 1}) == [
        update(set_op(["m"], 2), set_op(["tags"], []), set_op(["tags", "0"], "x")),
    ]


async def test_keys_values_items_len_in_and_iteration_of_a_dict() -> None:
    async def callback(controller: RunController) -> None:
        state = controller.state
        assert list(state.keys()) == ["a", "b"]
        assert list(state.values()) == [1, [2]]
        assert list(state.items()) == [("a", 1), ("b", [2])]
        assert len(state) == 2
        assert "a" in state
        assert "c" not in state
        assert list(state) == ["a", "b"]
        assert bool(state)

    assert await collect(callback, state={"a": 1, "b": [2]}) == []


async def test_len_in_and_iteration_of_a_list() -> None:
    async def callback(controller: RunController) -> None:
        items = controller.state["items"]
        assert len(items) == 3
        assert "b" in items
        assert "z" not in items
        assert list(items) == ["a", "b", "c"]
        assert items.value == ["a", "b", "c"]
        assert not controller.state["empty"]
        assert len(controller.state["empty"]) == 0

    assert await collect(callback, state={"items": ["a", "b", "c"], "empty": []}) == []


async def test_mapping_methods_on_a_list_raise_type_error() -> None:
    async def callback(controller: RunController) -> None:
        items = controller.state["items"]
        with pytest.raises(TypeError, match="not a dict"):
            items.keys()
        with pytest.raises(TypeError, match="not a dict"):
            items.setdefault("0", 1)

    assert await collect(callback, state={"items": []}) == []


async def test_proxies_compare_by_value_and_are_unhashable() -> None:
    async def callback(controller: RunController) -> None:
        state = controller.state
        assert state["a"] == state["b"]
        assert state["a"] != state["c"]
        assert state["a"] == {"x": 1}
        assert state["a"] != {"x": 2}
        assert repr(state["a"]) == "StateProxy({'x': 1})"
        with pytest.raises(TypeError):
            hash(state["a"])

    await collect(callback, state={"a": {"x": 1}, "b": {"x": 1}, "c": {"x": 2}})


# -- batching and order ----------------------------------------------------


async def test_writes_without_an_await_arrive_as_one_chunk_in_order() -> None:
    async def callback(controller: RunController) -> None:
        controller.state = {"a": {}, "log": "x", "items": []}
        controller.state["a"]["b"] = 1
        controller.state["log"] += "y"
        controller.state["items"].append(1)
        controller.append_state_text(["log"], "z")

    assert await collect(callback) == [
        update(
            set_op([], {"a": {}, "log": "x", "items": []}),
            set_op(["a", "b"], 1),
            append_op(["log"], "y"),
            set_op(["items", "0"], 1),
            append_op(["log"], "z"),
        ),
    ]


async def test_other_chunks_keep_their_place_between_state_chunks() -> None:
    async def callback(controller: RunController) -> None:
        controller.state["a"] = 1
        controller.state["b"] = 2
        controller.append_text("hello")
        controller.state["a"] = 3
        controller.append_text(" world")
        controller.append_text("!")
        controller.state["b"] = 4

    assert await collect(callback, state={}) == [
        update(set_op(["a"], 1), set_op(["b"], 2)),
        TextDeltaChunk("hello"),
        update(set_op(["a"], 3)),
        TextDeltaChunk(" world"),
        TextDeltaChunk("!"),
        update(set_op(["b"], 4)),
    ]


async def test_flush_emits_pending_operations_as_their_own_chunk() -> None:
    async def callback(controller: RunController) -> None:
        controller.flush()  # nothing pending: no empty chunk
        controller.state["a"] = 1
        controller.state["b"] = 2
        controller.flush()
        controller.flush()
        controller.state["a"] = 3

    assert await collect(callback, state={}) == [
        update(set_op(["a"], 1), set_op(["b"], 2)),
        update(set_op(["a"], 3)),
    ]


async def test_controllers_of_a_run_share_its_state() -> None:
    async def callback(controller: RunController) -> None:
        tagged = controller.with_parent_id("p1")
        tagged.state["a"] = 1
        controller.state["b"] = 2
        assert tagged.state == {"a": 1, "b": 2}
        async with controller.open_substream("p2") as sub:
            sub.state["c"] = 3
            assert controller.state == {"a": 1, "b": 2, "c": 3}

    chunks = await collect(callback, state={})
    updates = [chunk for chunk in chunks if isinstance(chunk, UpdateStateChunk)]
    assert updates == chunks
    operations = [op for chunk in updates for op in chunk.operations]
    assert operations == [set_op(["a"], 1), set_op(["b"], 2), set_op(["c"], 3)]


# -- copy-on-write ---------------------------------------------------------


async def test_initial_state_is_never_mutated() -> None:
    initial = {"a": {"b": [1, {"c": "x"}]}, "log": "start", "items": []}
    pristine = copy.deepcopy(initial)

    async def callback(controller: RunController) -> None:
        controller.state["a"]["b"][1]["c"] += "y"
        controller.state["a"]["b"].append(2)
        controller.state["a"]["new"] = True
        controller.state["log"] += " more"
        controller.state["items"] += [1, 2]
        controller.append_state_text(["a", "b", 1, "d"], "z")

    await collect(callback, state=initial)
    assert initial == pristine


async def test_values_in_emitted_chunks_are_never_mutated() -> None:
    async def callback(controller: RunController) -> None:
        controller.state["cfg"] = {"x": [1], "y": "a", "z": {"w": 0}}
        controller.flush()
        controller.state["cfg"]["x"].append(2)
        controller.state["cfg"]["y"] += "b"
        controller.state["cfg"]["z"]["w"] = 1
        controller.state["cfg"]["new"] = None

    chunks = await collect(callback, state={})
    assert chunks == [
        update(set_op(["cfg"], {"x": [1], "y": "a", "z": {"w": 0}})),
        update(
            set_op(["cfg", "x", "1"], 2),
            append_op(["cfg", "y"], "b"),
            set_op(["cfg", "z", "w"], 1),
            set_op(["cfg", "new"], None),
        ),
    ]


async def test_a_whole_state_set_is_not_mutated_by_later_writes() -> None:
    async def callback(controller: RunController) -> None:
        controller.state = {"items": ["a"]}
        controller.state["items"].append("b")
        controller.state["items"][0] += "!"

    assert await collect(callback) == [
        update(
            set_op([], {"items": ["a"]}),
            set_op(["items", "1"], "b"),
            append_op(["items", "0"], "!"),
        ),
    ]


async def test_values_read_out_of_the_state_cannot_change_it() -> None:
    async def callback(controller: RunController) -> None:
        mine = {"rows": [{"n": 1}]}
        controller.state = mine
        controller.flush()
        mine["rows"][0]["n"] = 99  # the caller's own object is not the state
        for row in controller.state["rows"]:
            assert isinstance(row, StateProxy)  # iteration hands out proxies
        copied = controller.state.value
        copied["rows"].append("local only")
        for rows in controller.state.values():
            rows[0]["n"] = 2  # a write through a proxy is an operation

    chunks = await collect(callback)
    assert chunks == [
        update(set_op([], {"rows": [{"n": 1}]})),
        update(set_op(["rows", "0", "n"], 2)),
    ]


async def test_values_are_stored_in_their_json_form() -> None:
    async def callback(controller: RunController) -> None:
        controller.state = {1: ("a", "b"), "s": {"x"}}
        assert controller.state["1"] == ["a", "b"]
        assert 1 in controller.state
        assert controller.state["s"].value == ["x"]

    assert await collect(callback) == [update(set_op([], {"1": ["a", "b"], "s": ["x"]}))]


def test_an_initial_state_that_is_not_json_is_refused_by_create_run() -> None:
    async def callback(controller: RunController) -> None:
        pass

    with pytest.raises(SerializationError, match="create_run's state"):
        create_run(callback, state={"when": object()})


# -- errors ----------------------------------------------------------------


async def test_non_json_value_raises_serialization_error_naming_the_path() -> None:
    async def callback(controller: RunController) -> None:
        with pytest.raises(SerializationError, match=r"update-state set at \[a, b\]") as info:
            controller.state["a"]["b"] = object()
        assert isinstance(info.value, TypeError)
        with pytest.raises(SerializationError, match=r"at \[\]"):
            controller.state = {"f": lambda: None}
        with pytest.raises(SerializationError, match=r"at \[items, 1\]"):
            controller.state["items"].extend(["ok", object()])
        # Nothing was applied: a failed write is all or none.
        assert controller.state == {"a": {"b": 1}, "items": []}
        controller.state["a"]["b"] = 2

    assert await collect(callback, state={"a": {"b": 1}, "items": []}) == [
        update(set_op(["a", "b"], 2)),
    ]


async def test_uncaught_serialization_error_fails_the_run() -> None:
    async def callback(controller: RunController) -> None:
        controller.state["ok"] = 1
        controller.state["bad"] = object()
        controller.append_text("never sent")

    received: list[Chunk] = []
    with pytest.raises(SerializationError, match=r"update-state set at \[bad\]") as info:
        await collect_into(received, callback, state={})
    assert received == [update(set_op(["ok"], 1)), ErrorChunk(str(info.value))]


async def test_append_text_onto_a_non_string_raises_type_error() -> None:
    async def callback(controller: RunController) -> None:
        with pytest.raises(TypeError, match=r"append-text at state path \[n\].*int"):
            controller.append_state_text(["n"], "x")
        with pytest.raises(TypeError, match=r"append-text at state path \[d\].*dict"):
            controller.append_state_text(["d"], "x")
        with pytest.raises(TypeError, match="cannot index into a int"):
            controller.append_state_text(["n", "x"], "x")
        with pytest.raises(TypeError, match="needs a str"):
            controller.append_state_text(["s"], 5)  # type: ignore[arg-type]
        assert controller.state == {"n": 1, "d": {}, "s": "s"}

    assert await collect(callback, state={"n": 1, "d": {}, "s": "s"}) == []


async def test_assigning_a_proxy_raises_type_error() -> None:
    async def callback(controller: RunController) -> None:
        with pytest.raises(TypeError, match="plain data"):
            controller.state["b"] = controller.state["a"]
        with pytest.raises(TypeError, match="plain data"):
            controller.state["a"]["self"] = controller.state["a"]
        with pytest.raises(TypeError, match="plain data"):
            controller.state = controller.state["a"]
        # Assigning a container proxy to its own place is the harmless
        # write-back half of ``+=``, and copying through ``.value`` works.
        controller.state["a"] = controller.state["a"]
        controller.state = controller.state
        controller.state["b"] = controller.state["a"].value

    assert await collect(callback, state={"a": {"x": 1}}) == [
        update(set_op(["b"], {"x": 1})),
    ]


async def test_a_proxy_of_another_run_is_rejected() -> None:
    proxies: list[StateProxy] = []

    async def first(controller: RunController) -> None:
        proxies.append(controller.state)

    async def second(controller: RunController) -> None:
        with pytest.raises(TypeError, match="plain data"):
            controller.state = proxies[0]

    await collect(first, state={"a": 1})
    assert await collect(second, state={"a": 1}) == []


async def test_state_writes_after_the_run_has_finished_raise() -> None:
    saved: list[RunController] = []

    async def callback(controller: RunController) -> None:
        saved.append(controller)

    await collect(callback, state={"a": 1})
    with pytest.raises(StreamClosedError):
        saved[0].state["a"] = 2
    with pytest.raises(StreamClosedError):
        saved[0].append_state_text(["s"], "x")


# -- known bugs --------------------------------------------------------------


async def test_a_rejected_write_after_the_run_leaves_the_state_unchanged() -> None:
    saved: list[RunController] = []

    async def callback(controller: RunController) -> None:
        saved.append(controller)

    await collect(callback, state={"a": 1})
    with pytest.raises(StreamClosedError):
        saved[0].state["a"] = 2
    assert saved[0].state == {"a": 1}


async def test_non_string_dict_keys_are_stored_as_the_client_sees_them() -> None:
    async def callback(controller: RunController) -> None:
        controller.state = {1: "a"}
        assert controller.state["1"] == "a"

    await collect(callback)


async def test_a_tuple_is_stored_as_the_list_the_client_sees() -> None:
    async def callback(controller: RunController) -> None:
        controller.state["t"] = (1, 2)
        controller.state["t"].append(3)
        assert controller.state["t"] == [1, 2, 3]

    await collect(callback, state={})


async def test_get_on_a_list_with_a_non_index_key_returns_the_default() -> None:
    async def callback(controller: RunController) -> None:
        assert controller.state["items"].get("name", "default") == "default"

    await collect(callback, state={"items": [1]})
