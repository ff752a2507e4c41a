"""m8 · Decoding throughput: a ~10 MB body of each format read back into chunks, in MB/s.

What is measured: for every format in ``trio_stream.formats.FORMATS`` (a
format added there is measured too, with no change here), the run of
``_run`` is encoded with the format's own encoder into a body of about
``LARGE`` bytes, and the body is decoded with the format's decoder: in one
piece, in 64 KiB pieces (what a socket read gives) and in 1 KiB pieces (a
trickle, where a decoder that re-scans what it holds would show). Megabytes
(10^6 bytes) of body per CPU second of the process (``time.process_time``:
decoding is CPU-bound in one thread, and CPU time is not inflated by other
processes sharing the cores, as wall-clock time is), from making the decoder
to the last chunk of ``close()``, the pieces cut
beforehand, the chunks counted and let go as they come (as a relay or a
client consumes them); garbage collected before each run. Encoding the same
body (its chunks in batches of 1,024, the most a response takes at once) is
the reference row: decoding against encoding.

The run is a model's answer at token size, repeated turn after turn until
the body is big enough: a step, 40 reasoning deltas, 120 text deltas, two
tool calls with their JSON arguments streamed in 4-character deltas and
their results, the state updated (a value set, a text appended), 80 more
text deltas, the step's finish; a few words are not ASCII.

Correctness: every body, every way, is decoded once untimed and checked
chunk by chunk against what the format carries of the run: every chunk of
it, except for the OpenAI stream, which carries the top level's text,
reasoning and tool calls and ends with one step finish, and the object
stream, which carries the state updates (``_CARRIED``); every
timed decode is checked to give as many chunks. A decoder that dropped or
garbled chunks fails the measurement instead of looking fast.

Linearity: the same at about ``SMALL`` bytes; the figure
``decode-linearity`` is, per format and way, the throughput at ~10 MB over
the throughput at ~1 MB, run by run. A decoder whose cost grew with the
square of the body (a buffer re-joined or re-scanned per piece) would fall
far below 1; the target is at least 0.8 for every format and way. The
figure's note adds the lowest row once more at twice the large size: a
throughput that holds there is a cost linear in the body (a constant that
grows with the heap, as the garbage collector's walks do, levels off), where
a quadratic one would halve it again.

The competitor, assistant-stream 0.0.36, has no Python decoder (its Python
package only encodes). The external reference is its npm package's
decoders (``DataStreamDecoder``, ``AssistantTransportDecoder``,
``UIMessageStreamDecoder``; the versions of ``tests/js``) on the same
bodies in 64 KiB pieces, timed inside Node (``bench/npm_decode.mjs``, after
a warm-up decode) from the first piece to the last decoded chunk, in CPU
time of the Node process (``process.cpuUsage``, its helper threads too); skipped
when Node or ``tests/js/node_modules`` is missing. Their chunks are their
own, so their check is that they read to the end: as many tool results and
step finishes as the run has.
"""

from __future__ import annotations

import gc
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio

from trio_stream import RunCallback, RunController, create_run
from trio_stream.chunks import (
    Chunk,
    ReasoningDeltaChunk,
    StepFinishChunk,
    StepStartChunk,
    TextDeltaChunk,
    ToolCallBeginChunk,
    ToolCallDeltaChunk,
    ToolResultChunk,
    UpdateStateChunk,
)
from trio_stream.formats import FORMATS, Format

from ._results import Figure
from ._servers import ROOT

__all__ = ["measure"]

SMALL = 1_000_000
LARGE = 10_000_000
"""Body sizes in bytes (about: a body is a whole number of turns)."""

WAYS = {"one piece": 0, "64 KiB pieces": 64 * 1024, "1 KiB pieces": 1024}
"""How a body is fed to its decoder: the pieces' size (0: the whole body at once)."""

