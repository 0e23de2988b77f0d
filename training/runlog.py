"""A run's two logs: text for people, JSON lines for plots and comparisons.

The text log writes test results in the release's score.py format
(`>>> <time> Iteration N mean IU 0.62`), which zoo/scores.py reads back; the JSON lines
hold every step's loss and every test's metrics, one object per line, appended across
resumes.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from pathlib import Path

TEXT_NAME = "train.log"
JSON_NAME = "train.jsonl"


def _clean(value):
    """JSON has no NaN: write null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def mend_torn_end(path: Path, json_lines: bool) -> int:
    """Before a log is appended to: a last line without its newline (a run killed while
    writing it) would be glued to the next record and break every later reader. A torn
    JSON record is cut off (it was never whole); a text line is ended. Returns the bytes
    removed (0 when nothing was torn or only a newline was added)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(-1, 2)
        if f.read(1) == b"\n":
            return 0
        data = path.read_bytes()
        start = data.rfind(b"\n") + 1
        tail = data[start:]
        if json_lines:
            try:
                json.loads(tail)
            except (ValueError, UnicodeDecodeError):
                f.truncate(start)
                return len(tail)
        f.seek(0, 2)
        f.write(b"\n")
    return 0


class RunLog:
    def __init__(self, run_dir: Path, display: int = 20, echo: bool = True):
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.text_path, self.json_path = run_dir / TEXT_NAME, run_dir / JSON_NAME
        mend_torn_end(self.text_path, json_lines=False)
        cut = mend_torn_end(self.json_path, json_lines=True)
        self.text = open(self.text_path, "a", encoding="utf-8")
        self.json = open(self.json_path, "a", encoding="utf-8")
        self.display, self.echo = display, echo
        self.started = time.time()
        if cut:
            self.say(f"{self.json_path}: removed a torn last record ({cut} bytes, a run "
                     f"stopped while writing it) before appending")

    def close(self) -> None:
        for handle in (self.text, self.json):
            try:
                handle.close()
            except OSError:  # a full disk: the write that failed has said so already
                pass

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _append(handle, path: Path, text: str) -> None:
        """Write and flush; a full disk names the log (Python's own error does not)."""
        try:
            handle.write(text)
            handle.flush()
        except OSError as e:
            raise OSError(e.errno, f"{path}: cannot append to the log ({e.strerror}); "
                                   f"free some space and resume (the snapshots are "
                                   f"intact)") from None

    def record(self, kind: str, **fields) -> None:
        fields = {"type": kind, "time": round(time.time() - self.started, 3), **fields}
        self._append(self.json, self.json_path, json.dumps(_clean(fields)) + "\n")

    def say(self, message: str) -> None:
        line = f"{datetime.now():%Y-%m-%d %H:%M:%S} {message}"
        self._append(self.text, self.text_path, line + "\n")
        if self.echo:
            print(message, flush=True)

    def step(self, iteration: int, losses: dict[str, float], lr: float) -> None:
        """Every step goes to the JSON log; every `display` steps to the text log."""
        total = sum(losses.values())
        self.record("step", iter=iteration, loss=total, losses=losses, lr=lr)
        if self.display and iteration % self.display == 0:
            parts = ", ".join(f"{k} = {v:.6g}" for k, v in losses.items())
            self._append(self.text, self.text_path,
                         f"{datetime.now():%Y-%m-%d %H:%M:%S} Iteration {iteration}, "
                         f"lr = {lr:g}, {parts}\n")

    def test(self, iteration: int, result: dict, split: str) -> None:
        """A test's metrics: JSON, and the release's score.py lines per head."""
        self.record("test", iter=iteration, split=split, **result)
        stamp = datetime.now()
        loss = sum((result.get("loss") or {}).values())
        lines = [f">>> {stamp} Iteration {iteration} loss {loss}"]
        for head, metrics in result.items():
            if not isinstance(metrics, dict) or "mean_iu" not in metrics:
                continue
            tag = "" if head == "label" else f"{head} "
            lines += [f">>> {stamp} Iteration {iteration} {tag}overall accuracy "
                      f"{metrics['pixel_accuracy']}",
                      f">>> {stamp} Iteration {iteration} {tag}mean accuracy "
                      f"{metrics['mean_accuracy']}",
                      f">>> {stamp} Iteration {iteration} {tag}mean IU {metrics['mean_iu']}",
                      f">>> {stamp} Iteration {iteration} {tag}fwavacc {metrics['fw_iu']}"]
        self._append(self.text, self.text_path, "\n".join(lines) + "\n")
        if self.echo:
            heads = [f"{h}: pixel acc {m['pixel_accuracy']:.4f} mean acc "
                     f"{m['mean_accuracy']:.4f} mean IU {m['mean_iu']:.4f} f.w. IU "
                     f"{m['fw_iu']:.4f} (all-background mean IU "
                     f"{m['background_mean_iu']:.4f})"
                     for h, m in result.items() if isinstance(m, dict) and "mean_iu" in m]
            print(f"test @ {iteration} on {split}: loss {loss:.6g}; " + "; ".join(heads),
                  flush=True)


def read_records(path: Path, kind: str | None = None) -> list[dict]:
    """The JSON-lines log's records (of one `kind`: 'step', 'test', …), in order. A torn
    last line (a run killed mid-write) is skipped."""
    records = []
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no JSON-lines log")
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if kind is None or record.get("type") == kind:
            records.append(record)
    return records
