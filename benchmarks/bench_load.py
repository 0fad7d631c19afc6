"""The app under load: concurrent sessions (Streamlit's testing client, ``AppTest``) on the demo cohort.

Each of ``SESSIONS`` sessions, in its own thread and all at once: open the app, load the demo cohort (2,000 x
1,000, written once by ``snpgen simulate`` as ``make demo`` does), select a panel, train (a short run in a
background process), generate a synthetic cohort and open Explore (the evaluation report). A session whose start
is refused because the server's training slots are full (``SNPGEN_MAX_TRAINING_JOBS``) is "told to wait": it waits
and tries again. Checked for every session: it finishes, its workspace is its own (no other session's workspace
path, run id or cohort shown on any of its pages; a ``?run=`` of another session's run id gives a fresh
workspace). Measured: wall time per step, waits, peak resident memory of the server process plus its training
processes, load average.

Then the fault: one more session starts a long run, its training process is killed from outside (SIGKILL); the
session must show the failure and a retry that starts again.

Run: ``.venv/bin/python benchmarks/bench_load.py [SESSIONS] [EPOCHS]`` (default 8 sessions, 5 VAE epochs).
"""
from __future__ import annotations

import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import machine  # noqa: E402

SESSIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 8
EPOCHS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
PANEL = 200
APP = str(REPO / "app.py")


def rss_tree_mib() -> float:
    """Resident memory of this process and all its descendants (training processes), MiB."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        pid = int(entry)
        parent[pid] = int(fields.get("PPid", "0").strip() or 0)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
    me, total = os.getpid(), 0
    for pid in rss:
        p = pid
        while p and p != me:
            p = parent.get(p, 0)
        if p == me:
            total += rss[pid]
    return total / 1024


class Monitor(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mib, self.peak_load, self.stop = 0.0, 0.0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak_mib = max(self.peak_mib, rss_tree_mib())
            self.peak_load = max(self.peak_load, os.getloadavg()[0])
            time.sleep(0.5)


def no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def session(index: int, results: dict, barrier: threading.Barrier) -> None:
    from streamlit.testing.v1 import AppTest

    times: dict[str, float] = {}
    waits = 0
    try:
        barrier.wait()
        t0 = time.perf_counter()
        at = AppTest.from_file(APP, default_timeout=900).run()
        at.button[0].click().run()  # load the demo
        no_exceptions(at)
        ws = at.session_state["workspace"]
        times["demo"] = time.perf_counter() - t0
        t = time.perf_counter()
        at.switch_page("pages/panel.py").run()
        at.number_input[0].set_value(PANEL)
        at.button(key="FormSubmitter:panel_form-Select panel").click().run()
        no_exceptions(at)
        times["panel"] = time.perf_counter() - t
        t = time.perf_counter()
        at.switch_page("pages/train.py").run()
        while True:
            at.number_input[0].set_value(EPOCHS)
            at.button(key="FormSubmitter:train_form-Start training").click().run()
            no_exceptions(at)
            if ws.active_job() is not None or ws.current_run() is not None:
                break
            assert any("server is busy" in e.value for e in at.error), [e.value for e in at.error]
            waits += 1  # told to wait: try again shortly, as a user would
            time.sleep(3)
        job = ws.active_job() or ws.current_run()
        assert job.wait(1800) and job.state == "done", job.error
        times["train"] = time.perf_counter() - t
        t = time.perf_counter()
        at.switch_page("pages/generate.py").run()
        at.number_input[0].set_value(400)
        at.button(key="FormSubmitter:generate_form-Generate").click().run()
        no_exceptions(at)
        assert ws.synthetic is not None and ws.synthetic.is_relative_to(ws.path)
        times["generate"] = time.perf_counter() - t
        t = time.perf_counter()
        at.switch_page("pages/explore.py").run()
        no_exceptions(at)
        assert ws.report is not None
        times["explore"] = time.perf_counter() - t
        times["total"] = time.perf_counter() - t0
        results[index] = {"times": times, "waits": waits, "ws": ws, "job": job, "at": at, "ok": True}
    except Exception:  # noqa: BLE001 - reported in the table
        results[index] = {"times": times, "waits": waits, "ok": False, "error": traceback.format_exc()}


def isolation(results: dict) -> list[str]:
    """Every page of every session, checked for any other session's workspace path, run id or link."""
    from streamlit.testing.v1 import AppTest

    problems = []
    done = [r for r in results.values() if r["ok"]]
    paths = {str(r["ws"].path) for r in done}
    if len(paths) != len(done):
        problems.append("two sessions share a workspace folder")
    for r in done:
        at, mine = r["at"], r["ws"]
        others = [o for o in done if o is not r]
        for page in ("home", "data", "panel", "train", "generate", "explore", "export"):
            at.switch_page(f"pages/{page}.py").run()
            shown = " ".join(str(getattr(e, "value", "")) for e in at.main)
            for o in others:
                if str(o["ws"].path) in shown or o["job"].run_id[:8] in shown or o["job"].link in shown:
                    problems.append(f"session shows another session's data on {page}")
        if r["at"].session_state["workspace"] is not mine:
            problems.append("a session's workspace changed")
    if done:  # another session's run id in the URL gives a fresh workspace, never theirs
        stranger = AppTest.from_file(APP, default_timeout=300)
        stranger.query_params["run"] = done[0]["job"].run_id
        stranger.run()
        if stranger.session_state["workspace"].path in {r["ws"].path for r in done}:
            problems.append("a run id re-attached another session's workspace")
    return problems


