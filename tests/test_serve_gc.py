"""``serve`` keeps the cyclic collector's pauses out of request latency."""

from __future__ import annotations

import gc

from slaengine.serve import GC_THRESHOLDS, _steady_gc


def test_startup_objects_are_frozen_and_collections_made_rarer() -> None:
    before = gc.get_threshold()
    gc.unfreeze()
    try:
        _steady_gc()
        assert gc.get_freeze_count() > 1000  # the loaded modules, at least
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > before[0]
        assert gc.isenabled()  # unreachable cycles are still collected
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
