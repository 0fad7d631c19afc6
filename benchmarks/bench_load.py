"""The app under load: concurrent browser sessions against one ``streamlit run app.py`` on the demo cohort.

``SESSIONS`` headless Chromium sessions (one browser, a context each: separate Streamlit sessions), driven at once
(playwright's async API): Home -> load the demo cohort (2,000 x 1,000, written once by ``snpgen simulate`` as
``make demo`` does) -> Panel (top ``PANEL``) -> Train (``EPOCHS`` VAE epochs, a background process) -> Generate ->
Explore (the evaluation report). A start refused because the server's training slots are full
(``SNPGEN_MAX_TRAINING_JOBS``) is "told to wait": the session waits 5 s and clicks again, as a user would.

Checked: every session finishes; none shows another session's run (the run ids each Train page shows, looked for
on every page of every other session); a new session given another session's run id in ``?run=`` gets an empty
workspace. Measured: wall time per step, refused starts, peak resident memory of the server and its training
processes, load average. Then the fault: one more session starts a long run, its training process is killed from
outside (SIGKILL); the page must report the failure and its Retry button must start the run again.

Run: ``.venv/bin/python benchmarks/bench_load.py [SESSIONS] [EPOCHS]`` (default 8 sessions, 5 VAE epochs; needs
the ``chromium`` package).
"""
from __future__ import annotations

import asyncio
import glob
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import machine  # noqa: E402

SESSIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 8
EPOCHS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
PANEL = 200
STEP_TIMEOUT_MS = 900_000
T0 = time.perf_counter()


def say(index, what: str) -> None:
    print(f"[{time.perf_counter() - T0:6.0f} s] session {index}: {what}", flush=True)


def process_tree(root: int) -> dict[int, tuple[int, str]]:
    """{pid: (RSS KiB, command line)} of ``root`` and all its descendants."""
    parent, info = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(entry)
        parent[pid] = int(fields.get("PPid", "0").strip() or 0)
        info[pid] = (int(fields["VmRSS"].split()[0]) if "VmRSS" in fields else 0, cmd)
    tree = {}
    for pid in info:
        p = pid
        while p and p != root:
            p = parent.get(p, 0)
        if p == root:
            tree[pid] = info[pid]
    return tree


