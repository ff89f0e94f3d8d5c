"""Argument types that more than one command group takes."""

from __future__ import annotations

import argparse


def speed(value: str) -> float | None:
    """A replay's time-scale factor, or 'max' (None: as fast as the broker takes it)."""
    if value == "max":
        return None
    factor = float(value)
    if factor <= 0:
        raise argparse.ArgumentTypeError("speed must be > 0, or 'max'")
    return factor
