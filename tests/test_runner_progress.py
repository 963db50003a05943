"""The progress reporter: the live terminal bar, plain lines elsewhere, throttling."""

from __future__ import annotations

import io
import sys

from netc.runner.progress import BAR_WIDTH, Progress, bar_line, format_record

RECORD = {"epoch": 1, "epochs": 3, "train": {"loss": 0.25, "accuracy": 0.9}, "val": {"loss": 0.5}, "lr": 1e-3,
          "seconds": 0.5}


class TTY(io.StringIO):
    def isatty(self):
        return True


def screen(text: str) -> list[str]:
    """What a terminal shows: each line after its last carriage return, control codes removed."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*[mK]", "", text)
    return [line.split("\r")[-1] for line in text.split("\n")]


def test_bar_line_shows_epoch_steps_loss_and_eta():
    line = bar_line("epoch 2/5", 45, 90, "0.1234", 65.0, color=False)
    assert line.startswith("epoch 2/5 ") and "45/90 loss 0.1234 0:01:05" in line
    assert line.count("━") == BAR_WIDTH // 2
    assert bar_line("e", 0, 10, "-", None, color=False).endswith("0/10 loss - -:--:--")
    assert bar_line("e", 10, 10, "-", 0.0, color=False).count("━") == BAR_WIDTH


def test_terminal_bar_is_replaced_by_the_epoch_line_and_notes_go_above_it():
    out = TTY()
    with Progress(stream=out, interval=0.0) as p:
        p.start_epoch(1, 3, 40)
        assert p.due()
        p.update(17, lambda: 0.4567)
        p.note("a note")
        p.update(40, 0.3)
        p.end_epoch(RECORD)
        p.start_epoch(2, 3, 40, done=10)  # resumed mid-epoch: the bar starts at 10/40
        p.update(20, 0.2)
    lines = screen(out.getvalue())
    assert lines[0] == "a note"
    assert lines[1] == format_record(RECORD)
    assert lines[2].startswith("epoch 2/3 ") and "20/40 loss 0.2000" in lines[2]
    assert lines[3] == ""  # the last bar's line is ended on exit


def test_plain_stream_gets_only_epoch_lines_and_notes():
    out = io.StringIO()
    with Progress(stream=out, interval=0.0) as p:
        p.start_epoch(1, 3, 40)
        p.update(17, lambda: 1 / 0)  # not a terminal: the loss is never even read
        p.note("a note")
        p.end_epoch(RECORD)
    assert out.getvalue() == "a note\n" + format_record(RECORD) + "\n"


def test_disabled_prints_nothing():
    out = TTY()
    with Progress(stream=out, enabled=False, interval=0.0) as p:
        p.start_epoch(1, 3, 40)
        p.update(5, 0.1)
        p.note("x")
        p.end_epoch(RECORD)
    assert out.getvalue() == ""


def test_due_is_throttled():
    p = Progress(stream=io.StringIO(), interval=3600.0)
    p.start_epoch(1, 1, 10)
    assert not any(p.due() for _ in range(1000))


def test_drawing_needs_no_rich_console():
    """The bar is one hand-drawn line (rich's per-redraw layout cost ms, see bench/runner_overhead.py)."""
    sys.modules.pop("rich.progress", None)
    out = TTY()
    with Progress(stream=out, interval=0.0) as p:
        p.start_epoch(1, 1, 10)
        p.update(5, 0.1)
        p.end_epoch(RECORD)
    assert "rich.progress" not in sys.modules