def fault() -> dict:
    """A training process killed from outside: reported as failed, with a retry that starts again."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=600).run()
    at.button[0].click().run()
    ws = at.session_state["workspace"]
    at.switch_page("pages/panel.py").run()
    at.number_input[0].set_value(PANEL)
    at.button(key="FormSubmitter:panel_form-Select panel").click().run()
    at.switch_page("pages/train.py").run()
    at.number_input[0].set_value(3000)
    at.button(key="FormSubmitter:train_form-Start training").click().run()
    job = ws.active_job()
    time.sleep(5)
    t = time.perf_counter()
    os.kill(job.pid, signal.SIGKILL)
    job.wait(120)
    reported = time.perf_counter() - t
    at.run()
    shown = [e.value for e in at.error]
    at.button(key=f"retry_{job.run_id}").click().run()
    retry = ws.active_job()
    out = {"state": job.state, "reported_s": reported, "shown": shown[:1],
           "retry_started": retry is not None and retry is not job}
    if retry is not None:
        retry.cancel()
        retry.wait(120)
    return out


def main() -> None:
    from snpgen_core.simulate import simulate_cohort, write_cohort
    from snpgen_core.workspace import MAX_TRAINING_JOBS, stop_all_jobs

    root = Path(tempfile.mkdtemp(prefix="bench-load-"))
    demo = root / "demo" / "demo"
    write_cohort(simulate_cohort(n=2000, n_snps=1000, seed=0), demo)  # what `make demo` writes
    os.environ["SNPGEN_DEMO_PREFIX"] = str(demo)
    os.environ.pop("SNPGEN_EXPORT_DIR", None)
    print(f"# bench_load: {SESSIONS} sessions, demo 2,000 x 1,000, panel {PANEL}, {EPOCHS} VAE epochs, "
          f"{MAX_TRAINING_JOBS} training slots")
    print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.1f}")
    monitor = Monitor()
    monitor.start()
    base_mib = rss_tree_mib()
    results: dict = {}
    barrier = threading.Barrier(SESSIONS)
    threads = [threading.Thread(target=session, args=(i, results, barrier)) for i in range(SESSIONS)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    problems = isolation(results)
    fault_result = fault()
    monitor.stop.set()
    stop_all_jobs()

    ok = [r for r in results.values() if r["ok"]]
    print(f"\nsessions finished: {len(ok)} of {SESSIONS}; told to wait (refused starts): "
          f"{sum(r['waits'] for r in results.values())} in {sum(r['waits'] > 0 for r in results.values())} sessions")
    print(f"wall time for all sessions: {wall:.0f} s; peak RSS (server + training processes): "
          f"{monitor.peak_mib:.0f} MiB (at start {base_mib:.0f} MiB); peak load average {monitor.peak_load:.1f}")
    print("\n| step | median (s) | max (s) |\n| --- | --- | --- |")
    for step in ("demo", "panel", "train", "generate", "explore", "total"):
        values = [r["times"][step] for r in ok if step in r["times"]]
        if values:
            print(f"| {step} | {statistics.median(values):.1f} | {max(values):.1f} |")
    print(f"\nisolation problems: {problems or 'none'}")
    print(f"fault: {fault_result}")
    for i, r in results.items():
        if not r["ok"]:
            print(f"session {i} failed:\n{r['error']}")


if __name__ == "__main__":
    main()
