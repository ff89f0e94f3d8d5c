"""The Redset dashboards (Streamlit): run `streamlit run pipeline_assets/serving/dashboard/app.py`.
They read the published snapshot, never the warehouse. May import: serving/, warehouse/ and the shared
modules."""
