"""Progress: a few whole lines without a terminal, never carriage-return frames."""

import io
import sys

import numpy as np

from fastgrad import _progress, check_gradients


def test_without_a_terminal_progress_is_a_few_plain_lines(monkeypatch):
    stream = io.StringIO()  # not a terminal
    monkeypatch.setattr(sys, "stderr", stream)
    with _progress.progress_bar(1000, True, "work") as bar:
        for _ in range(1000):
            bar.update(1)
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == len(_progress.PLAIN_STEPS)
    assert lines[-1].startswith("work: 100% (1,000/1,000)")


def test_short_work_prints_nothing_by_default(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with _progress.progress_bar(10, None, "work") as bar:
        bar.update(10)
    assert stream.getvalue() == ""


def test_colored_reports_progress_over_its_groups(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    rng = np.random.default_rng(0)
    X, W, dLdY = rng.normal(size=(5, 8)), rng.normal(size=(8, 6)), rng.normal(size=(5, 6))
    grad = X.T @ ((1 - np.tanh(X @ W) ** 2) * dLdY)
    result = check_gradients(lambda w: np.tanh(X @ w), grad, W, dLdY, method="colored",
                             progress=True)
    assert result.method == "colored" and result.passed
    assert "colored check: 100% (8/8)" in stream.getvalue()
    assert "\r" not in stream.getvalue()
