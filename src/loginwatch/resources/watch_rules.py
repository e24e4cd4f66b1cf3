"""EventBridge rules that watch API calls: a leaked key, or someone switching loginwatch
off, heard of in seconds.

One resource per region holds that region's watch rules, named ``<name>-key-…`` and
``<name>-tamper-…``:

- ``access_key_outside_allowlist``: ``<name>-key-api-calls-1`` … ``-N``. "Outside the
  allowlist" is the allowlist's complement written as ``cidr`` values; a pattern
  holds at most 2,048 characters, so a long allowlist needs several rules per region
  (api_call_patterns.py). Their state opts in to read-only calls
  (``ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS``): an intruder's first calls,
  ``GetCallerIdentity`` and ``List*``, are read-only. Every region of the fast path.
- ``credentials_exposed``: ``<name>-key-exposed``, AWS Health's RISK events and AWS
  attaching its quarantine policy. Health's global events arrive in us-east-1 with
  us-west-2 as backup, IAM's calls in us-east-1: a rule in both, and one in the home
  region to take what they forward.
- ``tamper``: ``<name>-tamper-1`` … ``-N``, a change that can switch loginwatch off
  (tamper_patterns.py). Every region of the fast path, and us-east-1 (IAM's calls).

As for sign-ins, the home region's rules invoke the notifier and the others forward
to the home bus, so only out-of-allowlist calls cross regions (each is billed as a
custom event). The number of rules follows the allowlist: the resource lists the
region's rules by name prefix and removes any it no longer needs.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from .. import operator_policy as perms
from ..api_call_patterns import KEY_EXPOSED_PATTERN
from ..errors import AwsError, UsageError
from ..names import KEY_PREFIX, TAMPER_PREFIX
from .base import Check, Deployment, Observed, Resource, has_our_tags
from .sign_in_rule import RETRY_POLICY, TARGET_ID, _comparable

API_CALLS_STATE = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
# Where AWS sends Health's global events (us-west-2 is its backup) and IAM's calls.
KEY_EXPOSED_REGIONS = ("us-east-1", "us-west-2")


class WatchRules(Resource):
    kind = "watch-rules"
    label = "watch rules"
    service = "events"
    sid = "WatchRules"
    removable_by_setup = True

    def __init__(
        self,
        deployment: Deployment,
        region: str | None = None,
        *,
        api_calls: bool,
        key_exposed: bool,
        tamper: bool = False,
    ) -> None:
        super().__init__(deployment, region, wanted=api_calls or key_exposed or tamper)
        self.api_calls = api_calls
        self.key_exposed = key_exposed
        self.tamper = tamper
        self._in_the_way: list[str] = []

    @property
    def name(self) -> str:
        return f"{self.names.name}-{{key,tamper}}-*"

    @property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(f"{self.names.name}-{p}" for p in (KEY_PREFIX, TAMPER_PREFIX))

    def policy_arns(self) -> tuple[str, ...]:
        return (self.names.rules_arn(self.region),)

    @property
    def forwards(self) -> bool:
        return not self.in_home_region

    # ------------------------------------------------------------ desired
    def desired(self) -> dict[str, dict[str, Any]]:
        """Rule name → pattern, state and description, for this region."""
        names, found = self.names, {}
        if self.api_calls:
            count = len(self.d.api_call_patterns)
            for index, pattern in enumerate(self.d.api_call_patterns):
                found[names.api_call_rule(index)] = {
                    "pattern": pattern,
                    "state": API_CALLS_STATE,
                    "description": (
                        f"loginwatch '{names.name}': API calls with access keys from outside "
                        f"the allowlist ({index + 1} of {count}) → {self._destination()}"
                    ),
                }
        if self.key_exposed:
            found[names.key_exposed_rule] = {
                "pattern": KEY_EXPOSED_PATTERN,
                "state": "ENABLED",
                "description": (
                    f"loginwatch '{names.name}': AWS reports an access key exposed → "
                    f"{self._destination()}"
                ),
            }
        if self.tamper:
            count = len(self.d.tamper_patterns)
            for index, pattern in enumerate(self.d.tamper_patterns):
                found[names.tamper_rule(index)] = {
                    "pattern": pattern,
                    "state": "ENABLED",  # write calls: no read-only opt-in needed
                    "description": (
                        f"loginwatch '{names.name}': changes that can switch it off "
                        f"({index + 1} of {count}) → {self._destination()}"
                    ),
                }
        return found

    def _destination(self) -> str:
        return f"{self.names.region} bus" if self.forwards else "notifier"

    def target(self) -> dict[str, Any]:
        queue = self.names.queue_arn(self.names.events_dead_letter_queue, self.region)
        delivery = {"RetryPolicy": RETRY_POLICY, "DeadLetterConfig": {"Arn": queue}}
        if self.forwards:
            return {
                "Id": TARGET_ID,
                "Arn": self.names.event_bus_arn(),
                "RoleArn": self.names.role_arn(self.names.forwarding_role),
                **delivery,
            }
        return {"Id": TARGET_ID, "Arn": self.names.function_arn, **delivery}

    def watched(self) -> list[dict[str, Any]]:
        return [self.watch("rule", name) for name in self.desired()]

    # ------------------------------------------------------------ permissions
    def calls(self) -> list[perms.Grant | None]:
        found: list[perms.Grant | None] = [
            # The sign-in rules' actions exactly (DescribeRule is theirs): a compact
            # policy joins the two statements, on rules_arn.
            self.grant(
                "Read", perms.READ, "DescribeRule", "ListTargetsByRule", "ListTagsForResource"
            ),
            # ListRules has no resource type: listed by name prefix, on "*".
            perms.no_resource_level(perms.READ, "events", "ListRules"),
            self.grant("Setup", perms.ON_SETUP, "PutRule", "PutTargets", "RemoveTargets"),
            self.grant("Teardown", perms.ON_TEARDOWN, "ListTargetsByRule", "RemoveTargets"),
            self.grant("Teardown", perms.ON_TEARDOWN, "DeleteRule"),
        ]
        if self.forwards:
            to_events = perms.pass_role(
                "SetupPassForwardingRoleToEvents",
                self.names.role_arn(self.names.forwarding_role),
                "events.amazonaws.com",
            )
            found.append(
                perms.Grant(
                    to_events.sid,
                    to_events.resources,
                    implied=(("iam:PassRole", perms.ON_SETUP),),
                    condition=to_events.condition,
                )
            )
        return found

    # ------------------------------------------------------------ protocol
    def read(self) -> Observed | None:
        rules: dict[str, dict[str, Any]] = {}
        with self.aws_call():
            pages = self.client.get_paginator("list_rules").paginate(
                NamePrefix=f"{self.names.name}-"
            )
            listed = [
                rule
                for page in pages
                for rule in page.get("Rules", [])
                if rule["Name"].startswith(self.prefixes)  # not the sign-in rule
            ]
        for rule in listed:
            with self.aws_call():
                tags = self.client.list_tags_for_resource(ResourceARN=rule["Arn"]).get("Tags", [])
                targets = self.client.list_targets_by_rule(Rule=rule["Name"]).get("Targets", [])
            rules[rule["Name"]] = {
                "pattern": json.loads(rule.get("EventPattern") or "{}"),
                "state": rule.get("State"),
                "description": rule.get("Description"),
                "targets": [_comparable(t) for t in targets],
                "tags": {t["Key"]: t["Value"] for t in tags},
            }
        ours = {n: r for n, r in rules.items() if has_our_tags(r["tags"], self.names.name)}
        # Someone else's rules under our prefix are never touched, and matter only when
        # setup needs one of their names (preflight refuses then).
        in_the_way = sorted(set(rules) - set(ours) & set(self.desired()))
        self._in_the_way = in_the_way
        if not ours and not in_the_way:
            return None
        return {"rules": ours, "in_the_way": in_the_way}

    def owned(self, observed: Observed) -> bool:
        # Teardown and setup's removal take ours only (delete() touches tagged rules).
        return bool(observed["rules"])

    def adoptable(self, observed: Observed) -> bool:
        # Ours are created beside another's rules; preflight names a name in the way.
        return True

    def preflight(self) -> None:
        """Before anything is written: a rule setup needs exists and is not ours."""
        taken = self._in_the_way  # as the plan's reading found them
        if taken:
            raise UsageError(
                f"EventBridge rule {', '.join(taken)} in {self.region} already exists but was "
                "not created by loginwatch (it lacks the managed-by=loginwatch tags), so "
                "loginwatch will not change it.",
                "Choose another `name` in the config, or delete/rename that rule yourself.",
            )

    def diff(self, observed: Observed) -> list[str]:
        changes: list[str] = []
        have, want = observed["rules"], self.desired()
        target = [_comparable(self.target())]
        for name, rule in want.items():
            now = have.get(name)
            if now is None:
                changes.append(f"{name}: create")
                continue
            what = []
            if now["pattern"] != rule["pattern"]:
                what.append("event pattern")
            if now["state"] != rule["state"]:
                what.append(f"state {now['state']} → {rule['state']}")
            if now["description"] != rule["description"]:
                what.append("description")
            if now["targets"] != target:
                what.append(f"target: only {self.target()['Arn']}")
            if what:
                changes.append(f"{name}: {', '.join(what)}")
        changes += [f"{name}: no longer needed, remove" for name in sorted(set(have) - set(want))]
        return changes

    def create(self) -> None:
        self._settle({})

    def update(self, observed: Observed, changes: list[str]) -> None:
        self._settle(observed["rules"])

    def _settle(self, have: dict[str, dict[str, Any]]) -> None:
        """Put every wanted rule and its target (both replace: a re-run after a crash
        repeats them), then remove the ones no longer needed."""
        target = [_comparable(self.target())]
        for name, rule in self.desired().items():
            now = have.get(name)
            same_rule = now is not None and all(
                now[k] == rule[k] for k in ("pattern", "state", "description")
            )
            if not same_rule:
                params: dict[str, Any] = {
                    "Name": name,
                    "EventPattern": json.dumps(rule["pattern"], separators=(",", ":")),
                    "State": rule["state"],
                    "Description": rule["description"],
                }
                if now is None:  # PutRule on an existing rule leaves its tags as they are
                    params["Tags"] = self.d.tag_list()
                with self.aws_call():
                    self.client.put_rule(**params)
            if now is None or now["targets"] != target:
                self._put_target(name, now["targets"] if now else [])
        for name in sorted(set(have) - set(self.desired())):
            self._delete_rule(name)

    def _put_target(self, rule: str, observed_targets: list[dict[str, Any]]) -> None:
        extra = [t["Id"] for t in observed_targets if t["Id"] != TARGET_ID]
        with self.aws_call():
            if extra:
                self.client.remove_targets(Rule=rule, Ids=extra)
            answer = self.client.put_targets(Rule=rule, Targets=[self.target()])
        if answer.get("FailedEntryCount"):
            entry = answer["FailedEntries"][0]
            raise AwsError(
                f"events:PutTargets on {rule} in {self.region} failed: "
                f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}"
            )

    def _delete_rule(self, rule: str) -> None:
        c = self.client
        with self.aws_call():
            with contextlib.suppress(c.exceptions.ResourceNotFoundException):
                ids = [t["Id"] for t in c.list_targets_by_rule(Rule=rule).get("Targets", [])]
                if ids:
                    c.remove_targets(Rule=rule, Ids=ids)
            with contextlib.suppress(c.exceptions.ResourceNotFoundException):
                c.delete_rule(Name=rule)

    def delete(self, observed: Observed) -> str:
        for name in sorted(observed["rules"]):
            self._delete_rule(name)
        return ""

    def checks(self, observed: Observed) -> list[Check]:
        if not self.in_home_region or not self.wanted:
            return []  # the drift names a broken rule; one check per region would drown it
        have, want = observed["rules"], self.desired()
        target = [_comparable(self.target())]
        healthy = all(
            (now := have.get(name)) is not None
            and now["state"] == rule["state"]
            and now["targets"] == target
            for name, rule in want.items()
        )
        detail = f"{len(want)} rule(s) enabled, target the notifier" if healthy else "see drift"
        return [Check("fast path: watch rules → notifier", healthy, detail, repeats_drift=True)]
