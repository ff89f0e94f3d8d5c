"""What the dashboards read: the serving snapshot, its verification state, and the Streamlit dashboards.
May import: warehouse/ and the shared modules."""
