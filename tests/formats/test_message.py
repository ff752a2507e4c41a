"""ToolArguments: streamed argument text is complete exactly when its JSON is."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_stream.formats import _message
from trio_stream.formats._message import ToolArguments

# Strings full of what a naive scanner trips on: quotes, backslashes, brackets.
tricky_text = st.text(alphabet=st.sampled_from('ab"\\{}[]:, é🌍\n'), max_size=12)
scalars = st.none() | st.booleans() | st.integers() | tricky_text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=12,
)
containers = st.lists(json_values, max_size=4) | st.dictionaries(
    tricky_text, json_values, max_size=4
)


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({cut % (len(text) + 1) for cut in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=300, deadline=None)
@given(
    value=containers, cuts=st.lists(st.integers(min_value=0), max_size=30), indent=st.booleans()
)
def test_complete_on_the_piece_that_closes_the_json(
    value: Any, cuts: list[int], indent: bool
) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=1 if indent else None)
    pieces = split(text, cuts)
    arguments = ToolArguments()
    completed_at = [index for index, piece in enumerate(pieces) if arguments.add(piece)]
    assert completed_at == [len(pieces) - 1]
    assert arguments.complete
    assert arguments.value == value
    assert arguments.text == text


@settings(max_examples=200, deadline=None)
@given(value=containers, cut=st.integers(min_value=1))
def test_a_strict_prefix_is_never_complete(value: Any, cut: int) -> None:
    text = json.dumps(value)
    prefix = text[: cut % len(text)]
    arguments = ToolArguments()
    for char in prefix:  # the finest streaming there is
        assert not arguments.add(char)
    assert not arguments.complete


def test_text_that_is_not_json_stays_incomplete() -> None:
    arguments = ToolArguments()
    assert not arguments.add("{not json}")
    assert not arguments.complete
    assert arguments.text == "{not json}"


def test_many_small_objects_are_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # 20,000 pieces, half of them closing an inner object: the text is parsed
    # once, at the end, not once per closing bracket (which is quadratic).
    parses = 0

    def counting_decode(text: str) -> Any:
        nonlocal parses
        parses += 1
        return json.loads(text)

    monkeypatch.setattr(_message, "_decode", counting_decode)
    arguments = ToolArguments()
    pieces = ["["] + ['{"i": 1}', ","] * 10_000
    pieces[-1] = "]"
    assert [arguments.add(piece) for piece in pieces].count(True) == 1
    assert len(arguments.value) == 10_000
    assert parses == 1
