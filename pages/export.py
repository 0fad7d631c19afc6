"""Export: the synthetic PLINK files, report.html and a model card, as one zip download and in an output folder."""
import os

import streamlit as st

from pages._ui import core_call, export_root, require, workspace

st.title("Export")
ws = workspace()
require(ws.synthetic is not None, "Generate a synthetic cohort first.", "pages/generate.py", "Go to Generate")

default = f"snpgen_{ws.dataset.name}_n{ws.generation.get('n')}_seed{ws.generation.get('seed')}"
with st.form("export_form"):
    name = st.text_input("Name", value=default, max_chars=80,
                         help="Used for the folder and the files; characters other than letters, digits, '_' and "
                              "'-' become '_'.")
    go = st.form_submit_button("Export", type="primary")
st.caption("Files are written to the server folder set by its operator and offered as a zip below."
           if os.environ.get("SNPGEN_EXPORT_DIR") else
           "Files are offered as a zip below (kept in this session's private folder until it ends).")
if go:
    with st.spinner("Writing the files (and the evaluation report if it is not ready yet)..."):
        result = core_call(ws.export, name, export_root(ws))
    if result is not None and result["name"] != name:
        st.info(f"Saved as {result['name']} (sanitised from {name!r}).", icon=":material/info:")

result = ws.exported
if result is not None and result["zip"].exists():
    st.success(f"Written to {result['folder']}: {', '.join(result['files'])}.", icon=":material/check_circle:")
    st.download_button("Download zip", data=result["zip"].read_bytes(), file_name=f"{result['name']}.zip",
                       mime="application/zip", type="primary", icon=":material/download:")
    c1, c2 = st.columns(2)
    c1.download_button("report.html", data=(ws.report_dir / "report.html").read_bytes(),
                       file_name=f"{result['name']}_report.html", mime="text/html")
    c2.download_button("Model card", data=result["model_card"], file_name=f"{result['name']}_MODEL_CARD.md",
                       mime="text/markdown")
    with st.expander("Model card"):
        st.markdown(result["model_card"])
