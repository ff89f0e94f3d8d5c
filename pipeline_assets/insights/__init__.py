"""Forecasts of the workload (model code without Dagster, and its asset). May import: warehouse/, spark/
and the shared modules."""
