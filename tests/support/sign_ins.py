"""Real-shaped CloudTrail ConsoleLogin records, and planted histories for `review`.

The record's shape follows tests/fixtures/cloudtrail/console_login_*.json (and the
DESIGN notes' "ConsoleLogin record"); every field the notifier's parser reads is set.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

ACCOUNT = "123456789012"  # moto's default account
_ids = itertools.count(1)

# The planted history of `review`'s tests: the team signs in from three networks (an
# office /24, a VPN exit, one home IPv6 connection), always with MFA, over weeks; an
# intruder signs in from a fourth after failures, without MFA, on one day.
TEAM = ("alice", "bob", "carol", "dave")
OFFICE = ("192.0.2.10", "192.0.2.11", "192.0.2.200")  # → 192.0.2.0/24
VPN = ("198.51.100.7",)  # → 198.51.100.7/32 (one address: the evidence is narrow)
HOME_V6 = ("2001:db8:77:1::15", "2001:db8:77:1::99")  # → 2001:db8:77:1::/64
ATTACKER = "203.0.113.66"
ALLOWED = "100.64.1.1"  # the config's own allowlist entry (CGNAT, for the test)


def record(
    when: datetime,
    *,
    user: str = "alice",
    ip: str = "192.0.2.10",
    success: bool = True,
    mfa: str | None = "Yes",
    identity: str = "IAMUser",
    region: str = "us-east-1",
    account: str = ACCOUNT,
) -> dict[str, Any]:
    """One ConsoleLogin record (root: identity="Root"; SSO: identity="AssumedRole")."""
    if identity == "Root":
        who: dict[str, Any] = {"type": "Root", "arn": f"arn:aws:iam::{account}:root"}
    elif identity == "AssumedRole":
        who = {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{account}:assumed-role/AWSReservedSSO_Admin_0123/{user}",
        }
    else:
        who = {"type": identity, "userName": user, "arn": f"arn:aws:iam::{account}:user/{user}"}
    who.update(accountId=account, principalId="AIDAEXAMPLE")
    found: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": who,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
        "requestParameters": None,
        "responseElements": {"ConsoleLogin": "Success" if success else "Failure"},
        "eventID": f"00000000-0000-4000-8000-{next(_ids):012d}",
        "readOnly": False,
        "eventType": "AwsConsoleSignIn",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if mfa is not None:
        found["additionalEventData"] = {"MFAUsed": mfa, "MobileVersion": "No"}
    if not success:
        found["errorMessage"] = "Failed authentication"
    return found


def team_history(now: datetime, days: int = 28) -> list[dict[str, Any]]:
    """The team's three networks, the intruder's one, and what must never be suggested."""
    records = []
    for day in range(1, days + 1):
        morning = now - timedelta(days=day, hours=-9 + day % 3)
        for n, user in enumerate(TEAM):
            records.append(record(morning + timedelta(minutes=n), user=user,
                                  ip=OFFICE[(day + n) % len(OFFICE)]))  # fmt: skip
        if day % 3 == 0:  # the VPN, now and then, in another region
            records.append(record(morning + timedelta(hours=10), user="bob", ip=VPN[0],
                                  region="us-west-2"))  # fmt: skip
        if day % 4 == 0:  # carol from home, through SSO (MFA at the identity provider)
            records.append(record(morning + timedelta(hours=12), user="carol",
                                  ip=HOME_V6[day // 4 % 2], identity="AssumedRole", mfa="No"))  # fmt: skip
        records.append(record(morning + timedelta(hours=1), user="erin", ip=ALLOWED))
    attack = now - timedelta(days=5, hours=3)
    for n in range(4):  # a burst of failures, then in, without MFA
        records.append(record(attack + timedelta(seconds=20 * n), user="dave", ip=ATTACKER,
                              success=False, mfa=None))  # fmt: skip
    records.append(record(attack + timedelta(minutes=2), user="dave", ip=ATTACKER, mfa="No"))
    records.append(record(attack + timedelta(minutes=9), user="dave", ip=ATTACKER, mfa="No"))
    # Never suggested: seen only failing, only for root, only once.
    records += [record(now - timedelta(days=d), user="alice", ip="198.18.0.250", success=False,
                       mfa=None) for d in (3, 8)]  # fmt: skip
    records += [record(now - timedelta(days=d), identity="Root", ip="198.18.5.5") for d in (2, 9)]
    records.append(record(now - timedelta(days=6), user="bob", ip="198.18.9.9"))
    return records
