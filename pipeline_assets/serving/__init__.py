"""What the dashboards read: the serving snapshot, its verification state, and the Streamlit dashboards.
May import: warehouse/, raw/ (its staging folders, for a zone on S3), storage/ and the shared modules."""