OURS = "decode · 64 KiB pieces"
ENCODE = "encode (reference)"
ENCODE_BATCH = 1024
LINEARITY_TARGET = 0.8

NODE_MODULES = ROOT / "tests" / "js" / "node_modules"
NODE_SCRIPT = Path(__file__).parent / "npm_decode.mjs"
NODE_DECODERS = {"data-stream", "assistant-transport", "ui-message-stream"}
"""The formats assistant-stream's npm package decodes."""
NODE = "npm assistant-stream decoder, Node · 64 KiB pieces"

_WORDS = (
    "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ",",
    " and", " the", " café", " owner", " says", " “", "hello", "”", " to", " every",
    " reader", " of", " this", " long", " answer", ".", " Then", " it", " streams", " on",
)  # fmt: skip


def _words(start: int, count: int) -> list[str]:
    return [_WORDS[(start + i) % len(_WORDS)] for i in range(count)]


def _run(turns: int) -> RunCallback:
    """A run of ``turns`` model turns (see the module's doc)."""

    async def run(controller: RunController) -> None:
        controller.state = {"turn": 0, "notes": ""}
        for turn in range(turns):
            controller.add_step_start(f"msg_{turn}")
            for word in _words(turn, 40):
                controller.append_reasoning(word)
            for word in _words(turn + 3, 120):
                controller.append_text(word)
            for k in range(2):
                call = await controller.add_tool_call("search", f"call_{turn}_{k}")
                query = "".join(_words(turn + k, 8)).strip().replace("“", "").replace("”", "")
                arguments = json.dumps({"query": query, "limit": 5, "lang": "en"})
                for at in range(0, len(arguments), 4):
                    call.append_args_text(arguments[at : at + 4])
                hits = [
                    {"title": word.strip(), "url": f"https://example.org/{turn}/{i}"}
                    for i, word in enumerate(_words(turn + k, 3))
                ]
                call.set_response({"hits": hits, "took_ms": 12 + k})
            controller.state["turn"] = turn
            controller.append_state_text(["notes"], f"turn {turn} done. ")
            for word in _words(turn + 7, 80):
                controller.append_text(word)
            controller.add_step_finish("stop", 1200 + turn, 200)

    return run


def _chunks(turns: int) -> list[Chunk]:
    async def collect() -> list[Chunk]:
        async with create_run(_run(turns)) as chunks:
            return [chunk async for chunk in chunks]

    return trio.run(collect)


def _encode(format: Format, chunks: list[Chunk]) -> bytes:
    encoder = format.encoder()
    batches = range(0, len(chunks), ENCODE_BATCH)
    body = [encoder.encode(chunks[at : at + ENCODE_BATCH]) for at in batches]
    return encoder.start() + b"".join(body) + encoder.finish()


def _openai_carried(chunks: list[Chunk]) -> list[Chunk]:
    """What the OpenAI stream carries of this run (see its decoder's tests, ``carried``)."""
    calls = {c.tool_call_id for c in chunks if isinstance(c, ToolCallBeginChunk)}
    kept = [
        c
        for c in chunks
        if isinstance(c, TextDeltaChunk | ReasoningDeltaChunk | ToolCallBeginChunk)
        or (isinstance(c, ToolCallDeltaChunk) and c.tool_call_id in calls)
    ]
    return [*kept, StepFinishChunk("tool-calls" if calls else "stop")]


def _state_carried(chunks: list[Chunk]) -> list[Chunk]:
    """The object stream carries the run's state: its update-state chunks only."""
    return [chunk for chunk in chunks if isinstance(chunk, UpdateStateChunk)]


_CARRIED: dict[str, Callable[[list[Chunk]], list[Chunk]]] = {
    "openai-stream": _openai_carried,
    "object-stream": _state_carried,
}
"""The formats that do not carry every chunk of this run, and what they carry of it."""


def _pieces(body: bytes, size: int) -> list[bytes]:
    if not size:
        return [body]
    return [body[at : at + size] for at in range(0, len(body), size)]


