"""Settings of the property-based and fuzz tests: case budgets, profiles, a per-case time limit.

Two profiles, picked with ``BONDWATCH_FUZZ_PROFILE`` (default ``ci``):

    ci     what ``make test`` and CI run: two fifths of every test's base budget (about 11,600
           cases, so that CI stays within its time), derandomized (the same cases on every run,
           no example database)
    fuzz   what ``make fuzz`` runs: five times the base budget (144,650 cases), random seeds
           each run, failures kept in var/hypothesis (git-ignored) and replayed first

Every test takes its budget from :func:`cases` and its settings from :data:`FUZZ`, so the counts in
docs/fuzzing.md are the numbers written in the tests. A case must finish within
:data:`DEADLINE` (Hypothesis reports a slower one) and is stopped by :func:`time_limit` after
:data:`HANG_S` seconds (a hang fails the test instead of stalling the suite).
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import string
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

ROOT = Path(__file__).resolve().parents[2]
PROFILE = os.environ.get("BONDWATCH_FUZZ_PROFILE", "ci")
SCALES = {"ci": 0.4, "fuzz": 5.0}
if PROFILE not in SCALES:
    raise RuntimeError(f"BONDWATCH_FUZZ_PROFILE={PROFILE!r}: expected one of {', '.join(SCALES)}")
SCALE = SCALES[PROFILE]
DEADLINE = timedelta(milliseconds=500)
HANG_S = 5.0

_common = {
    "deadline": DEADLINE,
    # Near-valid inputs are built from several draws; generation speed is not what is tested.
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    # No explain phase: it re-runs failing cases to annotate lines, minutes on a 2-core machine.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
}
FUZZ = (
    settings(derandomize=True, database=None, print_blob=False, **_common)  # type: ignore[arg-type]
    if PROFILE == "ci"
    else settings(
        derandomize=False,
        database=DirectoryBasedExampleDatabase(ROOT / "var" / "hypothesis"),
        print_blob=True,
        **_common,  # type: ignore[arg-type]
    )
)


def cases(base: int) -> int:
    """The number of cases of a test whose CI budget is ``base``."""
    return max(1, round(base * SCALE))


class Hang(Exception):
    """One case ran longer than :data:`HANG_S`: an endless loop or a pathological input."""


@contextmanager
def time_limit(seconds: float = HANG_S) -> Iterator[None]:
    """Raise :class:`Hang` inside the block after ``seconds`` (SIGALRM; pytest runs tests on the main thread)."""

    def _alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"one case ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="package", autouse=True)
def _quiet_decoder_libraries() -> Iterator[None]:
    """sllurp and pymodbus log every frame they cannot decode: tens of thousands of lines of noise here."""
    loggers = [logging.getLogger(name) for name in ("sllurp", "pymodbus")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


# --- one generator, two drivers -------------------------------------------------------------------
#
# A near-valid input takes a hundred or more choices to build. Drawn one by one from Hypothesis that
# costs ~60 µs of CPU each on this machine (6-9 ms a case); from a Random it costs ~1 µs. So each
# generator is written once against :class:`Chooser` and used both ways:
#
#   structured(gen)  every choice a Hypothesis draw: Hypothesis steers and shrinks (smaller budgets)
#   fast(gen)        one Hypothesis-seeded Random per case: mutation fuzzing at volume (large budgets)
#
# Both are reproducible under derandomize; a failing fast case is reported with the input it built.

T = TypeVar("T")
_PRINTABLE = string.printable
_CONTROL = "".join(map(chr, [*range(0, 32), 127]))
_SPECIAL_FLOATS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 1e-300, 2.0**53, 0.1]


class Chooser(Protocol):
    def integer(self, low: int, high: int) -> int: ...
    def boolean(self) -> bool: ...
    def choice(self, options: Sequence[T]) -> T: ...
    def real(self, low: float, high: float) -> float: ...
    def any_float(self) -> float: ...
    def binary(self, max_size: int, min_size: int = 0) -> bytes: ...
    def text(self, max_size: int, alphabet: str | None = None, min_size: int = 0) -> str: ...


class Drawn:
    """Every choice is a Hypothesis draw (strategies with the same arguments are cached by Hypothesis)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def boolean(self) -> bool:
        return self.draw(st.booleans())

    def choice(self, options: Sequence[T]) -> T:
        return options[self.draw(st.integers(0, len(options) - 1))]

    def real(self, low: float, high: float) -> float:
        return self.draw(st.floats(low, high, allow_nan=False, allow_infinity=False))

    def any_float(self) -> float:
        return self.draw(st.floats())

    def binary(self, max_size: int, min_size: int = 0) -> bytes:
        return self.draw(st.binary(min_size=min_size, max_size=max_size))

    def text(self, max_size: int, alphabet: str | None = None, min_size: int = 0) -> str:
        if alphabet is None:
            return self.draw(st.text(min_size=min_size, max_size=max_size))
        return self.draw(st.text(alphabet=alphabet, min_size=min_size, max_size=max_size))


