"""The Redset dashboards (Streamlit): run `streamlit run pipeline_assets/serving/dashboard/app.py`."""
