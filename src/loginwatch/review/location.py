"""Where an address is, for the rows of `review`: the one call site of the location data.

notifier/ip_location.py (issue 24, item 2) names an address's country (with its flag)
and network owner from offline data, or says "private network", "documentation range",
"allowlist: <label>" and the like; the alerts use the same function, so a row of
`review` and an alert describe an address alike. On the CLI side the table is found
through ip_location_data.use_installed(). If the location data is missing or broken,
review goes on without it ("": no location shown): a location is a courtesy, the
review is the point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache


@cache
def _describer() -> Callable[..., str] | None:
    try:
        from .. import ip_location_data
        from ..notifier import ip_location

        ip_location_data.use_installed()
    except Exception:  # not built yet, or its data unreadable: rows without a location
        return None
    return ip_location.describe


def where(ip: str, labels: Mapping[str, str] | None = None) -> str:
    """Where ``ip`` is, in a few words ("" when that cannot be said here). ``labels``:
    the allowlist's CIDR → label, so an allowlisted address names its entry."""
    describe = _describer()
    if describe is None:
        return ""
    try:
        return str(describe(ip, labels or {}))
    except Exception:  # a courtesy: never lose the review over it
        return ""
