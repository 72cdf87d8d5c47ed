"""Progress bars for long checks (tqdm), shown only when a check runs long."""

from tqdm.auto import tqdm

#: Seconds a check must run before its bar appears when ``progress=None``.
DELAY_S = 2.0


def progress_bar(total, progress, description):
    """Return a tqdm bar: hidden for ``progress=False``, delayed for ``None``, shown for True."""
    return tqdm(total=total, desc=description, unit="elem", unit_scale=True, leave=False,
                disable=progress is False, delay=0.0 if progress else DELAY_S)