class Monitor(threading.Thread):
    """Peak RSS of the server's process tree and peak 1-minute load average, sampled twice a second."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.peak_mib, self.peak_load, self.peak_training = root, 0.0, 0.0, 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            tree = process_tree(self.root)
            self.peak_mib = max(self.peak_mib, sum(r for r, _ in tree.values()) / 1024)
            self.peak_training = max(self.peak_training, len(training_pids(tree)))
            self.peak_load = max(self.peak_load, os.getloadavg()[0])
            time.sleep(0.5)


def training_pids(tree) -> list[int]:
    return [pid for pid, (_, cmd) in tree.items() if "spawn_main" in cmd]


async def idle(page, quiet: float = 0.4, timeout: float = 300.0) -> None:
    await page.wait_for_timeout(150)
    deadline, since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        state = await page.evaluate(
            "() => document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')")
        if state == "notRunning":
            since = since or time.monotonic()
            if time.monotonic() - since >= quiet:
                return
        else:
            since = None
        await page.wait_for_timeout(100)
    raise TimeoutError("the app stayed busy")


async def go_to(page, title: str) -> None:
    await page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    await idle(page)


async def no_exception(page, where: str) -> None:
    shown = page.locator('[data-testid="stException"]')
    if await shown.count():
        raise AssertionError(f"{where}: {(await shown.first.inner_text())[:300]}")


async def demo_and_panel(page, url: str) -> None:
    await page.goto(url)
    await page.get_by_role("heading", name="SNPgen Studio").wait_for()
    await idle(page)
    await page.get_by_role("button", name="Load the demo cohort").click()
    await page.get_by_role("heading", name="Cohort: demo").wait_for(timeout=STEP_TIMEOUT_MS)
    await idle(page)


async def select_panel(page) -> None:
    await go_to(page, "Panel")
    await page.get_by_role("spinbutton", name="SNPs in the panel (top K)").fill(str(PANEL))
    await page.get_by_role("button", name="Select panel").click()
    await page.get_by_text("Linkage disequilibrium in the panel").wait_for(timeout=STEP_TIMEOUT_MS)
    await idle(page)


async def start_training(page, epochs: int) -> int:
    """Click Start until the server accepts; returns how many times it said to wait."""
    await go_to(page, "Train")
    waits = 0
    while True:
        await page.get_by_role("spinbutton", name="Epochs (VAE)").fill(str(epochs))
        await page.get_by_role("button", name="Start training").click()
        await idle(page)
        if await page.get_by_text("server is busy").count():
            waits += 1
            if waits > 100:
                raise TimeoutError("refused more than 100 times")
            await page.wait_for_timeout(5000)
            await go_to(page, "Train")  # a fresh page: the old refusal is not mistaken for a new one
            continue
        try:
            await page.locator('[data-testid="stProgress"]').or_(page.get_by_text("finished in")).first.wait_for(
                timeout=30_000)
            return waits
        except Exception:  # noqa: BLE001 - a click that landed during a rerun is dropped: click again, as a user
            say("?", "start click dropped (page was rerunning): clicking again")


async def session(browser, url: str, index: int, results: dict) -> None:
    times: dict[str, float] = {}
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    step = "demo"
    try:
        t0 = t = time.perf_counter()
        await demo_and_panel(page, url)
        times["demo"] = time.perf_counter() - t
        say(index, "demo loaded")
        step, t = "panel", time.perf_counter()
        await select_panel(page)
        times["panel"] = time.perf_counter() - t
        say(index, "panel selected")
        step, t = "train", time.perf_counter()
        waits = await start_training(page, EPOCHS)
        say(index, f"training started after {waits} refusals")
        await page.get_by_text("finished in").wait_for(timeout=STEP_TIMEOUT_MS)
        say(index, "training finished")
        await idle(page)
        text = await page.locator('[data-testid="stMain"]').inner_text()
        run = re.search(r"Run ([0-9a-f]{8}) finished", text).group(1)
        times["train"] = time.perf_counter() - t
        step, t = "generate", time.perf_counter()
        await go_to(page, "Generate")
        await page.get_by_role("button", name="Generate").click()
        await page.get_by_role("heading", name="Preview").wait_for(timeout=STEP_TIMEOUT_MS)
        await idle(page)
        times["generate"] = time.perf_counter() - t
        say(index, "generated")
        step, t = "explore", time.perf_counter()
        await go_to(page, "Explore")
        await page.get_by_text("Report card").wait_for(timeout=STEP_TIMEOUT_MS)
        await idle(page)
        await no_exception(page, "Explore")
        times["explore"] = time.perf_counter() - t
        times["total"] = time.perf_counter() - t0
        results[index] = {"ok": True, "times": times, "waits": waits, "run": run, "page": page,
                          "link": re.search(r"run=([^&]+)", page.url).group(1)}
        say(index, "report shown")
    except Exception as err:  # noqa: BLE001 - reported
        shot = Path(tempfile.gettempdir()) / f"bench-load-session{index}.png"
        try:
            await page.screenshot(path=str(shot), full_page=True)
        except Exception:  # noqa: BLE001
            pass
        results[index] = {"ok": False, "times": times, "waits": 0,
                          "error": f"at {step}: {type(err).__name__}: {str(err)[:400]} (screenshot {shot})"}


async def isolation(browser, url: str, results: dict, workspaces_before: set) -> list[str]:
    problems = []
    done = [r for r in results.values() if r["ok"]]
    if len({r["link"] for r in done}) != len(done) or any(r["link"].startswith(r["run"]) for r in done):
        problems.append("links are shared or are the run id")
    for r in done:
        others = [o["run"] for o in done if o is not r]
        for title in ("Home", "Data", "Panel", "Train", "Generate", "Explore", "Export"):
            await go_to(r["page"], title)
            text = await r["page"].locator('[data-testid="stMain"]').inner_text()
            if any(o in text for o in others):
                problems.append(f"a session shows another session's run on {title}")
    # a stranger holding a run id (a folder name, a log line) gets an empty workspace of its own
    run_dirs = [p for p in glob.glob(os.path.join(tempfile.gettempdir(), "snpgen-session-*", "runs", "*"))
                if Path(p).parent.parent.name not in workspaces_before]
    if run_dirs:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(f"{url}/?run={Path(run_dirs[0]).name}")
        await idle(page)
        await go_to(page, "Data")
        if await page.get_by_role("heading", name="Cohort: demo").count():
            problems.append("a run id in the URL gave another session's cohort")
        await context.close()
    else:
        problems.append("no run folder found to try as a stranger")
    return problems


async def fault(browser, url: str, server_pid: int) -> dict:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    await demo_and_panel(page, url)
    await select_panel(page)
    before = set(training_pids(process_tree(server_pid)))
    await start_training(page, 3000)
    await page.wait_for_timeout(3000)
    new = [p for p in training_pids(process_tree(server_pid)) if p not in before]
    if not new:
        return {"killed": False}
    os.kill(new[0], signal.SIGKILL)
    t = time.perf_counter()
    await page.get_by_text("ended unexpectedly").wait_for(timeout=120_000)
    reported = time.perf_counter() - t
    await idle(page)
    await page.get_by_role("button", name="Retry with the same settings").click()
    await page.locator('[data-testid="stProgress"]').wait_for(timeout=120_000)
    retried = True
    await page.get_by_role("button", name="Cancel").click()
    await idle(page)
    await context.close()
    return {"killed": True, "reported_after_s": round(reported, 1), "retry_started": retried}


async def run_all(url: str, server_pid: int) -> None:
    from playwright.async_api import async_playwright

    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

    workspaces_before = {Path(p).name for p in glob.glob(os.path.join(tempfile.gettempdir(), "snpgen-session-*"))}
    monitor = Monitor(server_pid)
    monitor.start()
    base_mib = sum(r for r, _ in process_tree(server_pid).values()) / 1024
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        results: dict = {}
        t0 = time.perf_counter()
        await asyncio.gather(*(session(browser, url, i, results) for i in range(SESSIONS)))
        wall = time.perf_counter() - t0
        problems = await isolation(browser, url, results, workspaces_before)
        fault_result = await fault(browser, url, server_pid)
        await browser.close()
    monitor.stop.set()
    ok = [r for r in results.values() if r["ok"]]
    print(f"\nsessions finished: {len(ok)} of {SESSIONS}; refused starts (told to wait): "
          f"{sum(r['waits'] for r in results.values())} in {sum(r['waits'] > 0 for r in results.values())} sessions")
    print(f"wall time for all sessions: {wall:.0f} s; peak RSS of the server and its training processes: "
          f"{monitor.peak_mib:.0f} MiB (idle server {base_mib:.0f} MiB); at most {monitor.peak_training} training "
          f"processes at once; peak load average {monitor.peak_load:.1f}")
    print("\n| step | median (s) | max (s) |\n| --- | --- | --- |")
    for step in ("demo", "panel", "train", "generate", "explore", "total"):
        values = [r["times"][step] for r in ok if step in r["times"]]
        if values:
            print(f"| {step} | {statistics.median(values):.1f} | {max(values):.1f} |")
    print(f"\nisolation problems: {problems or 'none'}")
    print(f"fault (training process killed from outside): {fault_result}")
    for i, r in sorted(results.items()):
        if not r["ok"]:
            print(f"session {i} failed: {r['error']}")


def main() -> None:
    import subprocess
    import urllib.request

    from snpgen_core.simulate import simulate_cohort, write_cohort
    from tests.test_browser import free_port

    root = Path(tempfile.mkdtemp(prefix="bench-load-"))
    demo = root / "demo" / "demo"
    write_cohort(simulate_cohort(n=2000, n_snps=1000, seed=0), demo)  # what `make demo` writes
    slots = os.environ.get("SNPGEN_MAX_TRAINING_JOBS", str(max(4, os.cpu_count() or 1)))
    env = {k: v for k, v in os.environ.items() if k != "SNPGEN_EXPORT_DIR"}
    env.update({"SNPGEN_DEMO_PREFIX": str(demo), "SNPGEN_MAX_TRAINING_JOBS": slots})
    port = free_port()
    log = open(root / "server.log", "w")
    print(f"server log: {root / 'server.log'}")
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless",
                               "true", "--server.port", str(port), "--server.address", "127.0.0.1",
                               "--browser.gatherUsageStats", "false"], cwd=REPO, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        print(f"# bench_load: {SESSIONS} browser sessions, demo 2,000 x 1,000, panel {PANEL}, {EPOCHS} VAE epochs, "
              f"{slots} training slots")
        print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.1f}")
        asyncio.run(run_all(url, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
