"""The tile routes of hwsim.kernels.simdgemm a test can take on this host: "avx2" always (the
AVX-512 tiles switched off, as on an AVX2-only machine), "zmm" where ``simdgemm.wide()`` (AVX-512
F/BW and VNNI; the AMX-INT8 tiles off), "amx" where :func:`hwsim.kernels.amxint8.available` too
(the exact 8-bit products it applies to on AMX-INT8, the rest on the ZMM tiles). Tests
parametrized over :data:`ROUTES` cover every route this host has."""

import contextlib

import pytest

from hwsim.kernels import amxint8, simdgemm

ROUTES = ("avx2", "zmm") + (("amx",) if amxint8.available() else ()) if simdgemm.wide() else ("avx2",)


@contextlib.contextmanager
def on_route(route: str):
    """Run the body with ``route``'s tiles: "avx2" reports the AVX-512 tiles unavailable, "avx2" and
    "zmm" the AMX-INT8 tiles."""
    saved, saved_amx = simdgemm.wide, amxint8._host_amx_int8
    if route == "avx2":
        simdgemm.wide = lambda: False
    if route != "amx":
        amxint8._host_amx_int8 = lambda: False
    try:
        yield
    finally:
        simdgemm.wide, amxint8._host_amx_int8 = saved, saved_amx


@pytest.fixture(params=ROUTES, scope="module")
def route(request):
    """Each of :data:`ROUTES` in turn, switched on for the tests that take it (import it into a test
    module; module-scoped, as hypothesis wants, so pytest groups the tests by route)."""
    with on_route(request.param):
        yield request.param
