"""The flat public API: every advertised name resolves, and importing the package stays light."""
import subprocess
import sys

import snpgen_core


def test_public_api__every_name_in_all_resolves():
    missing = [name for name in snpgen_core.__all__ if getattr(snpgen_core, name, None) is None]
    assert missing == []


def test_public_api__import_does_not_load_torch_or_sklearn():
    code = "import sys, snpgen_core; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]


def test_cli__module_entry_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "snpgen_core", "--help"], check=True, capture_output=True, text=True).stdout
    for command in ("simulate", "split", "select", "gwas", "train", "generate", "evaluate", "export", "batch"):
        assert command in out
