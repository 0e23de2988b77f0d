"""The demo's trainings side by side (demo/lanes.py), on real child processes: each lane's
commands in order with its share of the threads, a failure stopping the others and
reported in one line, a signal passed on to every running command, and a driver killed
outright taking its commands along."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import demo.lanes
from demo.lanes import Command, Lane, LaneFailed, progress_of, run_lanes, thread_shares
from demo.run import QUICK, training_lanes

REPO = Path(__file__).resolve().parents[1]


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def sleeper(mark: Path, ignore_term: bool = False) -> list[str]:
    """A command that writes `mark` when SIGTERM or SIGINT reaches it and then exits 143
    (or, ignoring SIGTERM, only waits), and otherwise sleeps a minute."""
    return python(f"""
        import signal, sys, time
        from pathlib import Path
        def stop(signum, frame):
            Path({str(mark)!r}).write_text(signal.Signals(signum).name)
            if not {ignore_term}:
                sys.exit(128 + signum)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        Path({str(mark)!r} + ".started").write_text("")
        time.sleep(60)
        """)


def wait_for(path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_thread_shares_split_the_cpus_and_give_each_lane_one_at_least():
    assert thread_shares(2, 2) == [1, 1]
    assert thread_shares(3, 2) == [2, 1]
    assert thread_shares(16, 2) == [8, 8]
    assert thread_shares(1, 2) == [1, 1]
    assert thread_shares(5, 1) == [5]


def test_the_staged_chain_has_a_lane_of_its_own_and_one_cpu_runs_them_all_in_turn(tmp_path):
    two = training_lanes(tmp_path, QUICK, tmp_path / "base", tmp_path / "untrained", 2)
    assert [[c.name for c in lane.commands] for lane in two] == [
        ["voc-fcn8s (runs)"], ["voc-fcn8s-atonce (runs)", "voc-fcn32s (runs-scratch)"]]
    assert [lane.threads for lane in two] == [1, 1]
    logs = [c.log for lane in two for c in lane.commands]
    assert len(set(logs)) == 3 and all(log.parent == tmp_path / "logs" for log in logs)
    scratch = two[1].commands[1].argv
    assert f"RUNS={tmp_path / 'runs-scratch'}" in scratch
    assert f"WEIGHTS={tmp_path / 'untrained'}" in scratch

    one = training_lanes(tmp_path, QUICK, tmp_path / "base", tmp_path / "untrained", 1)
    assert len(one) == 1 and one[0].threads == 1
    assert [c.name for c in one[0].commands] == [c.name for lane in two for c in lane.commands]
    assert all(c.log is None for c in one[0].commands)   # on the terminal, as before


def test_lanes_run_in_order_side_by_side_with_their_thread_shares(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("CAFFE_NUM_THREADS", raising=False)
    record = tmp_path / "record"

    def step(name: str, pause: float) -> Command:
        return Command(name, python(f"""
            import os, time
            time.sleep({pause})
            with open({str(record)!r}, "a") as f:
                f.write("{name} " + os.environ["OPENBLAS_NUM_THREADS"] + " "
                        + os.environ["CAFFE_NUM_THREADS"] + "\\n")
            print("{name} says hello")
            """), tmp_path / "logs" / f"{name}.log")

    said: list[str] = []
    began = time.monotonic()
    run_lanes([Lane([step("a", 1.5)], 3), Lane([step("b", 0.2), step("c", 0.2)], 1)],
              os.environ, say=said.append)
    assert time.monotonic() - began < 6
    assert record.read_text().splitlines() == ["b 1 1", "c 1 1", "a 3 3"]
    assert (tmp_path / "logs/c.log").read_text() == "c says hello\n"
    assert [m.split(" in ")[0] for m in said if m.startswith("done")] == [
        "done b", "done c", "done a"]

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")   # the user's own choice stands
    record.unlink()
    run_lanes([Lane([step("d", 0)], 1)], os.environ, say=said.append)
    assert record.read_text() == "d 2 1\n"


BARS = ("voc-fcn32s: 100%|██████████| 600/600 [01:40<00:00, 6.0it/s, loss=3e+04]\n"
        "== voc-fcn16s: starting\nvoc-fcn16s:   0%|          | 0/600 [00:00<?, ?it/s]"
        "\rvoc-fcn16s:  52%|█████▎    | 315/600 [00:48<00:43,  6.58it/s, loss=2.674e+04]")


def test_progress_is_the_last_bar_a_training_drew_into_its_log(tmp_path):
    log = tmp_path / "voc-fcn8s.log"
    assert progress_of(log) is None and progress_of(None) is None
    log.write_text("start voc-fcn32s on CPU\n")
    assert progress_of(log) is None
    log.write_text("x" * 20000 + "\n" + BARS)
    assert progress_of(log) == "voc-fcn16s 315/600"


def test_lanes_writing_logs_say_their_progress_every_so_often(tmp_path, monkeypatch):
    monkeypatch.setattr(demo.lanes, "PROGRESS_S", 0.5)
    said: list[str] = []
    drawing = Command("voc-fcn8s (runs)", python(f"""
        import sys, time
        sys.stderr.write({BARS!r}); sys.stderr.flush()
        time.sleep(2)
        """), tmp_path / "a.log")
    quiet = Command("voc-fcn8s-atonce (runs)", python("import time; time.sleep(2)"),
                    tmp_path / "b.log")
    run_lanes([Lane([drawing], 1), Lane([quiet], 1)], os.environ, say=said.append)
    progress = [m for m in said if m.startswith("progress: ")]
    assert 1 <= len(progress) <= 5
    assert progress[-1] == ("progress: voc-fcn8s (runs): voc-fcn16s 315/600; "
                            "voc-fcn8s-atonce (runs): starting")


def test_a_failing_command_stops_the_others_and_is_one_line_naming_its_error_and_log(
        tmp_path):
    mark = tmp_path / "long"
    failing = Command("voc-fcn8s-atonce (runs)", python("""
        import sys, time
        time.sleep(0.5)
        print("schedule: error: data/x.png: not a label picture; make it again")
        sys.exit(1)
        """), tmp_path / "atonce.log")
    (tmp_path / "atonce.log").write_text("schedule: error: an earlier run's error\n")
    after = tmp_path / "never"
    began = time.monotonic()
    with pytest.raises(LaneFailed) as failed:
        run_lanes([Lane([Command("voc-fcn8s (runs)", sleeper(mark), tmp_path / "8s.log")], 1),
                   Lane([failing, Command("later", python(f"open({str(after)!r}, 'w')"))], 1)],
                  os.environ, say=lambda m: None)
    assert time.monotonic() - began < 20
    assert str(failed.value) == (
        f"voc-fcn8s-atonce (runs) failed (exit 1): data/x.png: not a label picture; make it "
        f"again (log: {tmp_path / 'atonce.log'}); stopped voc-fcn8s (runs); run the same "
        f"command again to resume")
    assert mark.read_text() == "SIGTERM"      # stopped through its own handler
    assert not after.exists()                  # nothing of the failed lane after it


DRIVER = """
import os, sys
from pathlib import Path
from core.processes import stopped
from demo.lanes import Command, Lane, run_lanes
marks = [Path(p) for p in sys.argv[2:]]
sys.path.insert(0, {tests!r})
from test_demo_lanes import sleeper
lanes = [Lane([Command(m.name, sleeper(m, ignore_term=sys.argv[1] == "ignore"))], 1)
         for m in marks]
