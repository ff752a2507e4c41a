"""What a measurement produces: figures per contender, runs kept, summarized the same way."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any, Literal


@dataclasses.dataclass
class Target:
    """One target of a figure, what was measured against it, and the verdict."""

    text: str
    """The target, in words (e.g. ``<= 0.8x assistant-stream · uvicorn``)."""
    measured: str
    """What this run measured, in the target's terms (e.g. ``0.65x: 47.8 against 31.1``)."""
    met: bool


@dataclasses.dataclass
class Figure:
    """One quantity measured for every contender, several runs each."""

    key: str
    """Stable identifier, e.g. ``http-throughput``."""
    title: str
    unit: str
    better: Literal["lower", "higher"]
    runs: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    """Contender name -> the value of each run."""
    target: str = ""
    """The target, in words (e.g. ``>= 5x assistant-stream · uvicorn``)."""
    met: bool | None = None
    """Whether the target was met in this run; ``None``: no target."""
    note: str = ""
    ours: str | None = None
    """The contender the ratios are for; ``None``: ``trio-stream · hypercorn-trio``."""
    reference: str | None = None
    """The contender our ratio is against; ``None``: ``assistant-stream · uvicorn``.

    In-process figures have no server, so they name their own pair.
    """
    ceilings: dict[str, str] = dataclasses.field(default_factory=dict)
    """Contender name -> the bare-server ceiling on the same server, when measured.

    The report then shows how far each row is from its server's own limit.
    """
    targets: list[Target] = dataclasses.field(default_factory=list)
    """Targets checked one by one (``check``); the report lists each with its verdict."""

    def add(self, contender: str, value: float) -> None:
        self.runs.setdefault(contender, []).append(value)

    def median(self, contender: str) -> float:
        return statistics.median(self.runs[contender])

    def ratio(self, contender: str, reference: str) -> float:
        """How many times better ``contender`` is than ``reference`` (> 1: better)."""
        mine, theirs = self.median(contender), self.median(reference)
        if self.better == "higher":
            return mine / theirs if theirs else float("inf")
        return theirs / mine if mine else float("inf")

    def check(self, text: str, measured: str, met: bool) -> None:
        """Record one target and its verdict; ``target`` and ``met`` then sum them all up."""
        self.targets.append(Target(text, measured, met))
        self.target = "; ".join(target.text for target in self.targets)
        self.met = all(target.met for target in self.targets)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        """The figure ``to_json`` wrote."""
        fields = {k: v for k, v in data.items() if k != "summary"}
        fields["targets"] = [Target(**target) for target in fields.get("targets", [])]
        return cls(**fields)

    def to_json(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "summary": {
                name: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
                for name, v in self.runs.items()
            },
        }