def _decoded(format: Format, pieces: list[bytes]) -> list[Chunk]:
    """Every chunk of the body, for the check."""
    decoder = format.decoder()
    chunks: list[Chunk] = []
    for piece in pieces:
        chunks += decoder.feed(piece)
    return chunks + decoder.close()


def _decode_seconds(format: Format, pieces: list[bytes]) -> tuple[float, int]:
    """Seconds to decode the body, and how many chunks it gave.

    The chunks are counted and let go as they come, as a streaming consumer
    (a relay, a client) does; keeping them all would make the garbage
    collector walk more objects the bigger the body, which is the consumer's
    cost, not the decoder's.
    """
    gc.collect()
    started = time.process_time()
    decoder = format.decoder()
    count = 0
    for piece in pieces:
        count += len(decoder.feed(piece))
    count += len(decoder.close())
    return time.process_time() - started, count


def _encode_seconds(format: Format, chunks: list[Chunk]) -> float:
    gc.collect()
    started = time.process_time()
    _encode(format, chunks)
    return time.process_time() - started


class _Body:
    """One format's body of one size: its run's chunks, what it carries of them, the pieces."""

    def __init__(self, format: Format, size: int) -> None:
        sample = 4
        per_turn = len(_encode(format, _chunks(sample))) / sample
        self.chunks = _chunks(max(1, round(size / per_turn)))
        self.body = _encode(format, self.chunks)
        self.expected = _CARRIED.get(format.name, list)(self.chunks)
        self.pieces = {way: _pieces(self.body, size) for way, size in WAYS.items()}

    @property
    def megabytes(self) -> float:
        return len(self.body) / 1e6

    def check(self, name: str, decoded: list[Chunk]) -> None:
        """Raise unless ``decoded`` is what the format carries, chunk by chunk."""
        if decoded != self.expected:
            pairs = zip(decoded, self.expected, strict=False)
            first = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
            raise AssertionError(
                f"{name}: {len(decoded)} chunks decoded of {len(self.expected)} carried; "
                f"first difference at chunk {first}"
            )

    def check_count(self, name: str, count: int) -> None:
        if count != len(self.expected):
            raise AssertionError(f"{name}: {count} chunks decoded of {len(self.expected)}")


def _format_figure(format: Format, large: _Body) -> Figure:
    steps = sum(isinstance(c, StepStartChunk) for c in large.chunks)
    return Figure(
        key=f"decode-{format.name}",
        title=f"m8 · {format.name}: a {large.megabytes:.1f} MB body decoded, and encoded",
        unit="MB/s (CPU time)",
        better="higher",
        ours=OURS,
        reference=ENCODE,
        note=(
            f"{len(large.chunks):,} chunks ({steps:,} turns) encoded to "
            f"{len(large.body):,} bytes; {len(large.expected):,} chunks carried, every one "
            "checked after every decode. assistant-stream 0.0.36 has no Python decoder."
        ),
    )


def _measure_format(
    format: Format, sizes: tuple[int, int], runs: int
) -> tuple[Figure, dict[str, list[float]]]:
    small, large = _Body(format, sizes[0]), _Body(format, sizes[1])
    figure = _format_figure(format, large)
    speeds: dict[tuple[int, str], list[float]] = {}
    for body in (small, large):
        for way, pieces in body.pieces.items():  # warm-up, checked chunk by chunk
            body.check(f"{format.name}, {way}", _decoded(format, pieces))
    for _ in range(runs):
        for index, body in enumerate((small, large)):
            seconds = _encode_seconds(format, body.chunks)
            if index:
                figure.add(ENCODE, body.megabytes / seconds)
            for way, pieces in body.pieces.items():
                seconds, count = _decode_seconds(format, pieces)
                body.check_count(f"{format.name}, {way}", count)
                speeds.setdefault((index, way), []).append(body.megabytes / seconds)
                if index:
                    figure.add(f"decode · {way}", body.megabytes / seconds)
    _node(format, large, figure, runs)
    linearity = {
        way: [big / little for little, big in zip(speeds[0, way], speeds[1, way], strict=True)]
        for way in WAYS
    }
    return figure, linearity


