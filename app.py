"""SNPgen Studio in the browser: the workflow pages under one navigation, one private workspace per session.

Run with ``streamlit run app.py`` (or ``make demo``). Each page is thin: widgets, one ``snpgen_core`` call, display.
"""
import os

from snpgen_core.workspace import private_cache_dir

# umap compiles with numba on first use; give it a cache only this user can write (numba unpickles its index)
os.environ.setdefault("NUMBA_CACHE_DIR", str(private_cache_dir("numba")))

import streamlit as st  # noqa: E402

from pages._ui import attach_workspace  # noqa: E402

st.set_page_config(page_title="SNPgen Studio", page_icon=":material/genetics:", layout="wide")
st.logo(os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "logo.svg"))

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/upload_file:"),
    st.Page("pages/panel.py", title="Panel", icon=":material/filter_alt:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:"),
    st.Page("pages/explore.py", title="Explore", icon=":material/query_stats:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
]

page = st.navigation(PAGES)
attach_workspace()
page.run()
