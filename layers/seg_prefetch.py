"""Decoding the next example while Caffe works on this one.

pycaffe holds the GIL for the whole of `net.forward` / `solver.step`. A Python thread
therefore gets the GIL only in the moments Python code runs (pycaffe's wrappers, the
layer's own calls, a Python training loop), but the expensive steps it starts then (file
reads, JPEG/PNG decoding, zlib) release the GIL and run on beside Caffe's computation;
only the Python glue between them waits for the next moment. A forked worker process
decodes entirely in parallel and pays for handing the arrays over a pipe instead. Both
hand over the arrays a synchronous load gives, so tops are identical in every mode.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from seg_dataset import SegDataset, load_example
from seg_io import DataError

PREFETCH_MODES = {True: "thread", False: None, None: None, "thread": "thread",
                  "process": "process", "none": None}
PARENT_CHECK_S = 1.0  # how often an idle worker checks that its parent is alive


class NoPrefetch:
    def __init__(self, dataset: SegDataset, source):
        self.dataset, self.source = dataset, source

    def submit(self, index: str) -> None:
        pass

    def take(self, index: str) -> dict[str, np.ndarray]:
        return load_example(self.dataset, self.source, index)

    def close(self) -> None:
        pass


class ThreadPrefetch(NoPrefetch):
    """Decode the next example in a background thread."""

    def __init__(self, dataset: SegDataset, source):
        super().__init__(dataset, source)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="seg-prefetch")
        self.pending: tuple[str, Future] | None = None

    def submit(self, index: str) -> None:
        self.pending = (index, self.pool.submit(load_example, self.dataset, self.source, index))

    def take(self, index: str) -> dict[str, np.ndarray]:
        pending, self.pending = self.pending, None
        if pending is not None and pending[0] == index:
            return pending[1].result()
        return super().take(index)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _serve(conn, parent_end, dataset: SegDataset, source) -> None:
    """The prefetch worker: decode each requested index and send back tops or the error.

    Forked workers share pipe ends, so end-of-file cannot tell this one its parent has
    gone; it checks for that itself while idle. Ctrl-C (SIGINT to the terminal's process
    group) and a group's SIGTERM are the parent's to act on: it finishes its iteration,
    which needs this worker's next example, then closes it; so the worker ignores both.
    """
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.SIG_IGN)
    parent_end.close()
    parent = os.getppid()
    while True:
        try:
            while not conn.poll(PARENT_CHECK_S):
                if os.getppid() != parent:
                    return
            index = conn.recv()
        except (EOFError, OSError):
            return
        if index is None:
            return
        try:
            reply = ("ok", load_example(dataset, source, index))
        except Exception as e:  # handed to the layer, which raises it in Caffe's thread
            reply = ("error", (type(e).__name__, str(e), isinstance(e, DataError)))
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class ProcessPrefetch(NoPrefetch):
    """Decode the next example in a forked worker, in parallel with Caffe's computation."""

    def __init__(self, dataset: SegDataset, source):
        super().__init__(dataset, source)
        source.close()  # an open LMDB must not cross the fork; both sides reopen it
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.worker = context.Process(target=_serve, args=(child, self.conn, dataset, source),
                                      name="seg-prefetch", daemon=True)
        self.worker.start()
        child.close()
        self.pending: str | None = None

    def submit(self, index: str) -> None:
        self.conn.send(index)
        self.pending = index

    def take(self, index: str) -> dict[str, np.ndarray]:
        pending, self.pending = self.pending, None
        if pending is None:
            return super().take(index)
        try:
            status, value = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"the prefetch worker (pid {self.worker.pid}) died "
                               f"(exit code {self.worker.exitcode})") from None
        if pending != index:  # a stale answer (the layer skipped ahead): load directly
            return super().take(index)
        if status == "error":
            name, message, is_data_error = value
            raise DataError(message) if is_data_error else RuntimeError(f"{name}: {message}")
        return value

    def close(self) -> None:
        try:
            self.conn.send(None)
            self.conn.close()
        except OSError:
            pass
        self.worker.join(timeout=5)
        if self.worker.is_alive():
            self.worker.kill()


PREFETCHERS = {None: NoPrefetch, "thread": ThreadPrefetch, "process": ProcessPrefetch}
