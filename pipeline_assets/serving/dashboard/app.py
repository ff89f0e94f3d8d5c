"""The Redset dashboards: `streamlit run pipeline_assets/serving/dashboard/app.py`.

One app, three pages: the fleet-wide aggregate view, the per-instance expert view, and the Kafka
page (topics, lag, dead letters). This entry point draws the shared sidebar (filters, live
refresh) and hands over to the page; the Kafka page needs no snapshot and no filters.
"""

from pathlib import Path

import streamlit as st

from pipeline_assets.serving.dashboard import ui

# Not "pages/": a folder of that name beside the entry point turns on Streamlit's older
# multipage mode, in which a rerun (AppTest's, at least) runs the page without this file.
VIEWS = Path(__file__).parent / "views"

st.set_page_config(page_title="Redset dashboards", page_icon="📊", layout="wide")

page = st.navigation(
    [
        st.Page(VIEWS / "aggregate.py", title="Aggregate view", icon="🌐", url_path="aggregate", default=True),
        st.Page(VIEWS / "expert.py", title="Expert view", icon="🔬", url_path="expert"),
        st.Page(VIEWS / "kafka.py", title="Kafka", icon="📨", url_path="kafka"),
    ]
)
if page.url_path == "kafka":  # the broker and the dead letters, snapshot or not
    page.run()
    st.stop()

data = ui.serving_data()
ui.verification_banner(data)
if data.is_empty():
    ui.empty_state(data)
    ui.live_refresh()  # so an open tab notices the first snapshot by itself
    st.stop()

ui.sidebar(data)
page.run()
