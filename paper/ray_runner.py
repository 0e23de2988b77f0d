"""`make paper RAY_ADDRESS=…`: each independent chain a Ray task, on any node of a cluster.

Chains never share a stage (paper.plan.components), so tasks need no coordination beyond
the run folder: RUNS must be on storage every node sees. A task is paper.chains.work — the
serial run's own unit — so the same rules hold: finished stages are reused, an interrupted
one resumes from its latest snapshot. When a node or worker dies, Ray runs the task again
(max_retries) and the new attempt resumes where the snapshots stop; a task that still
fails is reported and a second `make paper` resumes it. One GPU per task (num_gpus=1:
Ray sets CUDA_VISIBLE_DEVICES, so the task uses device 0); CPU tasks in the miniature.

Each attempt leaves RUNS/paper/leases/<chain>.json (host, pid, start) so an operator can
see which process holds a chain. Ctrl-C or SIGTERM to the driver (make's, or the kernel's
when make dies) stops every chain as a serial run stops: ray.cancel raises KeyboardInterrupt
in each task, which the training loop takes as its SIGINT (finish the iteration, snapshot, a
`stopped` record); the driver waits for them, so nothing trains on after it exits, and the
same command resumes. A second signal while it waits kills the tasks at once. Ray is
optional: `make paper-ray-deps` installs the pinned version (requirements-ray.txt).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path

from core.defaults import REPO, quiet_caffe_log
from core.processes import stop_signals
from paper.chains import work
from paper.plan import TABLES, Plan, Settings
from paper.processes import settings_from, settings_payload

RETRIES = 3
POLL_S = 1.0        # the driver's waits return this often, so a signal reaches it at once
STOP_WAIT_S = 600   # how long stopped chains get to finish their iteration and snapshot


def lease_path(settings: Settings, targets: list[str]) -> Path:
    return settings.report_dir / "leases" / ("+".join(targets) + ".json")


def _task(targets: list[str], settings: dict, equal_images: list[str],
          tables: list[str]) -> dict:
    """What runs on a worker: paper.chains.work for one chain, with a lease file."""

    config = settings_from(settings)
    if config.gpu is not None:
        config = replace(config, gpu=0)  # Ray exposes the task's GPU as device 0
    lease = lease_path(config, targets)
    lease.parent.mkdir(parents=True, exist_ok=True)
    lease.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                 "started": time.time()}) + "\n")
    groups = [g for key in tables for g in TABLES[key]]
    work(targets, config, set(equal_images), groups)
    return {"targets": targets, "host": socket.gethostname(), "pid": os.getpid()}


def run_on_ray(address: str, work_items: list[list[str]], plan: Plan) -> list[dict]:
    """Submit every chain, wait for all; raise naming the chains that failed."""
    try:
        # Ray is optional (requirements-ray.txt)
        import ray
    except ImportError:
        raise RuntimeError("Ray is not installed; `make paper-ray-deps` installs the pinned "
                           "version (requirements-ray.txt)") from None
    settings = plan.settings
    # every node needs this checkout at the same path (`make setup` there): the tasks import
    # paper/, training/ … and the data layers from it
    env = quiet_caffe_log({"PYTHONPATH": f"{REPO}:{REPO / 'layers'}"})
    ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": env})
    resources = {"num_gpus": 1} if settings.gpu is not None else {"num_cpus": 1}
    remote = ray.remote(max_retries=RETRIES, **resources)(_task)
    payload = settings_payload(settings)
    done, failed = [], []
    # after ray.init, whose own SIGTERM handler exits 1 at once and whose waits re-raise a
    # bare KeyboardInterrupt: which signal came is kept here
    with stop_signals() as received:
        pending = {remote.remote(targets, payload, sorted(plan.equal_images), plan.tables):
                   targets for targets in work_items}
        print(f"[paper] ray: {len(pending)} chains submitted to {address}", file=sys.stderr,
              flush=True)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                if not ready:
                    continue
                targets = pending.pop(ready[0])
                try:
                    done.append(ray.get(ready[0]))
                    print(f"[paper] ray: done {' + '.join(targets)}", file=sys.stderr,
                          flush=True)
                except Exception as e:  # a task that failed every retry: the others go on
                    failed.append(f"{' + '.join(targets)} ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else ''})")
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (make's, or the kernel's: make died)
            signum = received[0] if received else signal.SIGINT
            _stop(ray, pending)
            raise KeyboardInterrupt(f"{signal.Signals(signum).name}; {len(pending)} chain(s) "
                                    f"on the cluster stopped", signum) from None
        finally:
            ray.shutdown()
    if failed:
        raise RuntimeError("ray: chains failed after retries: " + "; ".join(failed)
                           + "; run the same command again to resume them")
    return done


def _stop(ray, pending: dict) -> None:
    """Stop the running chains through their own training loops and wait until they have
    (bounded by STOP_WAIT_S); a second interrupt, or the bound, kills them at once."""
    refs = list(pending)
    print(f"[paper] ray: stopping {len(refs)} chain(s) after their current iteration "
          f"(again to kill them at once)", file=sys.stderr, flush=True)
    for ref in refs:
        ray.cancel(ref)
    deadline = time.monotonic() + STOP_WAIT_S
    try:
        while refs and time.monotonic() < deadline:
            _, refs = ray.wait(refs, num_returns=len(refs), timeout=POLL_S)
    except KeyboardInterrupt:
        pass
    for ref in refs:   # still running: killed (they resume from their last snapshot)
        ray.cancel(ref, force=True)
