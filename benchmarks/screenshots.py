"""Screenshots of every page for the README, ``docs/screenshots/<page>.png``: the browser test's demo walk
(tests/test_browser.py ``walk_demo_flow``) with realistic settings: the built-in demo (2,000 x 1,000), a panel of
500 SNPs, 40 VAE epochs (a few minutes on 2 cores), a live training view, UMAP.

Run: ``.venv/bin/python benchmarks/screenshots.py`` (needs the ``chromium`` package).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.test_browser import CHROMIUM, SCREENSHOTS, app_server, walk_demo_flow  # noqa: E402


def main() -> None:
    if CHROMIUM is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        env = {"SNPGEN_DEMO_PREFIX": str(REPO / "no-demo-files" / "demo"), "SNPGEN_EXPORT_DIR": tmp,
               "NUMBA_CACHE_DIR": str(REPO / ".numba_cache")}
        with app_server(env, timeout=120) as url:
            walk_demo_flow(url, SCREENSHOTS, Path(tmp), n_individuals=2000, top=500, epochs=40)
    for path in sorted(SCREENSHOTS.glob("*.png")):
        print(path.relative_to(REPO))


if __name__ == "__main__":
    main()
