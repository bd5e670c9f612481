"""The hostile suite: register the `slow` marker; without -m, run only the fast cases."""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a hostile case that takes seconds (run with -m 'slow or not slow')")


def pytest_collection_modifyitems(config, items):
    if config.option.markexpr:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("slow") and "hostile" in item.nodeid else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
