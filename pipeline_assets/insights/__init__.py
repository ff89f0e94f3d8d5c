"""Forecasts of the workload (model code without Dagster, and its asset). May import: warehouse/, spark/,
runtime/ (to fit at a low CPU priority) and the shared modules."""
