"""The one protocol every AWS resource kind follows.

read() → observed state or None · diff(observed) → what differs · create() ·
update(observed, changes) · delete(observed). setup, status, teardown and
--dry-run are all built from these five, so a resource is described once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import botocore.exceptions

from ..aws import Aws, error_code, translate_errors
from ..config import Config
from ..names import MANAGED_BY, NAME_TAG, Names

Observed = dict[str, Any]


@dataclass(frozen=True)
class Check:
    """A health check beyond existence, for `status` (is the chain able to fire?)."""

    name: str
    ok: bool
    detail: str
    warning_only: bool = False


@dataclass
class Deployment:
    """Everything a resource needs: config, names, AWS access, and derived artefacts."""

    config: Config
    aws: Aws
    names: Names
    pattern: str
    package: bytes
    package_sha256: str
    # In reuse mode the trail's log group is learned from the trail at runtime.
    trail_log_group: str = ""
    notices: list[str] = field(default_factory=list)

    @property
    def tags(self) -> dict[str, str]:
        return {**self.config.tags, MANAGED_BY[0]: MANAGED_BY[1], NAME_TAG: self.names.name}

    def tag_list(self, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
        return [{key: k, value: v} for k, v in sorted(self.tags.items())]


class NotOurs(Exception):
    """A resource with our name exists but loginwatch did not create it."""


class Resource(ABC):
    kind: ClassVar[str]
    label: ClassVar[str]  # what the user reads, e.g. "S3 bucket"
    service: ClassVar[str]
    # False for things loginwatch uses but never changes (a reused trail).
    managed: ClassVar[bool] = True
    # Audit data: teardown keeps the resource unless asked; this says why and how.
    keeps_data: ClassVar[str] = ""
    # Takes no tags: it is loginwatch's when the resource of this kind it lives on is.
    owner_kind: ClassVar[str | None] = None

    def __init__(self, deployment: Deployment) -> None:
        self.d = deployment

    # ------------------------------------------------------------ identity
    @property
    @abstractmethod
    def name(self) -> str: ...

    @property
    def arn(self) -> str:
        return ""

    @property
    def names(self) -> Names:
        return self.d.names

    @property
    def aws(self) -> Aws:
        return self.d.aws

    @cached_property
    def client(self) -> Any:
        return self.aws.client(self.service)

    # ------------------------------------------------------------ protocol
    @abstractmethod
    def read(self) -> Observed | None:
        """Current state as loginwatch compares it, or None when the resource is absent."""

    @abstractmethod
    def diff(self, observed: Observed) -> list[str]:
        """Human-readable differences between observed and desired; empty when in sync."""

    @abstractmethod
    def create(self) -> None: ...

    @abstractmethod
    def update(self, observed: Observed, changes: list[str]) -> None: ...

    @abstractmethod
    def delete(self, observed: Observed) -> str:
        """Remove it; return a short note for the user (or "")."""

    def owned(self, observed: Observed) -> bool:
        """Did loginwatch make this? Default: our two tags, with our name."""
        return has_our_tags(observed.get("tags", {}), self.names.name)

    def adoptable(self, observed: Observed) -> bool:
        """May setup change it although owned() is False? Only where a resource says why."""
        return False

    def cleanable(self, observed: Observed) -> bool:
        """Not ours, but carries something setup added that teardown should take back."""
        return False

    def clean(self, observed: Observed) -> str:
        """Take back what setup added to a resource it does not own; return a note."""
        raise NotImplementedError

    def checks(self, observed: Observed) -> list[Check]:
        """Extra health checks for `status`; most resources have none."""
        return []

    # ------------------------------------------------------------ helpers
    @contextmanager
    def aws_call(self, action: str) -> Iterator[None]:
        with translate_errors(action, self.name):
            yield


def has_our_tags(tags: Mapping[str, str], name: str) -> bool:
    return tags.get(MANAGED_BY[0]) == MANAGED_BY[1] and tags.get(NAME_TAG) == name


def tags_from_list(
    items: list[dict[str, str]] | None, key: str = "Key", value: str = "Value"
) -> dict[str, str]:
    return {item[key]: item[value] for item in items or []}


def absent_on(*codes: str) -> Any:
    """Decorator for read(): these error codes mean "the resource does not exist"."""

    def wrap(func: Any) -> Any:
        def inner(self: Resource) -> Observed | None:
            try:
                return func(self)
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) in codes:
                    return None
                with self.aws_call(f"{self.service}:{exc.operation_name}"):
                    raise

        inner.__name__ = func.__name__
        inner.__doc__ = func.__doc__
        return inner

    return wrap


def changed(label: str, old: Any, new: Any) -> str:
    return f"{label}: {old} → {new}"
