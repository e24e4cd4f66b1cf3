"""What `validate` reports about a config: pure data, rendered by ui.py or as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .allowlist import CompiledPattern, collapse, compile_pattern, is_allowed
from .config import Config, IPNetwork


@dataclass(frozen=True)
class IpVerdict:
    ip: str
    alerts: bool


@dataclass(frozen=True)
class ConfigSummary:
    config: Config
    compiled: CompiledPattern
    allowlist: tuple[str, ...]
    ips: tuple[IpVerdict, ...]

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.config.warnings + self.compiled.notes

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.config.region,
            "name": self.config.name,
            "allowlist": list(self.allowlist),
            "pattern": self.compiled.pattern,
            "pattern_length": self.compiled.length,
            "exact": self.compiled.exact,
            "warnings": list(self.warnings),
            "webhook": self.config.masked_webhook,
            "fast_path": {
                "enabled": self.config.fast_path.enabled,
                "regions": "all"
                if self.config.fast_path.regions is None
                else list(self.config.fast_path.regions),
            },
            "ips": [{"ip": v.ip, "alerts": v.alerts} for v in self.ips],
        }


def summarize(config: Config, ips: tuple[str, ...] = ()) -> ConfigSummary:
    networks = collapse(config.allowed)
    verdicts = tuple(_verdict(ip, networks) for ip in ips)
    return ConfigSummary(
        config=config,
        compiled=compile_pattern(networks),
        allowlist=tuple(str(n) for n in networks),
        ips=verdicts,
    )


def _verdict(ip: str, networks: list[IPNetwork]) -> IpVerdict:
    # A successful sign-in alerts exactly when the notifier's exact check says
    # the address is outside the allowlist (the pattern may over-match, never under).
    return IpVerdict(ip=ip, alerts=not is_allowed(ip, networks))