try:
    run_lanes(lanes, os.environ, say=lambda m: None)
except KeyboardInterrupt as interrupt:
    sys.exit(stopped("demo", interrupt))
"""


def start_driver(tmp_path: Path, mode: str) -> tuple[subprocess.Popen, list[Path]]:
    marks = [tmp_path / "first", tmp_path / "second"]
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER.format(tests=str(REPO / "tests")), mode,
         *map(str, marks)], cwd=REPO, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    for mark in marks:
        wait_for(Path(f"{mark}.started"))
    return driver, marks


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_driver_reaches_every_running_command_and_exits_with_its_code(
        tmp_path, signum):
    driver, marks = start_driver(tmp_path, "obey")
    driver.send_signal(signum)
    _, stderr = driver.communicate(timeout=30)
    assert driver.returncode == 128 + signum
    name = signal.Signals(signum).name
    assert stderr == (f"demo: stopped ({name}; stopped first, second); run the same command "
                      f"again to resume\n")
    assert [m.read_text() for m in marks] == [name, name]


def test_a_second_signal_kills_commands_that_do_not_stop(tmp_path):
    driver, marks = start_driver(tmp_path, "ignore")
    driver.send_signal(signal.SIGTERM)
    for mark in marks:
        wait_for(mark)                       # the first one reached them; they go on
    time.sleep(0.3)
    assert driver.poll() is None
    driver.send_signal(signal.SIGTERM)
    driver.communicate(timeout=30)
    assert driver.returncode == 143
    survivors = subprocess.run(["pgrep", "-f", str(marks[0])], capture_output=True, text=True)
    assert survivors.stdout == ""


def test_a_driver_killed_outright_takes_its_commands_along(tmp_path):
    driver, marks = start_driver(tmp_path, "obey")
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    for mark in marks:
        wait_for(mark, seconds=10)           # the kernel's SIGTERM (PR_SET_PDEATHSIG)
        assert mark.read_text() == "SIGTERM"


def test_a_failure_is_told_by_its_own_lines_not_an_earlier_runs(tmp_path):
    log = tmp_path / "atonce.log"
    log.write_text("schedule: error: an earlier run's error\n")
    with pytest.raises(LaneFailed) as failed:
        run_lanes([Lane([Command("atonce", python("import sys; sys.exit(3)"), log)], 1)],
                  os.environ, say=lambda m: None)
    assert str(failed.value).startswith("atonce failed (exit 3): no error line (log: ")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_training_under_make_gets_the_signal_once_from_the_right_sender(tmp_path, signum):
    """The demo's commands are makes. GNU make passes SIGTERM on to its recipe itself and
    SIGINT to nothing, so the training under it must get SIGTERM from make alone and
    SIGINT from the driver alone: a second signal, arriving after the training took the
    first, aborts it without its snapshot (what CI once saw when both sent SIGTERM)."""
    mark = tmp_path / "signals"
    training = tmp_path / "training.py"
    training.write_text(textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        stops = {{signal.SIGTERM, signal.SIGINT}}
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        Path({str(mark)!r} + ".started").write_text("")
        got = [signal.sigwaitinfo(stops)]
        while (more := signal.sigtimedwait(stops, 1.0)) is not None:
            got.append(more)
        senders = {{os.getppid(): "make", {os.getpid()}: "driver"}}
        Path({str(mark)!r}).write_text("".join(
            f"{{signal.Signals(i.si_signo).name}} from {{senders.get(i.si_pid, i.si_pid)}}\\n"
            for i in got))
        sys.exit(128 + got[0].si_signo)
        """))
    (tmp_path / "Makefile").write_text(f"train:\n\t{sys.executable} {training}\n")
    lanes = [Lane([Command("voc-fcn8s (runs)", ["make", "-s", "-C", str(tmp_path), "train"],
                           tmp_path / "make.log")], 1)]

    def interrupt_once_started(message: str) -> None:
        if message.startswith("make"):
            def send():
                wait_for(Path(f"{mark}.started"))
                os.kill(os.getpid(), signum)
            threading.Thread(target=send, daemon=True).start()

    with pytest.raises(KeyboardInterrupt):
        run_lanes(lanes, os.environ, say=interrupt_once_started)
    sender = "make" if signum == signal.SIGTERM else "driver"
    assert mark.read_text() == f"{signal.Signals(signum).name} from {sender}\n"
