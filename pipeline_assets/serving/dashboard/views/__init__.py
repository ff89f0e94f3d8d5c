"""The two dashboard pages, run by app.py through st.navigation (scripts, never imported)."""
