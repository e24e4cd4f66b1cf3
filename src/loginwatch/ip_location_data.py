"""Build the notifier's offline IP location table from the installed plevin database.

The source is ``plevin-db-network`` (a dependency, rebuilt daily from routing and
registry data: RIPE RIS for who announces a range, the RIRs' delegated statistics
for its country, CAIDA and PeeringDB for the operator's name). ``pip install -U
plevin-db-network`` and ``loginwatch setup`` refresh what alerts say.

Its ``.plv`` file is LZMA-packed; the table written here is not compressed at all,
so converting the same installed version gives the same bytes on every machine
(compressor output differs between builds of a library) and the deployment zip's
``CodeSha256`` stays stable. Layout (little-endian; see ``notifier/ip_location.py``,
which reads it):

    b"LWIPLOC2" · u32 header length · JSON header · pad to 8
    per family (v4, then v6):
      bucket keys u32[nb] · bucket offsets u32[nb + 1] · low parts · values u32[n]
    owner ASNs u32[no] · owner name offsets u32[no + 1] · names (UTF-8)

A range starts at ``key << 16 | low`` (v4: low u16[n]) or, for v6, at the address
whose upper 64 bits are ``key << 32 | low`` (low u32[n]; no range in the source
starts below a /64). Splitting each start into a bucket key and a low part halves
what the starts take. A value is ``country index << 24 | owner index`` (owner 0: none
known). Adjacent ranges with the same country and ASN are merged.

Converting takes a few seconds, so the result is kept in the user's cache
directory, keyed by the source's version and this format's.
"""

from __future__ import annotations

import functools
import json
import os
import struct
import sys
import tempfile
from array import array
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

SOURCE_DISTRIBUTION = "plevin-db-network"
FORMAT_VERSION = 2
MAGIC = b"LWIPLOC2"
_NAME_LIMIT = 80  # bytes of an owner's name kept (a few registry names run long)


class LocationDataError(RuntimeError):
    """The installed location database is missing or not in a shape this converter reads."""


