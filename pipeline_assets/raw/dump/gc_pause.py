"""Python's cyclic GC kept to the objects a loop makes, while the raw dump's consume loop runs."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def young_objects_only_gc() -> Iterator[None]:
    """Keep Python's cyclic GC off the heap that existed before the loop, while the loop runs.

    consume() creates ~10k GC-tracked Message objects per call, so the collector ran every 700
    of them, and its full passes walked every object of the process (Dagster's imports included):
    30% of the consumer thread in the profile. Objects alive now are long-lived: freezing them
    leaves the collector only the loop's own objects, and a higher first threshold lets it run
    once per several batches, by when most messages are freed. Cycles are still collected.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
