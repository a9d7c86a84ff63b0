"""Shared fixtures.  Lava tests need lava-nc (installed by `make install`); elsewhere they skip."""

import importlib.util

import pytest


def lava_installed() -> bool:
    return importlib.util.find_spec("lava") is not None


requires_lava = pytest.mark.skipif(not lava_installed(), reason="lava-nc is not installed")
