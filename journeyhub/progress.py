"""A progress bar for management commands: redrawn in place on stderr, at most a few times a
second, so a log file gets a line per redraw and not one per row."""

import time

BAR_WIDTH = 30
REDRAW_SECONDS = 0.2


class ProgressBar:
    """``[#####.....]  12,000 / ~100,000 rows  8,210 rows/s  0:00:11 left``.

    ``total`` is what ``update`` counts towards (rows, or bytes read when ``rows`` is passed
    separately); when it is an estimate, the bar stops at full and the count goes on."""

    def __init__(self, stream, total: int, *, unit: str = "rows"):
        self.stream, self.total, self.unit = stream, max(total, 0), unit
        self.started = time.monotonic()
        self.drawn_at, self.done, self.rows = 0.0, 0, 0

    def update(self, done: int, *, rows: int | None = None) -> None:
        self.done = done
        self.rows = done if rows is None else rows
        now = time.monotonic()
        if now - self.drawn_at < REDRAW_SECONDS and done < self.total:
            return
        self.drawn_at = now
        share = min(done / self.total, 1.0) if self.total else 1.0
        filled = int(share * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        line = f"\r[{bar}] {self.rows:>12,}"
        line += f" / ~{self.total:,} {self.unit}" if rows is None else f" {self.unit}"
        line += self._speed(now, share)
        self.stream.write(line, ending="")
        self.stream.flush()

    def _speed(self, now: float, share: float) -> str:
        elapsed = now - self.started
        if elapsed <= 0 or not self.rows:
            return ""
        text = f"  {self.rows / elapsed:,.0f} {self.unit}/s"
        if 0 < share < 1:
            left = elapsed * (1 - share) / share
            text += f"  {int(left) // 3600}:{int(left) % 3600 // 60:02d}:{int(left) % 60:02d} left"
        return text

    def finish(self) -> None:
        self.drawn_at = 0.0  # the last count, however soon after the previous one
        self.update(self.done, rows=None if self.rows == self.done else self.rows)
        self.stream.write("")
