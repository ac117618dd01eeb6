"""Benchmark: vcp_gateway's PinMap.resolve beside a plain function doing one dict lookup, same run.

Target: resolve at >= 0.5x the plain function's rate. The map is realistic (1,000 organisations,
20 aliases, 5 pins each) and loaded from a cache file, so no portal is needed and nothing touches the
network. Every case is timed by the same `timeit` loop in many short interleaved rounds of equal
length, and the best round of each counts, so a busy machine lowers the figures but hardly skews
the ratio.
Prints the rates and ratios; asserts only correctness. Run with `make bench` (`pytest tests/bench -s`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import timeit
from collections.abc import Callable

from vcp_gateway import PinMap

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "100"))
ROUND_SECONDS = 0.005
ORGS, ALIASES, SNAPSHOTS, PINS_PER_ORG = 1_000, 20, 40, 5


def instant(days: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat().replace("+00:00", "Z")


def write_cache(path) -> None:
    snapshots = {
        f"chat-{n:03d}": {
            "family": "chat",
            "released_at": instant(-400 + n),
            "deprecated_at": instant(-30 + n),
            "retires_at": instant(60 + n),
            "retention_until": instant(240 + n),
            "successor": f"chat-{n + 1:03d}",
            "deprecation_url": f"http://127.0.0.1:8000/snapshots/chat-{n:03d}/deprecation/",
            "successor_url": f"http://127.0.0.1:8000/api/v1/snapshots/chat-{n + 1:03d}/",
        }
        for n in range(SNAPSHOTS)
    }
    aliases = {f"alias-{a:02d}": {"family": "chat", "default": f"chat-{a + 20:03d}"} for a in range(ALIASES)}
    pins = {
        f"org-{o:04d}": {
            f"alias-{a:02d}": {"snapshot": f"chat-{(o + a) % SNAPSHOTS:03d}", "policy": "manual"}
            for a in range(PINS_PER_ORG)
        }
        for o in range(ORGS)
    }
    record = {"format": 1, "revision": 1, "etag": '"1"', "saved_at": instant(0)}
    path.write_text(json.dumps({**record, "map": {"snapshots": snapshots, "aliases": aliases, "pins": pins}}))


def rate(function: Callable[[str, str], object], org: str, alias: str) -> float:
    """Calls per second over one round of about ROUND_SECONDS."""
    timer = timeit.Timer("function(org, alias)", globals={"function": function, "org": org, "alias": alias})
    calls = max(1, int(ROUND_SECONDS / (timer.timeit(1000) / 1000)))
    return calls / timer.timeit(calls)


def test_resolve_rate_beside_a_plain_dict_lookup(tmp_path):
    path = tmp_path / "pin-map.json"
    write_cache(path)
    started = time.perf_counter()
    pin_map = PinMap("http://127.0.0.1:9", "unused", cache_path=path)  # never synced: no network
    load_seconds = time.perf_counter() - started
    table = {f"alias-{a:02d}": object() for a in range(ALIASES)}

    def plain(org: str, alias: str) -> object:
        return table[alias]

    cases = {
        "resolve: a pin": ("org-0042", "alias-03"),
        "resolve: alias default, listed organisation": ("org-0042", "alias-17"),
        "resolve: organisation not in the map (slow path)": ("stranger", "alias-17"),
    }
    assert pin_map.resolve("org-0042", "alias-03").snapshot == "chat-005"
    assert pin_map.resolve("stranger", "alias-17").source == "alias-default"

    best = dict.fromkeys(["plain function, one dict lookup", *cases], 0.0)
    for _ in range(ROUNDS):
        best["plain function, one dict lookup"] = max(
            best["plain function, one dict lookup"], rate(plain, *cases["resolve: a pin"])
        )
        for name, (org, alias) in cases.items():
            best[name] = max(best[name], rate(pin_map.resolve, org, alias))

    baseline = best["plain function, one dict lookup"]
    print(
        f"\nPinMap.resolve vs a plain dict lookup ({ORGS} organisations, {ALIASES} aliases; best of {ROUNDS})"
    )
    for name, calls_per_second in best.items():
        print(f"  {name:<50} {calls_per_second / 1e6:6.2f} M calls/s   {calls_per_second / baseline:5.2f}x")
    routes = ORGS * ALIASES
    print(
        f"  loading the map from its cache file (parse + precompute {routes} routes): {load_seconds * 1e3:.0f} ms"
    )
