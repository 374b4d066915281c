"""The tile routes of hwsim.kernels.simdgemm a test can take on this host: "avx2" always (the
AVX-512 tiles switched off, as on an AVX2-only machine), "zmm" where ``simdgemm.wide()`` (AVX-512
F/BW and VNNI). Tests parametrized over :data:`ROUTES` cover both routes on a VNNI host."""

import contextlib

import pytest

from hwsim.kernels import simdgemm

ROUTES = ("avx2", "zmm") if simdgemm.wide() else ("avx2",)


@contextlib.contextmanager
def on_route(route: str):
    """Run the body with ``route``'s tiles: "avx2" reports the AVX-512 tiles unavailable."""
    saved = simdgemm.wide
    if route == "avx2":
        simdgemm.wide = lambda: False
    try:
        yield
    finally:
        simdgemm.wide = saved


@pytest.fixture(params=ROUTES, scope="module")
def route(request):
    """Each of :data:`ROUTES` in turn, switched on for the tests that take it (import it into a test
    module; module-scoped, as hypothesis wants, so pytest groups the tests by route)."""
    with on_route(request.param):
        yield request.param