class Seeded:
    """Every choice from one Random; boundaries and special values are favoured as Hypothesis would."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd

    def integer(self, low: int, high: int) -> int:
        r = self.rnd.random()
        if r < 0.05:
            return low
        if r < 0.1:
            return high
        if r < 0.2 and high - low > 256:  # small values near the low end, where most fields live
            return self.rnd.randint(low, low + 256)
        return self.rnd.randint(low, high)

    def boolean(self) -> bool:
        return self.rnd.random() < 0.5

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rnd.randrange(len(options))]

    def real(self, low: float, high: float) -> float:
        r = self.rnd.random()
        if r < 0.05:
            return low
        if r < 0.1:
            return high
        return self.rnd.uniform(low, high)

    def any_float(self) -> float:
        r = self.rnd.random()
        if r < 0.25:
            return self.rnd.choice(_SPECIAL_FLOATS)
        if r < 0.7:
            return self.rnd.uniform(-1e6, 1e6)
        return float(struct.unpack("<d", self.rnd.randbytes(8))[0])

    def binary(self, max_size: int, min_size: int = 0) -> bytes:
        return self.rnd.randbytes(self.rnd.randint(min_size, max_size))

    def text(self, max_size: int, alphabet: str | None = None, min_size: int = 0) -> str:
        n = self.rnd.randint(min_size, max_size)
        if alphabet is not None:
            return "".join(self.rnd.choices(alphabet, k=n))
        return "".join(self._char() for _ in range(n))

    def _char(self) -> str:
        r = self.rnd.random()
        if r < 0.6:
            return self.rnd.choice(_PRINTABLE)
        if r < 0.7:
            return self.rnd.choice(_CONTROL)
        if r < 0.8:
            return chr(self.rnd.randint(0x80, 0xFF))
        if r < 0.95:
            code = self.rnd.randint(0x100, 0xFFFD)
            return chr(code) if not 0xD800 <= code <= 0xDFFF else "\ufffd"
        return chr(self.rnd.randint(0x10000, 0x10FFFF))


def json_value(c: Chooser, depth: int = 0, strict: bool = False) -> Any:
    """Any JSON value. Not ``strict``: floats may be NaN or infinite and integers past 64 bits (written out,
    that is what a broken device sends); ``strict``: only what every parser reads (orjson: 64-bit integers)."""
    kind = c.integer(0, 6 if depth < 3 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return c.boolean()
    if kind == 2:
        return c.integer(-(2**63), 2**64 - 1) if strict else c.integer(-(2**70), 2**70)
    if kind == 3:
        return c.real(-1e300, 1e300) if strict else c.any_float()
    if kind == 4:
        return c.text(20)
    if kind == 5:
        return [json_value(c, depth + 1, strict) for _ in range(c.integer(0, 4))]
    return {c.text(8): json_value(c, depth + 1, strict) for _ in range(c.integer(0, 4))}


def structured(gen: Callable[..., T], *args: Any) -> st.SearchStrategy[T]:
    """``gen``'s inputs with every choice drawn from Hypothesis."""

    @st.composite
    def _strategy(draw: st.DrawFn) -> T:
        return gen(Drawn(draw), *args)

    return _strategy()


def fast(gen: Callable[..., T], *args: Any) -> st.SearchStrategy[T]:
    """``gen``'s inputs from one Hypothesis-seeded Random per case."""
    return st.randoms(use_true_random=True).map(lambda rnd: gen(Seeded(rnd), *args))
