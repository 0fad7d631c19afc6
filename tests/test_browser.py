"""End to end in a real headless Chromium: ``streamlit run app.py`` as a subprocess, the demo flow clicked through
every page, a PLINK trio uploaded through the browser's file input, no exception element anywhere, and a
screenshot of each page (``benchmarks/screenshots.py`` runs the same walk to make ``docs/screenshots/``).

Chromium comes from the system (Debian package ``chromium``); ``playwright install`` is never used. Without it the
tests are skipped and say why.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
EXCEPTION = '[data-testid="stException"]'

# tiny settings keep the browser walk to about a minute on 2 cores
TINY_ENV = {"SNPGEN_DEMO_N": "400", "SNPGEN_DEMO_SNPS": "300"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium'); "
                                                "the browser tests need it and never download one"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(env: dict | None = None, timeout: float = 60.0, args: tuple = ()):
    """``streamlit run app.py`` on a free port (``args``: more ``--option value`` flags); yields its URL once
    ``/_stcore/health`` answers, stops it after."""
    port = free_port()
    full_env = {**os.environ, "SNPGEN_DEMO_PREFIX": str(REPO / "no-demo-files" / "demo"), **(env or {})}
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited ({proc.returncode}): {proc.stdout.read().decode()[-2000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError("streamlit did not become healthy in time")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 800):
    """A fresh headless Chromium page (its own browser context: a new Streamlit session)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def wait_idle(page, timeout: float = 90.0, quiet: float = 0.4) -> None:
    """Wait until the app's script has been idle (``data-test-script-state`` = notRunning) for ``quiet`` seconds:
    a click's rerun, and the page switch or rerun it may trigger, are over."""
    page.wait_for_timeout(150)  # the run starts a moment after the click
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        state = page.evaluate(
            "() => document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')")
        now = time.monotonic()
        if state == "notRunning" and page.locator('[data-testid="stSkeleton"]').count() == 0:
            idle_since = idle_since or now
            if now - idle_since >= quiet:
                return
        else:
            idle_since = None
        page.wait_for_timeout(100)
    raise TimeoutError(f"the app was still running after {timeout} s")


