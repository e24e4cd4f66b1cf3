"""Pack the notifier into a deterministic Lambda deployment zip.

Deterministic bytes mean a deterministic ``CodeSha256``: ``setup`` can compare
it with the deployed function's and skip the update when nothing changed, and
``status`` can report drift.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import loginwatch.notifier
from loginwatch import ip_location_data
from loginwatch.notifier.settings import Settings

PACKAGE_NAME = "loginwatch_notifier"
HANDLER = f"{PACKAGE_NAME}.handler.lambda_handler"
RUNTIME = "python3.12"

_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_FILE_MODE = 0o644 << 16  # rw-r--r-- in the high (Unix) bits of external_attr
_CREATE_SYSTEM_UNIX = 3


def notifier_source_dir() -> Path:
    return Path(loginwatch.notifier.__file__).parent


def _zip_entries(settings: Mapping[str, Any]) -> dict[str, bytes]:
    source = notifier_source_dir()
    entries: dict[str, bytes] = {}
    for path in source.rglob("*.py"):
        relative = path.relative_to(source)
        if "__pycache__" in relative.parts:
            continue
        entries[f"{PACKAGE_NAME}/{relative.as_posix()}"] = path.read_bytes()
    text = json.dumps(dict(settings), sort_keys=True, indent=2) + "\n"
    entries[f"{PACKAGE_NAME}/settings.json"] = text.encode("utf-8")
    # Where an address is (notifier/ip_location.py): converted from the installed
    # database, uncompressed, so the same installed version gives the same bytes.
    entries[f"{PACKAGE_NAME}/ip_location.bin"] = ip_location_data.table_bytes()
    return entries


def build_zip(settings: Mapping[str, Any]) -> bytes:
    """The Lambda zip: the notifier's modules plus settings.json, byte-for-byte stable.

    ``settings`` is validated against the notifier's own schema first, so a CLI
    that writes the wrong keys fails here rather than inside Lambda.
    """
    Settings.from_dict(settings)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in sorted(_zip_entries(settings).items()):
            info = zipfile.ZipInfo(name, date_time=_DATE_TIME)
            # Stored, not deflated: deflate output depends on the zlib build (zlib-ng
            # and stock zlib differ), which would change CodeSha256 between machines.
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = _FILE_MODE
            info.create_system = _CREATE_SYSTEM_UNIX
            info.extra = b""
            archive.writestr(info, data)
    return buffer.getvalue()


def code_sha256(zip_bytes: bytes) -> str:
    """Base64 of the SHA-256 digest: the format of Lambda's ``CodeSha256``."""
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode("ascii")


def _forget_loaded_notifier() -> None:
    for name in list(sys.modules):
        if name == PACKAGE_NAME or name.startswith(PACKAGE_NAME + "."):
            del sys.modules[name]


def load_handler_from_zip(zip_bytes: bytes, tmpdir: str | Path) -> ModuleType:
    """Import ``loginwatch_notifier.handler`` from the zip, as Lambda would.

    Each call extracts into its own directory under ``tmpdir`` and drops any
    previously imported ``loginwatch_notifier`` modules first, so a second load
    (say, with other settings) never sees the first one's code or settings.
    Modules returned earlier keep working: they hold their own submodules.
    """
    target = Path(tempfile.mkdtemp(prefix="loginwatch-notifier-", dir=tmpdir))
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        archive.extractall(target)
    _forget_loaded_notifier()
    sys.path.insert(0, str(target))
    try:
        importlib.invalidate_caches()
        return importlib.import_module(f"{PACKAGE_NAME}.handler")
    finally:
        # The package's __path__ now points into `target`; sys.path needs no entry.
        sys.path.remove(str(target))
