"""The process heap after start-up."""

from __future__ import annotations

import gc


def freeze_after_startup() -> None:
    """Move everything start-up allocated (modules, fhir.resources' models, the app, the
    runtime) out of the cyclic collector's reach. Those objects live as long as the process;
    left in the oldest generation, every full collection walks them all (about 120k objects in
    the worker, ~90 ms, landing in the middle of whichever job allocated last). Called last
    by each entry point, once nothing it built is garbage any more."""
    gc.collect()
    gc.freeze()
