"""Member accounts' names from AWS Organizations, for the message (organization mode).

Looked up once per account per container (DescribeAccount, the only Organizations
call the notifier's role may make). A lookup that fails (access denied, throttled)
leaves the id alone in the message: a name is a convenience, never a reason to
delay or lose an alert.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .calls import MEMBER_ACCOUNTS, Call

CALLS = (Call("organizations", "DescribeAccount", MEMBER_ACCOUNTS),)

# Account id → its name, or None when the lookup failed (not retried in this container).
_cache: dict[str, str | None] = {}


def reset() -> None:
    _cache.clear()


def names_of(account_ids: Iterable[str], client: Callable[[], Any]) -> dict[str, str]:
    """The names of those accounts that have one we could read."""
    found: dict[str, str] = {}
    for account_id in account_ids:
        if not account_id:
            continue
        if account_id not in _cache:
            _cache[account_id] = _describe(client, account_id)
        name = _cache[account_id]
        if name:
            found[account_id] = name
    return found


def _describe(client: Callable[[], Any], account_id: str) -> str | None:
    try:
        account = client().describe_account(AccountId=account_id)["Account"]
    except Exception as error:  # the message goes out with the id alone
        print(
            json.dumps({"loginwatch": "notifier", "account_name_unavailable": type(error).__name__})
        )
        return None
    name = account.get("Name")
    return name if isinstance(name, str) and name else None
