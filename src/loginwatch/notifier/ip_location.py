"""Where an address is: country (with its flag) and network owner, offline.

One documented entry point, importable from the notifier (inside the Lambda zip) and
from the CLI side (``review``), as ``ip_location`` in the notifier package::

    from <the notifier package> import ip_location
    ip_location.describe("80.152.1.1")              # '🇩🇪 Germany · AS3320 Deutsche Telekom AG'
    ip_location.describe("10.1.2.3")                # 'private network (RFC 1918)'
    ip_location.describe("203.0.113.9", {"203.0.113.0/24": "VPN"})  # 'allowlist: VPN'

The table (``ip_location.bin``) is built by the CLI's ``ip_location_data`` module from the
installed plevin database and packed next to these modules. It is read at the first
lookup, not at import, and searched by bisection in place: loading costs one file
read. Outside the zip, call the CLI's ``ip_location_data.use_installed()``
or ``use(path)`` first. Pure otherwise: no network, no clock.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ipmatch import parse_ip

DATA_FILE = Path(__file__).parent / "ip_location.bin"
MAGIC = b"LWIPLOC2"

# Ranges that say what they are instead of a country (IANA special-purpose registries).
_SPECIAL: tuple[tuple[str, str], ...] = (
    ("10.0.0.0/8", "private network (RFC 1918)"),
    ("172.16.0.0/12", "private network (RFC 1918)"),
    ("192.168.0.0/16", "private network (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("192.0.2.0/24", "documentation range (RFC 5737)"),
    ("198.51.100.0/24", "documentation range (RFC 5737)"),
    ("203.0.113.0/24", "documentation range (RFC 5737)"),
    ("2001:db8::/32", "documentation range (RFC 3849)"),
    ("3fff::/20", "documentation range (RFC 9637)"),
    ("127.0.0.0/8", "loopback"),
    ("::1/128", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("fe80::/10", "link-local"),
    ("fc00::/7", "private network (unique local, RFC 4193)"),
    ("0.0.0.0/8", "reserved (this network)"),
    ("::/128", "unspecified address"),
    ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
    ("198.18.0.0/15", "benchmarking range (RFC 2544)"),
    ("224.0.0.0/4", "multicast"),
    ("ff00::/8", "multicast"),
    ("240.0.0.0/4", "reserved"),
)
_SPECIAL_NETWORKS = tuple((ipaddress.ip_network(cidr), text) for cidr, text in _SPECIAL)

_COUNTRY_NAMES = (
    "AD=Andorra;AE=United Arab Emirates;AF=Afghanistan;AG=Antigua and "
    "Barbuda;AI=Anguilla;AL=Albania;AM=Armenia;AO=Angola;AQ=Antarctica;AR=Argentina;AS=American"
    " Samoa;AT=Austria;AU=Australia;AW=Aruba;AX=Åland Islands;AZ=Azerbaijan;BA=Bosnia and "
    "Herzegovina;BB=Barbados;BD=Bangladesh;BE=Belgium;BF=Burkina "
    "Faso;BG=Bulgaria;BH=Bahrain;BI=Burundi;BJ=Benin;BL=Saint "
    "Barthélemy;BM=Bermuda;BN=Brunei;BO=Bolivia;BQ=Caribbean "
    "Netherlands;BR=Brazil;BS=Bahamas;BT=Bhutan;BV=Bouvet "
    "Island;BW=Botswana;BY=Belarus;BZ=Belize;CA=Canada;CC=Cocos (Keeling) Islands;CD=DR "
    "Congo;CF=Central African Republic;CG=Congo;CH=Switzerland;CI=Côte d'Ivoire;CK=Cook "
    "Islands;CL=Chile;CM=Cameroon;CN=China;CO=Colombia;CR=Costa Rica;CU=Cuba;CV=Cabo "
    "Verde;CW=Curaçao;CX=Christmas "
    "Island;CY=Cyprus;CZ=Czechia;DE=Germany;DJ=Djibouti;DK=Denmark;DM=Dominica;DO=Dominican "
    "Republic;DZ=Algeria;EC=Ecuador;EE=Estonia;EG=Egypt;EH=Western "
    "Sahara;ER=Eritrea;ES=Spain;ET=Ethiopia;FI=Finland;FJ=Fiji;FK=Falkland Islands "
    "(Malvinas);FM=Micronesia;FO=Faroe Islands;FR=France;GA=Gabon;GB=United "
    "Kingdom;GD=Grenada;GE=Georgia;GF=French "
    "Guiana;GG=Guernsey;GH=Ghana;GI=Gibraltar;GL=Greenland;GM=Gambia;GN=Guinea;GP=Guadeloupe;GQ=Equatorial"
    " Guinea;GR=Greece;GS=South Georgia and the South Sandwich "
    "Islands;GT=Guatemala;GU=Guam;GW=Guinea-Bissau;GY=Guyana;HK=Hong Kong;HM=Heard Island and"
    " McDonald "
    "Islands;HN=Honduras;HR=Croatia;HT=Haiti;HU=Hungary;ID=Indonesia;IE=Ireland;IL=Israel;IM=Isle"
    " of Man;IN=India;IO=British Indian Ocean "
    "Territory;IQ=Iraq;IR=Iran;IS=Iceland;IT=Italy;JE=Jersey;JM=Jamaica;JO=Jordan;JP=Japan;KE=Kenya;KG=Kyrgyzstan;KH=Cambodia;KI=Kiribati;KM=Comoros;KN=Saint"
    " Kitts and Nevis;KP=North Korea;KR=South Korea;KW=Kuwait;KY=Cayman "
    "Islands;KZ=Kazakhstan;LA=Laos;LB=Lebanon;LC=Saint Lucia;LI=Liechtenstein;LK=Sri "
    "Lanka;LR=Liberia;LS=Lesotho;LT=Lithuania;LU=Luxembourg;LV=Latvia;LY=Libya;MA=Morocco;MC=Monaco;MD=Moldova;ME=Montenegro;MF=Saint"
    " Martin;MG=Madagascar;MH=Marshall Islands;MK=North "
    "Macedonia;ML=Mali;MM=Myanmar;MN=Mongolia;MO=Macao;MP=Northern Mariana "
    "Islands;MQ=Martinique;MR=Mauritania;MS=Montserrat;MT=Malta;MU=Mauritius;MV=Maldives;MW=Malawi;MX=Mexico;MY=Malaysia;MZ=Mozambique;NA=Namibia;NC=New"
    " Caledonia;NE=Niger;NF=Norfolk "
    "Island;NG=Nigeria;NI=Nicaragua;NL=Netherlands;NO=Norway;NP=Nepal;NR=Nauru;NU=Niue;NZ=New"
    " Zealand;OM=Oman;PA=Panama;PE=Peru;PF=French Polynesia;PG=Papua New "
    "Guinea;PH=Philippines;PK=Pakistan;PL=Poland;PM=Saint Pierre and "
    "Miquelon;PN=Pitcairn;PR=Puerto "
    "Rico;PS=Palestine;PT=Portugal;PW=Palau;PY=Paraguay;QA=Qatar;RE=Réunion;RO=Romania;RS=Serbia;RU=Russia;RW=Rwanda;SA=Saudi"
    " Arabia;SB=Solomon Islands;SC=Seychelles;SD=Sudan;SE=Sweden;SG=Singapore;SH=Saint "
    "Helena;SI=Slovenia;SJ=Svalbard and Jan Mayen;SK=Slovakia;SL=Sierra Leone;SM=San "
    "Marino;SN=Senegal;SO=Somalia;SR=Suriname;SS=South Sudan;ST=Sao Tome and Principe;SV=El "
    "Salvador;SX=Sint Maarten;SY=Syria;SZ=Eswatini;TC=Turks and Caicos "
    "Islands;TD=Chad;TF=French Southern "
    "Territories;TG=Togo;TH=Thailand;TJ=Tajikistan;TK=Tokelau;TL=Timor-Leste;TM=Turkmenistan;TN=Tunisia;TO=Tonga;TR=Türkiye;TT=Trinidad"
    " and Tobago;TV=Tuvalu;TW=Taiwan;TZ=Tanzania;UA=Ukraine;UG=Uganda;UM=United States Minor "
    "Outlying Islands;US=United States;UY=Uruguay;UZ=Uzbekistan;VA=Vatican City;VC=Saint "
    "Vincent and the Grenadines;VE=Venezuela;VG=British Virgin Islands;VI=US Virgin "
    "Islands;VN=Vietnam;VU=Vanuatu;WF=Wallis and "
    "Futuna;WS=Samoa;XK=Kosovo;YE=Yemen;YT=Mayotte;ZA=South Africa;ZM=Zambia;ZW=Zimbabwe"
)


@dataclass(frozen=True)
class Location:
    """What the table knows of one public address."""

    country: str  # ISO 3166-1 alpha-2, "" if unknown
    asn: int  # 0 if no network announces it
    owner: str  # the network owner's name, "" if unknown

    @property
    def country_name(self) -> str:
        return country_name(self.country)


@functools.cache
def _names() -> dict[str, str]:
    pairs = (item.split("=", 1) for item in "".join(_COUNTRY_NAMES).split(";"))
    return {code: name for code, name in pairs}


def country_name(code: str) -> str:
    """The English short name of an ISO 3166-1 alpha-2 code (the code if unknown)."""
    return _names().get(code.upper(), code.upper())


def flag(code: str) -> str:
    """The flag emoji of a two-letter country code: its regional indicator symbols."""
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        return ""
    return "".join(chr(0x1F1E6 + ord(letter) - ord("A")) for letter in code.upper())


class Table:
    """The converted table, searched in place (see the CLI's ``ip_location_data``)."""

    def __init__(self, data: bytes) -> None:
        if data[: len(MAGIC)] != MAGIC:
            raise ValueError("not a loginwatch IP location table (rebuild with `loginwatch setup`)")
        (size,) = struct.unpack_from("<I", data, len(MAGIC))
        start = len(MAGIC) + 4
        self.header: dict[str, Any] = json.loads(data[start : start + size])
        self.countries: list[str] = self.header["countries"]
        view = memoryview(data)
        at = start + size
        at += -at % 8
        self.families: dict[int, tuple[Sequence[int], ...]] = {}
        for version, code in ((4, "H"), (6, "I")):
            buckets, rows = self.header[f"v{version}"]
            keys, at = self._part(view, at, "I", buckets)
            offsets, at = self._part(view, at, "I", buckets + 1)
            lows, at = self._part(view, at, code, rows)
            at += -at % 4
            values, at = self._part(view, at, "I", rows)
            self.families[version] = keys, offsets, lows, values
        owners = self.header["owners"]
        self.asns, at = self._part(view, at, "I", owners)
        self.name_offsets, at = self._part(view, at, "I", owners + 1)
        self.names = view[at:]

    @staticmethod
    def _part(view: memoryview, at: int, code: str, count: int) -> tuple[Sequence[int], int]:
        end = at + count * array(code).itemsize
        if sys.byteorder == "little":
            return view[at:end].cast(code), end  # type: ignore[call-overload]
        swapped = array(code, view[at:end])
        swapped.byteswap()
        return swapped, end

    def _row(self, version: int, value: int) -> int:
        """The index of the last range starting at or below ``value`` (-1: none)."""
        keys, offsets, lows, _ = self.families[version]
        shift = 16 if version == 4 else 32
        key, low = value >> shift, value & ((1 << shift) - 1)
        bucket = bisect_right(keys, key) - 1
        if bucket < 0:
            return -1
        if keys[bucket] != key:
            return offsets[bucket + 1] - 1
        first = offsets[bucket]
        row = bisect_right(lows, low, first, offsets[bucket + 1]) - 1
        return row if row >= first else first - 1

    def lookup(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Location | None:
        version = address.version
        value = int(address) if version == 4 else int(address) >> 64
        row = self._row(version, value)
        if row < 0:
            return None
        packed = self.families[version][3][row]
        country = self.countries[packed >> 24] if packed >> 24 < len(self.countries) else ""
        owner = packed & 0xFFFFFF
        if not country and not owner:
            return None
        if not owner:
            return Location(country, 0, "")
        start, end = self.name_offsets[owner - 1], self.name_offsets[owner]
        name = bytes(self.names[start:end]).decode("utf-8", "replace")
        return Location(country, self.asns[owner - 1], name)

    @property
    def built(self) -> str:
        return str(self.header.get("built", ""))


_table: Table | None = None
_path: Path | None = None
_labels: Mapping[str, str] = {}


def use_labels(labels: Mapping[str, str]) -> None:
    """The allowlist labels ``describe`` uses when given none (the notifier sets its
    settings' ``allowlist_labels`` once they are read)."""
    global _labels
    _labels = dict(labels)


def use(path: str | Path | None) -> None:
    """Read the table from ``path`` from now on (None: the one packed beside this module)."""
    global _table, _path
    _table, _path = None, Path(path) if path is not None else None


def table() -> Table | None:
    """The table, read at the first call; None where no table is packed (or it is unreadable:
    an alert without a location still goes out)."""
    global _table
    if _table is None:
        try:
            _table = Table((_path or DATA_FILE).read_bytes())
        except (OSError, ValueError, KeyError):
            return None
    return _table


def special_range(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What a non-public address is ("private network (RFC 1918)", "loopback", …), or None."""
    for network, text in _SPECIAL_NETWORKS:
        if address.version == network.version and address in network:
            return text
    return None


def _aws_internal(text: str) -> bool:
    # CloudTrail writes "AWS Internal", or the calling service's DNS name
    # (cloudformation.amazonaws.com), where AWS made a call on a principal's behalf.
    lowered = text.strip().lower()
    return lowered == "aws internal" or lowered.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def _allowlist_label(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, labels: Mapping[str, str]
) -> str | None:
    best: tuple[int, str] | None = None
    for cidr, label in labels.items():
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        inside = network.version == address.version and address in network
        if inside and label and (best is None or network.prefixlen > best[0]):
            best = (network.prefixlen, label)
    return best[1] if best else None


def describe(address: str, labels: Mapping[str, str] | None = None) -> str:
    """Where ``address`` (a CloudTrail ``sourceIPAddress``) is, in a few words.

    - inside an allowlist entry that has a label (``labels``: CIDR → label, the
      most specific entry wins): ``"allowlist: VPN"``
    - a special range: ``"private network (RFC 1918)"``, ``"documentation range
      (RFC 5737)"``, ``"carrier-grade NAT (RFC 6598)"``, ``"loopback"``, …
    - AWS acting for a principal (``"AWS Internal"``, a service's DNS name): ``"AWS internal"``
    - a public address: ``"🇩🇪 Germany · AS3320 Deutsche Telekom AG"``, the owner left
      out where no network announces the range
    - otherwise ``"location unknown"`` (or ``"not an IP address"``)
    """
    if _aws_internal(address):
        return "AWS internal"
    parsed = parse_ip(address)
    if parsed is None:
        return "not an IP address"
    labels = _labels if labels is None else labels
    if labels:
        label = _allowlist_label(parsed, labels)
        if label:
            return f"allowlist: {label}"
    special = special_range(parsed)
    if special:
        return special
    found = lookup(parsed)
    if found is None:
        return "location unknown"
    parts = []
    if found.country:
        parts.append(f"{flag(found.country)} {found.country_name}".strip())
    if found.asn:
        parts.append(f"AS{found.asn} {found.owner}".strip())
    return " · ".join(parts) or "location unknown"


def lookup(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> Location | None:
    """The table's entry for a public address (None: unknown, or no table packed)."""
    parsed = parse_ip(address) if isinstance(address, str) else address
    loaded = table()
    if parsed is None or loaded is None:
        return None
    return loaded.lookup(parsed)
