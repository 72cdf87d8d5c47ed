"""Progress bars for long checks (tqdm), shown only when a check runs long."""

import contextlib

from tqdm.auto import tqdm

#: Seconds a check must run before its bar appears when ``progress=None``.
DELAY_S = 2.0


class _Silent(contextlib.AbstractContextManager):
    """Stands in for a bar where none can be needed (no tqdm start-up cost)."""

    def __exit__(self, *exc_info):
        return None

    def update(self, n=1):
        pass


def progress_bar(total, progress, description, *, small=None):
    """Return a tqdm bar: hidden for ``progress=False``, delayed for ``None``, shown for True.

    With ``progress=None`` and ``small`` true (work that cannot take seconds) no bar is made.
    """
    if progress is False or (progress is None and small):
        return _Silent()
    return tqdm(total=total, desc=description, unit="elem", unit_scale=True, leave=False,
                delay=0.0 if progress else DELAY_S)