def _node(format: Format, large: _Body, figure: Figure, runs: int) -> None:
    """Time the npm decoder of ``format`` on the same body, if there is one and Node runs."""
    if format.name not in NODE_DECODERS:
        return
    node = shutil.which("node")
    if node is None or not NODE_MODULES.is_dir():
        figure.note += " Node or tests/js/node_modules missing: no npm row."
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "body"
        path.write_bytes(large.body)
        result = subprocess.run(
            [node, NODE_SCRIPT, NODE_MODULES, format.name, path, "65536", str(runs)],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    output = json.loads(result.stdout)
    types = output["types"]
    results = sum(isinstance(c, ToolResultChunk) for c in large.chunks)
    steps = sum(isinstance(c, StepFinishChunk) for c in large.chunks)
    if types.get("result") != results or types.get("step-finish") != steps:
        raise AssertionError(f"npm {format.name} decoder: {types}")
    for seconds in output["seconds"]:
        figure.add(NODE, large.megabytes / seconds)


def _linearity_figure(
    linearity: dict[str, dict[str, list[float]]], sizes: tuple[int, int]
) -> tuple[Figure, tuple[str, str]]:
    """The figure, and the format and way of its lowest row."""
    figure = Figure(
        key="decode-linearity",
        title=f"m8 · Decoding throughput at ~{sizes[1] / 1e6:g} MB over ~{sizes[0] / 1e6:g} MB",
        unit="ratio (1: linear)",
        better="higher",
        target=f">= {LINEARITY_TARGET:g} for every format and way",
    )
    rows = {}
    for name, ways in linearity.items():
        for way, ratios in ways.items():
            rows[f"{name} · {way}"] = name, way
            for ratio in ratios:
                figure.add(f"{name} · {way}", round(ratio, 3))
    worst = min(figure.runs, key=figure.median)
    figure.met = figure.median(worst) >= LINEARITY_TARGET
    figure.note = (
        "The same run repeated into bodies of both sizes; the ratio of the throughputs, run "
        f"by run. Lowest: {worst}, {figure.median(worst):.2f}"
        + ("." if figure.met else f", {LINEARITY_TARGET - figure.median(worst):.2f} short.")
    )
    return figure, rows[worst]


def _beyond(format: Format, way: str, size: int, runs: int, reached: float) -> str:
    """A note on one row: its throughput with a body of ``size``, against ``reached``."""
    body = _Body(format, size)
    speeds = []
    for _ in range(runs):
        seconds, count = _decode_seconds(format, body.pieces[way])
        body.check_count(f"{format.name}, {way}", count)
        speeds.append(body.megabytes / seconds)
    speed = statistics.median(speeds)
    return (
        f" That row again with a {body.megabytes:.1f} MB body: {speed:.1f} MB/s, "
        f"{speed / reached:.2f} times its throughput at the larger size above (a cost growing "
        "with the square of the body would halve it)."
    )


def measure(smoke: bool) -> list[Figure]:
    sizes, runs = ((20_000, 200_000), 1) if smoke else ((SMALL, LARGE), 5)
    figures: dict[str, Figure] = {}
    linearity: dict[str, dict[str, list[float]]] = {}
    for name, format in FORMATS.items():
        figures[name], linearity[name] = _measure_format(format, sizes, runs)
    line, (name, way) = _linearity_figure(linearity, sizes)
    reached = figures[name].median(f"decode · {way}")
    line.note += _beyond(FORMATS[name], way, 2 * sizes[1], min(runs, 3), reached)
    return [*figures.values(), line]
