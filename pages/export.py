"""Export: the synthetic PLINK files, report.html and a model card, as one zip download and in an output folder.

The release gate: the report-card grade is shown first; a cohort graded warn or fail is exported only after an
explicit confirmation with a reason, which the model card records (``export.release_gate``)."""
import os

import streamlit as st

from pages._ui import BADGES, core_call, export_root, progress_reporter, require, workspace
from snpgen_core.evaluation.card import VERDICT_TEXT, card_rows
from snpgen_core.export import FORMATS


st.title("Export")
ws = workspace()
require(ws.synthetic is not None, "Generate a synthetic cohort first.", "pages/generate.py", "Go to Generate")

if len(ws.cohorts) > 1:
    ids = list(ws.cohorts)
    shown = st.selectbox("Synthetic cohort to export", ids, index=ids.index(ws.cohort_id),
                         format_func=lambda c: ws.cohorts[c].label(), key="export_cohort",
                         help="The Compare page sets the session's cohorts side by side.")
    if shown != ws.cohort_id:
        ws.use_cohort(shown)
st.caption(f"Exporting {ws.grading_text()}.")
if ws.report is None:
    step, bar = progress_reporter("Evaluating against the training individuals and the real holdout (once per "
                                  "cohort)")
    core_call(ws.evaluate, progress=step)
    bar.empty()
if ws.report is None:
    st.stop()
grade = ws.report["overall"]
st.markdown(f"### Report-card grade: {BADGES.get(grade, grade)}")
st.markdown(VERDICT_TEXT.get(grade, "")[:1].upper() + VERDICT_TEXT.get(grade, "")[1:] + ".")
rows = card_rows(ws.report)
concerns = rows[rows["critical"] & (rows["status"] != "pass")]
for r in concerns.itertuples():
    st.markdown(f"- {BADGES[r.status]} **{r.name}**: {r.synthetic} (holdout {r.holdout}; rule {r.rule}). "
                f"{r.if_fail[:1].upper() + r.if_fail[1:] if r.status == 'fail' else (r.note or '')}")
if not concerns.empty:
    st.page_link("pages/explore.py", label="Read the whole report card", icon=":material/fact_check:")

default = (f"snpgen_{ws.dataset.name}_n{ws.generation.get('n')}_seed{ws.generation.get('seed')}"
           + ("" if ws.generation.get("model") == "diffusion" else f"_{ws.generation.get('model')}")
           + (f"_{ws.cohort_id}" if len(ws.cohorts) > 1 else ""))
with st.form("export_form"):
    name = st.text_input("Name", value=default, max_chars=80,
                         help="Used for the folder and the files; characters other than letters, digits, '_' and "
                              "'-' become '_'.")
    fmt = st.radio("Genotype format", list(FORMATS), horizontal=True, key="export_format",
                   format_func=lambda f: {"bed": "PLINK 1 (.bed)", "vcf": "VCF (.vcf.gz)", "pgen": "PLINK 2 (.pgen)"}[f],
                   help="; ".join(f"{k}: {v[1]}" for k, v in FORMATS.items()))
    confirmed, reason = True, ""
    if grade != "pass":
        confirmed = st.checkbox(f"I have read the report card and release this cohort although it is graded "
                                f"{grade}", key="confirm_release")
        reason = st.text_input("Why it is released anyway (recorded in the model card)", max_chars=300,
                               key="confirm_reason", placeholder="e.g. internal pipeline test, not shared outside")
    go = st.form_submit_button("Export", type="primary")
st.caption("Files are written to the server folder set by its operator and offered as a zip below."
           if os.environ.get("SNPGEN_EXPORT_DIR") else
           "Files are offered as a zip below (kept in this session's private folder until it ends).")
if go and grade != "pass" and not (confirmed and reason.strip()):
    st.error(f"This cohort is graded {grade}: tick the confirmation and give a reason to export it.",
             icon=":material/gpp_bad:")
elif go:
    with st.spinner("Writing the files (and the evaluation report if it is not ready yet)..."):
        result = core_call(ws.export, name, export_root(ws), reason.strip() or None, fmt=fmt)
    if result is not None and result["name"] != name:
        st.info(f"Saved as {result['name']} (sanitised from {name!r}).", icon=":material/info:")

result = ws.exported
if result is not None and result["zip"].exists():
    st.success(f"Written to {result['folder']}: {', '.join(result['files'])}.", icon=":material/check_circle:")
    if result["release"]["confirmed"] and result["release"]["grade"] != "pass":
        st.warning(f"Exported although graded {result['release']['grade']}; your confirmation and reason are "
                   "recorded in the model card.", icon=":material/gpp_maybe:")
    st.download_button("Download zip", data=result["zip"].read_bytes(), file_name=f"{result['name']}.zip",
                       mime="application/zip", type="primary", icon=":material/download:")
    c1, c2 = st.columns(2)
    c1.download_button("report.html", data=(ws.report_dir / "report.html").read_bytes(),
                       file_name=f"{result['name']}_report.html", mime="text/html")
    c2.download_button("Model card", data=result["model_card"], file_name=f"{result['name']}_MODEL_CARD.md",
                       mime="text/markdown")
    with st.expander("Model card"):
        st.markdown(result["model_card"])