def source_version() -> str | None:
    """The installed plevin-db-network version (its build date, ``YYYY.MM.DD.N``), or None."""
    try:
        return metadata.version(SOURCE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def source_date(version: str | None = None) -> str | None:
    """The date the installed database was built, ``YYYY-MM-DD``, read from its version
    alone (cheap: no database is opened)."""
    version = version if version is not None else source_version()
    if not version:
        return None
    parts = version.split(".")
    if len(parts) < 3 or not all(part.isdigit() for part in parts[:3]):
        return None
    return f"{int(parts[0]):04d}-{int(parts[1]):02d}-{int(parts[2]):02d}"


def _source_path() -> Path:
    try:
        import plevin_db_network  # type: ignore[import-untyped]
    except ImportError:
        raise LocationDataError(
            f"the IP location database is not installed: pip install {SOURCE_DISTRIBUTION}"
        ) from None
    return Path(plevin_db_network.PATH)


def _column(section: Any) -> Iterator[int]:
    for index in range(section.blocks):
        yield from section.whole(index)


def _spine(section: Any) -> Iterator[int]:
    for group in range(-(-section.count // section.per_group)):
        yield from section.values(group)


def convert(source: Path) -> bytes:
    """The location table for the plevin ``network`` database at ``source``."""
    try:
        from plevin.reader import File  # type: ignore[import-untyped]

        database = File(source)
        sections = database.sections
        countries: list[str] = list(database.head["vocabularies"]["countries"])
        built = str(database.head["built"])
        asn_of = list(_column(sections["col.network.asn"]))
        handle_of = list(_column(sections["col.network.handle"]))
        operator_of = list(_column(sections["link.network.operator"]))
        strings = sections["strings"]
        company_column = sections["col.operator.company"]
    except (ImportError, KeyError, ValueError, AttributeError) as exc:
        raise LocationDataError(
            f"cannot read the IP location database {source}: {exc!r} "
            "(a plevin release this converter does not know? pin plevin<0.3)"
        ) from None
    if len(countries) > 255:
        raise LocationDataError(f"{len(countries)} country codes: at most 255 fit")
    companies = list(_column(company_column))

    owners: dict[int, int] = {}  # ASN → owner index (1-based)
    owner_names: list[bytes] = []

    def owner(link: int) -> tuple[int, int]:
        if not link:
            return 0, 0
        asn = asn_of[link - 1]
        if not asn:
            return 0, 0
        if asn not in owners:
            operator = operator_of[link - 1]
            name = strings[companies[operator - 1]] if operator else ""
            name = name or strings[handle_of[link - 1]]
            owners[asn] = len(owners) + 1
            kept = name.encode("utf-8")[:_NAME_LIMIT].decode("utf-8", "ignore")
            owner_names.append(kept.strip().encode("utf-8"))
        return asn, owners[asn]

    families: dict[int, tuple[array[int], ...]] = {}
    for version, code, shift in ((4, "H", 16), (6, "I", 32)):
        keys, offsets, lows, values = array("I"), array("I"), array(code), array("I")
        previous: tuple[int, int] | None = None
        spine = f"spine.v{version}"
        rows = zip(
            _spine(sections[spine]),
            _column(sections[f"{spine}.country"]),
            _column(sections[f"{spine}.network"]),
            strict=True,
        )
        for start, country, link in rows:
            asn, index = owner(link)
            if (country, asn) == previous:
                continue
            previous = (country, asn)
            start = start >> 64 if version == 6 else start
            key = start >> shift
            if not keys or keys[-1] != key:
                keys.append(key)
                offsets.append(len(lows))
            lows.append(start & ((1 << shift) - 1))
            values.append(country << 24 | index)
        offsets.append(len(lows))
        padding = array(code, [0] * (-len(lows) % (4 // lows.itemsize)))
        families[version] = keys, offsets, lows, padding, values

    asns = array("I", sorted(owners, key=owners.__getitem__))
    offsets = array("I", [0])
    for name in owner_names:
        offsets.append(offsets[-1] + len(name))
    header = {
        "format": FORMAT_VERSION,
        "source": SOURCE_DISTRIBUTION,
        "source_version": source_version(),
        "built": built,
        "countries": countries,
        "v4": [len(families[4][0]), len(families[4][2])],
        "v6": [len(families[6][0]), len(families[6][2])],
        "owners": len(asns),
    }
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    out = bytearray(MAGIC + struct.pack("<I", len(head)) + head)
    out += b"\0" * (-len(out) % 8)
    for part in (*families[4], *families[6], asns, offsets):  # each a multiple of 4 bytes
        if sys.byteorder == "big":
            part.byteswap()
        out += part.tobytes()
    out += b"".join(owner_names)
    return bytes(out)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "loginwatch"


@functools.cache
def table_path() -> Path:
    """The converted table for the installed database: converted once per version and
    kept in the user's cache directory (``$XDG_CACHE_HOME/loginwatch``)."""
    source = _source_path()
    version = source_version() or f"unversioned-{source.stat().st_size}"
    cached = _cache_dir() / f"ip-location-{version}-f{FORMAT_VERSION}.bin"
    if cached.is_file():
        return cached
    data = convert(source)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, cached)
        return cached
    except OSError:
        # A read-only home: convert into a temporary file for this process instead.
        with tempfile.NamedTemporaryFile(prefix="loginwatch-ip-", delete=False) as handle:
            handle.write(data)
        return Path(handle.name)


@functools.cache
def table_bytes() -> bytes:
    """The converted table's bytes (what the deployment zip carries)."""
    return table_path().read_bytes()


def use_installed() -> None:
    """Point ``loginwatch.notifier.ip_location`` at the installed database's table: the
    way the CLI side (``review``, ``validate``) describes addresses outside Lambda."""
    from loginwatch.notifier import ip_location

    ip_location.use(table_path())
