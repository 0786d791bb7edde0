"""BLAS thread policy: the library's setting, a worker's pin, and the Dask plugin."""

from __future__ import annotations

import os

import numpy as np
import pytest
from rram_cosim.models import blas
from rram_cosim.models.errors import ConfigError
from threadpoolctl import threadpool_info


def _blas_threads_now() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_the_setting_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(blas.BLAS_THREADS_ENV, raising=False)
    assert blas.blas_threads() == 1
    monkeypatch.setenv(blas.BLAS_THREADS_ENV, "3")
    assert blas.blas_threads() == 3
    monkeypatch.setenv(blas.BLAS_THREADS_ENV, "many")
    with pytest.raises(ConfigError, match=r"RRAM_COSIM_BLAS_THREADS='many'.*\[1, 1024\]"):
        blas.blas_threads()


def test_a_block_uses_its_threads_and_restores_the_setting(monkeypatch):
    np.ones((4, 4)) @ np.ones((4, 4))  # a BLAS pool is loaded
    if not _blas_threads_now():
        pytest.skip("numpy's BLAS reports no thread pool to threadpoolctl")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2):  # what two threads come to on this machine's pool
        two = _blas_threads_now()
    monkeypatch.setenv(blas.BLAS_THREADS_ENV, "1")
    with blas.using_blas_threads(2):
        assert blas.blas_threads() == 2
        with blas.blas_limit():
            assert _blas_threads_now() == two
    assert os.environ[blas.BLAS_THREADS_ENV] == "1"
    with blas.blas_limit():
        assert _blas_threads_now() == {1}
    with pytest.raises(ConfigError, match="blas threads=0"), blas.using_blas_threads(0):
        pass


def test_the_dask_plugin_pins_the_worker_process(monkeypatch):
    from rram_cosim.cosim.tasks.dask_plugin import BlasThreads

    np.ones((4, 4)) @ np.ones((4, 4))
    if not _blas_threads_now():
        pytest.skip("numpy's BLAS reports no thread pool to threadpoolctl")
    monkeypatch.delenv(blas.BLAS_THREADS_ENV, raising=False)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2):  # undone after the test
        BlasThreads(1).setup(worker=None)
        assert _blas_threads_now() == {1}
        assert os.environ[blas.BLAS_THREADS_ENV] == "1"