def upload_files(page, index: int, paths) -> None:
    """Put files into the ``index``-th file uploader and wait until the browser has sent them all."""
    paths = [str(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    uploader = page.locator('[data-testid="stFileUploader"]').nth(index)
    chips = uploader.locator('[data-testid="stFileChip"]')
    expected = chips.count() + len(paths)
    uploader.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(paths)
    deadline = time.monotonic() + 30
    while chips.count() < expected and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    page.wait_for_timeout(500)  # the chips appear as the upload starts; give the bytes time to arrive


def go_to(page, title: str) -> None:
    """Click a page in the sidebar navigation and wait for its title."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    wait_idle(page)


def assert_no_exception(page, where: str) -> None:
    shown = page.locator(EXCEPTION)
    assert shown.count() == 0, f"{where}: exception shown: {shown.first.inner_text()[:500]}"


def screenshot(page, name: str, folder: Path = SCREENSHOTS) -> Path:
    """Save the whole page as ``folder/<name>.png`` at 1280 px wide, the laptop size the pages are checked at (the
    app scrolls inside its main block, so the 1280 x 800 viewport is stretched to fit it, then put back)."""
    folder.mkdir(parents=True, exist_ok=True)
    height = page.evaluate(
        "() => Math.max(document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 0, 800)")
    page.set_viewport_size({"width": 1280, "height": min(int(height) + 40, 4000)})
    page.wait_for_timeout(400)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 800})
    return path


def pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the selectbox labelled ``label``: open it, click the option, wait for the rerun."""
    box = page.locator('[data-testid="stSelectbox"]', has_text=label).first
    box.wait_for(state="visible")
    choice = page.get_by_role("option", name=option, exact=True)
    for _ in range(5):  # a click while an expander above still animates open can miss the dropdown
        box.locator("input").click()
        try:
            choice.wait_for(state="visible", timeout=3000)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: try the click again
            page.keyboard.press("Escape")
    choice.click()
    wait_idle(page)
    shown = box.inner_text() + " " + box.locator("input").input_value()
    assert option in shown, f"{label}: {option} was not chosen ({shown!r})"


def tab_to(page, name: str, limit: int = 120, tags=("BUTTON", "A", "INPUT")) -> None:
    """Press Tab until the focused control (a button, link or input; ``tags``) reads ``name``: every step must be
    reachable by keyboard."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        tag, text = page.evaluate("() => [document.activeElement?.tagName, (document.activeElement?.innerText || "
                                  "document.activeElement?.getAttribute('aria-label') || '').trim()]")
        # a button's text may start with its icon's ligature name ("play_arrow")
        if tag in tags and text.splitlines()[-1:] == [name]:
            return
    raise AssertionError(f"{name!r} is not reachable with the Tab key")


def export_zip(page, path, reason: str, keyboard: bool = False):
    """On the Export page: pass the release gate when the cohort is graded warn or fail (ticked, with ``reason``),
    export (by Tab + Enter with ``keyboard``, else a click), download the zip to ``path``; returns ``path``."""
    confirm = page.get_by_text("I have read the report card")
    if confirm.count():
        confirm.click()
        page.get_by_label("Why it is released anyway (recorded in the model card)").fill(reason)
    if keyboard:
        tab_to(page, "Export", tags=("BUTTON",))
        page.keyboard.press("Enter")
    else:
        page.get_by_role("button", name="Export", exact=True).click()
    page.get_by_role("button", name="Download zip").wait_for(timeout=120_000)
    wait_idle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download zip").click()
    download.value.save_as(path)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    exports = tmp_path_factory.mktemp("exports")
    with app_server({**TINY_ENV, "SNPGEN_EXPORT_DIR": str(exports),
                     "NUMBA_CACHE_DIR": str(REPO / ".numba_cache")}) as url:
        yield url


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory):
    from snpgen_core.simulate import simulate_cohort, write_cohort

    prefix = tmp_path_factory.mktemp("browser_cohort") / "browsercohort"
    write_cohort(simulate_cohort(n=200, n_snps=150, seed=11), prefix)
    return prefix


def test_browser__upload_plink_trio_through_the_file_input(server, cohort_files):
    with browser_page() as page:
        page.goto(server)
        page.get_by_role("heading", name="SNPgen Studio").wait_for()
        go_to(page, "Data")
        # first a wrong file: the CLI's one-line message, no exception, the page still works
        bad = cohort_files.parent / "notes.txt"
        bad.write_text("not genotypes\n")
        upload_files(page, 0, bad)
        page.get_by_role("button", name="Check and load").click()
        wait_idle(page)
        error = page.locator('[data-testid="stAlertContentError"]').first.inner_text()
        assert "notes.txt: not a PLINK 1 binary file" in error
        assert_no_exception(page, "bad upload")
        page.locator('[data-testid="stFileChipDeleteBtn"]').first.click()  # drop the wrong file
        page.locator('[data-testid="stFileChipName"]', has_text="notes.txt").wait_for(state="detached")
        upload_files(page, 0, [f"{cohort_files}{s}" for s in (".bed", ".bim", ".fam")])
        upload_files(page, 1, f"{cohort_files}.gwas.tsv")
        page.get_by_role("button", name="Check and load").click()
        wait_idle(page)
        page.get_by_text("Cohort: browsercohort").wait_for()
        metrics = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
        assert metrics[:2] == ["200", "150"]
        assert_no_exception(page, "upload")


def walk_demo_flow(url: str, shots: Path, downloads: Path, *, n_individuals: int, top: int, epochs: int) -> None:
    """Home's button -> Data -> Panel -> Train (live progress) -> Generate -> Explore (with UMAP) -> Export (zip
    download) in a fresh browser session, checking each page for exceptions and saving its screenshot into
    ``shots``. Also what ``benchmarks/screenshots.py`` runs, with realistic settings, for docs/screenshots."""
    import zipfile

    with browser_page() as page:
        page.goto(url)
        page.get_by_role("heading", name="SNPgen Studio").wait_for()
        wait_idle(page)
        assert_no_exception(page, "Home")
        screenshot(page, "home", shots)

        tab_to(page, "Load the demo cohort")  # the keyboard reaches the first step, Enter takes it
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Cohort: demo").wait_for(timeout=120_000)
        wait_idle(page)
        assert page.locator('[data-testid="stMetricValue"]').first.inner_text() == f"{n_individuals:,}"
        assert_no_exception(page, "Data")
        screenshot(page, "data", shots)

        go_to(page, "Panel")
        page.get_by_role("spinbutton", name="SNPs in the panel (top K)").fill(str(top))
        tab_to(page, "Select panel", tags=("BUTTON",))  # each page's main action is reachable by keyboard
        page.keyboard.press("Enter")
        page.get_by_text("Linkage disequilibrium in the panel").wait_for(timeout=120_000)
        wait_idle(page)
        assert_no_exception(page, "Panel")
        screenshot(page, "panel", shots)

        go_to(page, "Train")
        page.get_by_role("spinbutton", name="Epochs (VAE)").fill(str(epochs))
        tab_to(page, "Start training", tags=("BUTTON",))
        page.keyboard.press("Enter")
        page.locator('[data-testid="stProgress"]').wait_for(timeout=120_000)
        if epochs >= 10:  # long enough to catch it live: progress bar, ETA, loss curves so far
            page.locator('[data-testid="stPlotlyChart"]').wait_for(timeout=300_000)
            page.wait_for_timeout(8000)
            assert_no_exception(page, "Train (running)")
            screenshot(page, "train_running", shots)
        page.get_by_text("finished in").wait_for(timeout=900_000)  # the live fragment ends with a full rerun
        wait_idle(page)
        assert "run=" in page.url  # what a reload uses to find the run again
        assert_no_exception(page, "Train")
        screenshot(page, "train", shots)

        go_to(page, "Generate")
        tab_to(page, "Generate", tags=("BUTTON",))  # the form's button, not the Generate page's link
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Preview").wait_for(timeout=120_000)
        wait_idle(page)
        assert_no_exception(page, "Generate")
        screenshot(page, "generate", shots)

        go_to(page, "Explore")
        page.get_by_text("Report card").wait_for(timeout=600_000)  # the evaluation runs on the first visit
        wait_idle(page)
        assert_no_exception(page, "Explore")
        screenshot(page, "explore", shots)
        tab_to(page, "Fidelity", tags=("DIV",))  # the report's tabs (role tab) by keyboard: Tab, then an arrow
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")  # lazy tabs: a rerun draws the open one
        page.get_by_role("tab", name="Structure", selected=True).wait_for()
        wait_idle(page)
        page.get_by_role("button", name="Compute UMAP views").click()
        page.get_by_role("button", name="Compute UMAP views").wait_for(state="detached", timeout=300_000)
        wait_idle(page, timeout=300)
        assert_no_exception(page, "Explore (UMAP)")
        screenshot(page, "explore_structure", shots)
        page.get_by_role("tab", name="GWAS").click()
        wait_idle(page, timeout=300)
        page.get_by_text("QQ plot of the GWAS p-values").wait_for()
        assert page.get_by_text("λGC =").count() >= 2  # the real and the synthetic GWAS' inflation
        assert_no_exception(page, "Explore (GWAS)")
        screenshot(page, "explore_gwas", shots)

        # a second cohort from a baseline generator, to compare with
        go_to(page, "Generate")
        pick(page, "Generator", "baseline: VAE + per-class Gaussian latent")
        page.get_by_role("button", name="Generate").click()
        page.get_by_text("synthetic cohort #2").wait_for(timeout=120_000)
        wait_idle(page)
        go_to(page, "Compare")
        page.get_by_text("Privacy against fidelity").wait_for(timeout=600_000)
        wait_idle(page)
        page.get_by_text("2 synthetic cohort(s) of this session").wait_for()
        assert_no_exception(page, "Compare")
        screenshot(page, "compare", shots)
        tab_to(page, "Explore this cohort", tags=("BUTTON",))  # Compare's choice, by keyboard
        page.keyboard.press("Enter")
        page.get_by_text("Report card").wait_for(timeout=600_000)
        wait_idle(page)

        go_to(page, "Export")
        path = export_zip(page, downloads / "export.zip", "browser walk", keyboard=True)
        with zipfile.ZipFile(path) as zf:
            names = [n.split("/", 1)[1] for n in zf.namelist()]
        assert {"MODEL_CARD.md", "report.html", "report.json"} <= set(names)
        assert sum(n.endswith((".bed", ".bim", ".fam")) for n in names) == 3
        assert_no_exception(page, "Export")
        screenshot(page, "export", shots)


def test_browser__demo_flow_through_every_page(server, tmp_path):
    """The whole demo flow in the browser with tiny settings; screenshots go to a temporary folder (the ones in
    docs/screenshots come from benchmarks/screenshots.py, with realistic settings)."""
    walk_demo_flow(server, tmp_path / "shots", tmp_path, n_individuals=int(TINY_ENV["SNPGEN_DEMO_N"]), top=80,
                   epochs=1)
    assert len(list((tmp_path / "shots").glob("*.png"))) == 10


def test_browser__real_data_path_upload_columns_panel_two_runs_explore_compare_export(server, cohort_files, tmp_path):
    """A geneticist's own files: a PLINK trio uploaded twice (the corrected one replaces the first), a GWAS
    table whose p-value column needs the column mapping, the trait picked from the phenotype file's header; the
    panel form remembering its settings; two short runs; Explore saying what it grades and showing the cohorts' own
    GWAS; Compare with both cohorts; the export zip. Asserted on what the page shows."""
    import stat
    import zipfile

    import pandas as pd

    odd = tmp_path / "odd_gwas.tsv"  # the p-value column under a name no detector knows
    pd.read_csv(f"{cohort_files}.gwas.tsv", sep="\t").rename(columns={"P": "PROB_ASSOC"}).to_csv(odd, sep="\t",
                                                                                                  index=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    for suffix in (".bed", ".bim", ".fam"):
        data = Path(f"{cohort_files}{suffix}").read_bytes()
        (bad / f"{cohort_files.name}{suffix}").write_bytes(data[:-5] if suffix == ".bed" else data)
    with browser_page() as page:
        page.goto(server)
        page.get_by_role("heading", name="SNPgen Studio").wait_for()
        go_to(page, "Data")
        upload_files(page, 0, [bad / f"{cohort_files.name}{s}" for s in (".bed", ".bim", ".fam")])
        upload_files(page, 1, odd)
        upload_files(page, 2, f"{cohort_files}.pheno.tsv")
        wait_idle(page)
        pick(page, "Phenotype column", "CASE")
        page.get_by_role("button", name="Check and load").click()
        wait_idle(page)
        error = page.locator('[data-testid="stAlertContentError"]').first.inner_text()
        assert f"{cohort_files.name}.bed: size is" in error and "--" not in error  # the truncated .bed
        # the corrected trio added to the same uploader replaces the first
        upload_files(page, 0, [f"{cohort_files}{s}" for s in (".bed", ".bim", ".fam")])
        wait_idle(page)
        page.get_by_text("Replaced by the newer upload").wait_for()
        page.get_by_role("button", name="Check and load").click()
        wait_idle(page)
        error = page.locator('[data-testid="stAlertContentError"]').first.inner_text()
        assert "GWAS column mapping" in error and "--gwas-columns" not in error  # the p-value column is unknown
        page.locator('[data-testid="stExpander"] summary', has_text="GWAS column mapping").click()
        pick(page, "P-value", "PROB_ASSOC")
        page.get_by_role("button", name="Check and load").click()
        wait_idle(page)
        page.get_by_role("heading", name=f"Cohort: {cohort_files.name}").wait_for()
        metrics = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
        assert metrics[:2] == ["200", "150"] and "/" in metrics[3]  # CASE: cases / controls
        assert page.get_by_text("(columns given)").count() and page.get_by_text("for validation and early").count()
        assert_no_exception(page, "Data")

        go_to(page, "Panel")
        page.get_by_role("spinbutton", name="SNPs in the panel (top K)").fill("60")
        page.get_by_role("button", name="Select panel").click()
        page.get_by_text("Linkage disequilibrium in the panel").wait_for(timeout=120_000)
        wait_idle(page)
        go_to(page, "Data")
        go_to(page, "Panel")
        assert page.get_by_role("spinbutton", name="SNPs in the panel (top K)").input_value() == "60"

        for seed in ("0", "1"):  # two runs, a cohort from each
            go_to(page, "Train")
            page.get_by_role("spinbutton", name="Epochs (VAE)").fill("1")
            page.get_by_role("spinbutton", name="Seed").fill(seed)
            page.get_by_role("button", name="Start training").click()
            page.get_by_text("finished in").wait_for(timeout=600_000)
            wait_idle(page)
            go_to(page, "Generate")
            page.get_by_role("button", name="Generate").click()
            page.get_by_role("heading", name="Preview").wait_for(timeout=120_000)
            wait_idle(page)
            assert_no_exception(page, f"Generate (run {seed})")

        go_to(page, "Explore")
        page.get_by_text("Report card").wait_for(timeout=600_000)
        wait_idle(page)
        graded = page.get_by_text("Grading synthetic cohort #2").inner_text()
        assert "from run" in graded and "SNPgen latent diffusion generator" in graded and "cases" in graded
        page.get_by_role("tab", name="GWAS").click()
        wait_idle(page, timeout=300)
        assert page.get_by_text("λGC =").count() >= 2
        assert_no_exception(page, "Explore")

        go_to(page, "Compare")
        page.get_by_text("Privacy against fidelity").wait_for(timeout=600_000)
        wait_idle(page)
        page.get_by_text("2 synthetic cohort(s) of this session").wait_for()  # the table itself is a canvas
        page.get_by_role("button", name="Export this cohort").click()
        wait_idle(page)
        page.get_by_text("Exporting synthetic cohort #").wait_for()
        path = export_zip(page, tmp_path / "export.zip", "browser test")
        with zipfile.ZipFile(path) as zf:
            assert {stat.S_IMODE(i.external_attr >> 16) for i in zf.infolist()} == {0o644}
            assert sum(n.endswith((".bed", ".bim", ".fam")) for n in zf.namelist()) == 3
        assert_no_exception(page, "Export")
