"""Progress of long checks: a tqdm bar on a terminal, a few plain lines elsewhere.

With ``progress=None`` (the default) nothing shows until a check has run ``DELAY_S`` seconds.
Without a terminal (output redirected to a file or a CI log) a carriage-return bar would write
one frame per update into the file; there, a long check prints at most ``len(PLAIN_STEPS)``
lines instead (``exhaustive check: 50% (2,048/4,096 elem), 8 s``).
"""

import contextlib
import sys
import time

from tqdm.auto import tqdm

#: Seconds a check must run before its progress shows when ``progress=None``.
DELAY_S = 2.0
#: Fractions of the work at which a plain (non-terminal) report prints a line.
PLAIN_STEPS = (0.25, 0.5, 0.75, 1.0)


class _Silent(contextlib.AbstractContextManager):
    """Stands in for a bar where none can be needed (no tqdm start-up cost)."""

    def __exit__(self, *exc_info):
        return None

    def update(self, n=1):
        pass


class _PlainLines(contextlib.AbstractContextManager):
    """A few whole lines on a stream that is not a terminal (no carriage returns)."""

    def __init__(self, total, description, delay_s, stream):
        self.total = max(int(total), 1)
        self.description = description
        self.delay_s = delay_s
        self.stream = stream
        self.done = 0
        self.started = time.perf_counter()
        self._next = 0  # index into PLAIN_STEPS

    def update(self, n=1):
        self.done += n
        elapsed = time.perf_counter() - self.started
        fraction = self.done / self.total
        reached = self._next
        while reached < len(PLAIN_STEPS) and fraction >= PLAIN_STEPS[reached]:
            reached += 1
        if reached == self._next:
            return
        self._next = reached
        if elapsed >= self.delay_s:
            print(f"{self.description}: {fraction:.0%} ({self.done:,}/{self.total:,}), "
                  f"{elapsed:.0f} s", file=self.stream, flush=True)

    def __exit__(self, *exc_info):
        return None


def _is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def progress_bar(total, progress, description, *, small=None, unit="elem"):
    """Return a progress context with ``update(n)``.

    Parameters
    ----------
    total : int
        Units of work.
    progress : bool or None
        False: nothing. True: shown from the start. None: shown once the work has run
        ``DELAY_S`` seconds, and not made at all when ``small`` is true (work that cannot take
        seconds).
    description : str
        What is being done, e.g. ``"colored check"``.
    small : bool, optional
        See ``progress``.
    unit : str
        What ``total`` counts (``"elem"``, ``"group"``).
    """
    if progress is False or (progress is None and small):
        return _Silent()
    delay = 0.0 if progress else DELAY_S
    stream = sys.stderr
    # a notebook's stderr is no terminal either, but tqdm.auto draws a widget there
    in_notebook = type(stream).__module__.startswith("ipykernel")
    if not in_notebook and not _is_terminal(stream):
        return _PlainLines(total, description, delay, stream)
    return tqdm(total=total, desc=description, unit=unit, unit_scale=True, leave=False,
                delay=delay, file=stream)
