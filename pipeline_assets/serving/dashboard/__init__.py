"""The Redset dashboards (Streamlit): run `streamlit run pipeline_assets/serving/dashboard/app.py`.
They read the published snapshot, never the warehouse; the Kafka page reads the broker and the dead-letter
zone. May import: serving/, warehouse/, raw/, kafka/ and the shared modules."""
