"""The app's responsiveness, measured in a real headless Chromium against ``streamlit run app.py``.

1. Page render time once its data exist: the built-in demo (2,000 x 1,000, panel of 500 SNPs, a short run, a
   synthetic cohort of holdout size, its report) is prepared, then each page is opened from the sidebar five
   times; the time is from the click to the end of the script run it triggers (target < 2 s).
2. Click response while training runs: a long training run is started, then page switches are clicked (a full
   script rerun each) and timed the same way (target < 0.5 s).
3. With ``../shared/data`` present: the real 1000 Genomes AGBL4 cohort (2,504 x 4,050, PLINK 1.9 logistic GWAS,
   simulated CASE trait) uploaded through the browser's file inputs; upload-and-check time and page render times.

Run: ``.venv/bin/python benchmarks/bench_app.py`` (needs the ``chromium`` package; about five minutes).
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import machine  # noqa: E402
from tests.test_browser import CHROMIUM, app_server, browser_page, pick, upload_files, wait_idle  # noqa: E402

AGBL4 = REPO.parent / "shared" / "data" / "1000g_agbl4"
REPEATS = 5
SCRIPT_STATE = "() => document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')"


def timed_click(page, locator, timeout_s: float = 120.0) -> float:
    """Seconds from a click to the end of the script run it starts (the app back to notRunning)."""
    t0 = time.perf_counter()
    locator.click()
    try:  # the run may be over before a poll sees it: then the first poll already finds notRunning
        page.wait_for_function(f"() => ({SCRIPT_STATE})() === 'running'", timeout=1500, polling=10)
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: the run was too quick to be seen
        pass
    page.wait_for_function(f"() => ({SCRIPT_STATE})() === 'notRunning'", timeout=timeout_s * 1000, polling=10)
    return time.perf_counter() - t0


def nav(page, title: str):
    return page.locator('[data-testid="stSidebarNav"] a', has_text=title).first


def render_times(page, titles) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {t: [] for t in titles}
    for _ in range(REPEATS):
        for title in titles:
            times[title].append(timed_click(page, nav(page, title)))
            wait_idle(page, quiet=0.3)
    return times


def summary(times: dict[str, list[float]]) -> list[str]:
    return [f"| {name} | {statistics.median(v):.2f} | {max(v):.2f} |" for name, v in times.items()]


def prepare_demo(page) -> None:
    page.get_by_role("button", name="Load the demo cohort").click()
    page.get_by_role("heading", name="Cohort: demo").wait_for(timeout=120_000)
    wait_idle(page)
    nav(page, "Panel").click()
    wait_idle(page)
    page.get_by_role("spinbutton", name="SNPs in the panel (top K)").fill("500")
    page.get_by_role("button", name="Select panel").click()
    page.get_by_text("Linkage disequilibrium in the panel").wait_for(timeout=120_000)
    wait_idle(page)
    nav(page, "Train").click()
    wait_idle(page)
    page.get_by_role("spinbutton", name="Epochs (VAE)").fill("2")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("finished in").wait_for(timeout=600_000)
    wait_idle(page)
    nav(page, "Generate").click()
    wait_idle(page)
    page.get_by_role("button", name="Generate").click()
    page.get_by_role("heading", name="Preview").wait_for(timeout=120_000)
    wait_idle(page)
    nav(page, "Explore").click()
    page.get_by_text("Report card").wait_for(timeout=600_000)  # the evaluation runs once, on first visit
    wait_idle(page)


def main() -> None:
    if CHROMIUM is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    print(f"machine: {machine()}")
    lines = ["| page | median s | max s |", "| --- | --- | --- |"]
    pages = ["Home", "Data", "Panel", "Train", "Generate", "Explore", "Compare", "Export"]
    with app_server({"SNPGEN_DEMO_PREFIX": str(REPO / "no-demo-files" / "demo")}, timeout=120) as url, \
            browser_page() as page:
        page.goto(url)
        page.get_by_role("heading", name="SNPgen Studio").wait_for()
        wait_idle(page)
        t0 = time.perf_counter()
        prepare_demo(page)
        print(f"demo prepared (simulate, panel, 2-epoch run, generate, evaluate) in {time.perf_counter() - t0:.1f} s")
        render = render_times(page, pages)
        print("\n1. page render, demo 2,000 x 1,000, panel 500, data present:")
        print("\n".join(lines + summary(render)))

        # 2. responsiveness while a long run trains in the background
        nav(page, "Train").click()
        wait_idle(page)
        page.get_by_role("spinbutton", name="Epochs (VAE)").fill("1000")
        page.get_by_role("button", name="Start training").click()
        page.locator('[data-testid="stProgress"]').wait_for(timeout=60_000)
        page.wait_for_timeout(3000)  # well into the first epochs
        busy = render_times(page, ["Home", "Data", "Train", "Generate", "Compare"])
        nav(page, "Train").click()
        wait_idle(page)
        still = page.locator('[data-testid="stProgress"]').count() > 0
        print(f"\n2. click response while training runs (run still going at the end: {still}):")
        print("\n".join(lines + summary(busy)))
        cancel = page.get_by_role("button", name="Cancel")
        if cancel.count():
            print(f"cancel click answered in {timed_click(page, cancel):.2f} s")

    if not AGBL4.exists():
        print("\n3. skipped: ../shared/data/1000g_agbl4 is absent")
        return
    with app_server({}, timeout=120) as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("heading", name="SNPgen Studio").wait_for()
        nav(page, "Data").click()
        wait_idle(page)
        upload_files(page, 0, [AGBL4 / f"agbl4{s}" for s in (".bed", ".bim", ".fam")])
        upload_files(page, 1, AGBL4 / "gwas_case.assoc.logistic")
        upload_files(page, 2, AGBL4 / "pheno.tsv")
        pick(page, "Phenotype column", "CASE")
        took = timed_click(page, page.get_by_role("button", name="Check and load"))
        page.get_by_role("heading", name="Cohort: agbl4").wait_for()
        print(f"\n3. real cohort 1000G AGBL4 (2,504 x 4,050): check and load after upload {took:.2f} s")
        nav(page, "Panel").click()
        wait_idle(page)
        took = timed_click(page, page.get_by_role("button", name="Select panel"), timeout_s=600)
        print(f"panel of 1,000 SNPs (QC, clumping, LD heatmap) {took:.2f} s")
        wait_idle(page)
        render = render_times(page, ["Data", "Panel", "Home"])
        print("\n".join(lines + summary(render)))


if __name__ == "__main__":
    main()
