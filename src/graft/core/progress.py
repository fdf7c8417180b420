"""Progress that shows in any log: a tqdm bar on a terminal, timestamped lines with rate and ETA everywhere else.

tqdm redraws one line with carriage returns; in CI, a KFP pod's log or `| tee` that is either nothing (tqdm's
`disable=None` turns it off) or one unreadable line. When stderr is not a terminal, `bar` prints a line such as

    2026-12-07 23:30:01 explain: model  48/120 inputs (40%)  6.1 inputs/s  ETA 12 s

at most every `every` seconds (and at the end), so a person following the log sees work move and when it ends.
`GRAFT_PROGRESS=lines|bars|off` overrides the choice.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator

__all__ = ["Lines", "bar", "line", "stamp"]


def stamp() -> str:
    """Local wall-clock time as `YYYY-MM-DD HH:MM:SS`, the prefix of every progress line."""
    return time.strftime("%Y-%m-%d %H:%M:%S")


def line(message: str) -> None:
    """One timestamped line on stderr, flushed (a stage's start and end, an epoch's result)."""
    print(f"{stamp()} {message}", file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Lines:
    """tqdm's update / set_postfix / close, written as a line every `every` seconds and once at the end."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "it",
                 initial: int = 0, every: float = 10.0):
        self.iterable, self.desc, self.every = iterable, desc, every
        self.unit = unit + ("es" if unit.endswith(("s", "ch", "x")) else "s")  # plural: "3 batches"
        self.total = len(iterable) if total is None and hasattr(iterable, "__len__") else total
        self.n, self.initial, self.postfix, self.closed = initial, initial, "", False
        self.started = self.last = time.monotonic()
        line(f"{desc}: started" + (f", {self.total} {self.unit}" if self.total is not None else ""))

    def __iter__(self) -> Iterator:
        for x in self.iterable or ():
            yield x
            self.update()
        self.close()

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_postfix(self, **values) -> None:
        """Values shown at the end of each line (loss, rate)."""
        self.postfix = "  " + " ".join(f"{k}={v}" for k, v in values.items())

    def set_description(self, desc: str) -> None:
        """What the lines call the work."""
        self.desc = desc

    def update(self, n: int = 1) -> None:
        """`n` more units done; a line when `every` seconds passed since the last one."""
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every and (self.total is None or self.n < self.total):
            self.last = now
            self._write(now)

    def _write(self, now: float, done: bool = False) -> None:
        spent = now - self.started
        rate = (self.n - self.initial) / spent if spent > 0 else 0.0
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        if done:
            tail = f"  done in {_duration(spent)}"
        elif self.total and rate > 0:
            tail = f"  ETA {_duration((self.total - self.n) / rate)}"
        else:
            tail = ""
        line(f"{self.desc}  {count} {self.unit}{share}  {rate:.1f} {self.unit}/s{tail}{self.postfix}")

    def close(self) -> None:
        """The last line: the count and the time the work took."""
        if not self.closed:
            self.closed = True
            self._write(time.monotonic(), done=True)


class _Off(Lines):
    def __init__(self, iterable=None, **_):
        self.iterable, self.closed = iterable, True

    def __iter__(self) -> Iterator:
        return iter(self.iterable or ())

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values) -> None:
        pass


def bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
        initial: int = 0, show: bool = True, every: float = 10.0):
    """A progress reporter with tqdm's interface: a bar on a terminal, `Lines` otherwise (`show=False`: silent)."""
    mode = os.environ.get("GRAFT_PROGRESS", "").strip().lower()
    if not show or mode == "off":
        return _Off(iterable)
    if mode == "bars" or (mode != "lines" and sys.stderr.isatty()):
        from tqdm.auto import tqdm
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial)
    return Lines(iterable, total=total, desc=desc, unit=unit, initial=initial, every=every)
