"""Property tests: no config text, however odd, gets past the config loader as a crash.

``parse_config`` returns a Config or raises ConfigError, never anything else;
``loginwatch validate`` exits 0 or 2 with no traceback and an "Error:" line;
and no command creates an AWS client before its config is valid.

Inputs that once crashed the loader (exit 1, "unexpected error") are pinned in
CRASHERS at the end; KNOWN_CRASHES stays empty so any new crash fails.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import ipaddress
import os
import string
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from loginwatch import config as config_module
from loginwatch.allowlist import PatternError, compile_pattern
from loginwatch.cli import main
from loginwatch.config import TOP_KEYS, Config, parse_config
from loginwatch.errors import ConfigError

WEBHOOK = "https://hooks.slack.com/services/T000/B000/abcdefghijklmnop"
EXAMPLE = Path(__file__).parents[2] / "config.example.yaml"

# config.example.yaml as data, with the webhook written out.
VALID: dict[str, Any] = {
    "region": "us-east-1",
    "name": "loginwatch",
    "allowed_ips": [
        "203.0.113.10",
        {"cidr": "198.51.100.0/24", "label": "VPN"},
        {"cidr": "2001:db8:1::/48", "label": "office IPv6"},
    ],
    "slack": {"webhook_url": WEBHOOK},
    "trail": {"existing": None, "bucket": None},
    "log_group": {"retention_days": 365},
    "alarm": {"period_seconds": 60, "evaluation_periods": 1},
    "notifier": {"lookback_minutes": 10, "log_retention_days": 365},
    "kms": {"log_group": None, "topic": None, "parameter": None, "bucket": None},
    "tags": {"team": "security"},
}
VALID_TEXT = yaml.safe_dump(VALID, sort_keys=False)

# Bugs the properties found (recursive anchors, 4300-digit integers, unparsable
# webhook URLs, an empty webhook) are fixed; CRASHERS below pins each one.
KNOWN_CRASHES: tuple[tuple[type[BaseException], str, str | None], ...] = ()

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    # Large inputs are the point (60-entry and 1000-entry allowlists): without
    # data_too_large suppressed the health check fails a run now and then at random.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture(autouse=True)
def cached_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    """known_regions() builds a botocore session per call (~60 ms); cache it for speed."""
    monkeypatch.setattr(
        config_module, "known_regions", functools.lru_cache(config_module.known_regions)
    )


def is_known_crash(exc: BaseException) -> bool:
    where = traceback.extract_tb(exc.__traceback__)[-1].name if exc.__traceback__ else None
    return any(
        isinstance(exc, kind) and text in str(exc) and function in (None, where)
        for kind, text, function in KNOWN_CRASHES
    )


def parse(text: str, env: dict[str, str] | None = None) -> Config | ConfigError | None:
    """The loader's outcome: a Config, a ConfigError, or None for a known crash."""
    try:
        return parse_config(text, "lw.yaml", env if env is not None else {})
    except ConfigError as exc:
        assert exc.problems and all(p.startswith("lw.yaml") for p in exc.problems), exc.problems
        return exc
    except Exception as exc:
        if is_known_crash(exc):
            with contextlib.suppress(InvalidArgument):  # note() only works inside @given
                note(f"known crash: {type(exc).__name__}: {exc}")
            return None
        raise AssertionError(f"parse_config raised {type(exc).__name__}: {exc}") from exc


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


def validate(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> int:
    """Run `loginwatch validate` on text and check the exit contract; return the code."""
    path = tmp_path / "lw.yaml"
    path.write_text(text, encoding="utf-8")
    code, _, err = run_cli(["validate", "--config", str(path), *extra], capsys)
    assert "Traceback" not in err
    if code == 1 and "unexpected error" in err:
        assert parse(text, dict(os.environ)) is None, err  # only a known loader crash may
        assume(False)
    assert code in (0, 2), err
    if code == 2:
        assert err.startswith("Error:"), err
    return code


# ---------------------------------------------------------------- strategies

binaryish = st.binary(max_size=80).map(lambda b: b.decode("latin-1"))
odd_text = st.text(
    alphabet=st.characters(
        categories=("L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co"), exclude_characters="\x00"
    ),
    max_size=40,
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | odd_text
    | binaryish
    | st.sampled_from(["us-east-1", "203.0.113.0/24", "2001:db8::/32", WEBHOOK, "${HOME}", ""])
)
keys = st.sampled_from(TOP_KEYS) | st.text(max_size=12) | odd_text
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)


def paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key path and list index in a document (the root excluded)."""
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def parent_of(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """The valid config with 1-3 changes: wrong types anywhere, deletions, odd extra keys."""
    doc = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        every = list(paths(doc))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "add" or not every:
            containers = [doc, *(v for p in every if isinstance(v := _at(doc, p), dict))]
            draw(st.sampled_from(containers))[draw(keys)] = draw(values)
            continue
        path = draw(st.sampled_from(every))
        parent = parent_of(doc, path)
        if action == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(values)
    if draw(st.booleans()):  # the same object twice: safe_dump writes an anchor and an alias
        shared = draw(st.lists(scalars, min_size=1, max_size=3) | st.just(VALID["allowed_ips"]))
        doc[draw(st.sampled_from(TOP_KEYS))] = shared
        doc[draw(keys)] = shared
    return doc


def _at(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def dump(draw: st.DrawFn, doc: Any) -> str:
    return yaml.safe_dump(
        doc,
        allow_unicode=draw(st.booleans()),
        default_flow_style=draw(st.sampled_from([False, True, None])),
        sort_keys=False,
    )


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    return dump(draw, draw(mutated_documents()))


@st.composite
def random_documents(draw: st.DrawFn) -> str:
    doc = draw(values | st.dictionaries(keys, values, max_size=6))
    return dump(draw, doc)


YAML_CHARS = ":-[]{}&*!|>'\"#%@`,?\n\t ~=<" + string.ascii_letters[:8] + "0123.\\/$"
raw_texts = (
    st.text(max_size=200)
    | st.text(alphabet=YAML_CHARS, max_size=120)
    | binaryish
    | st.builds(lambda a, b: a + b, st.just(VALID_TEXT), st.text(alphabet=YAML_CHARS, max_size=40))
)


@st.composite
def deeply_nested(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 120))
    key = draw(st.sampled_from([*TOP_KEYS, "extra"]))
    if draw(st.booleans()):
        inner = "[" * depth + draw(st.sampled_from(["", "1", "a", "203.0.113.1"])) + "]" * depth
        return VALID_TEXT + f"{key}: {inner}\n" if key not in VALID else f"{key}: {inner}\n"
    lines = [f"{'  ' * i}k{i}:" for i in range(depth)] + [f"{'  ' * depth}leaf"]
    return f"{key}:\n" + "\n".join("  " + line for line in lines) + "\n"


@st.composite
def duplicate_key_texts(draw: st.DrawFn) -> str:
    # a double-quoted YAML scalar, escapes and all
    value = yaml.safe_dump(draw(st.text(max_size=20) | odd_text), default_style='"', width=10**6)
    value = value.removesuffix("\n")
    if draw(st.booleans()):
        key = draw(st.sampled_from(list(VALID)))
        return VALID_TEXT + f"{key}: {value}\n"
    return VALID_TEXT.replace(
        f"  webhook_url: {WEBHOOK}\n", f"  webhook_url: {WEBHOOK}\n  webhook_url: {value}\n"
    )


any_config_text = (
    mutated_texts() | random_documents() | raw_texts | deeply_nested() | duplicate_key_texts()
)


# ---------------------------------------------------------------- parse_config properties


def test_the_base_document_is_the_example_config() -> None:
    ours = parse_config(VALID_TEXT, "lw.yaml", {})
    example = parse_config(
        EXAMPLE.read_text(), "example.yaml", {"LOGINWATCH_SLACK_WEBHOOK": WEBHOOK}
    )
    assert ours.allowed == example.allowed and ours.kms == example.kms
    assert (ours.region, ours.name, ours.tags) == (example.region, example.name, example.tags)


@PROPERTY
@given(text=random_documents())
def test_random_yaml_structures_never_crash_the_loader(text: str) -> None:
    parse(text)


@PROPERTY
@given(text=raw_texts)
def test_random_text_never_crashes_the_loader(text: str) -> None:
    parse(text)


@PROPERTY
@given(text=mutated_texts())
def test_a_mutated_valid_config_loads_or_names_its_problems(text: str) -> None:
    outcome = parse(text)
    if isinstance(outcome, Config):
        assert outcome.region and outcome.name and outcome.allowed and outcome.webhook_url


@PROPERTY
@given(text=deeply_nested())
def test_deep_nesting_is_a_config_error(text: str) -> None:
    assert not isinstance(parse(text), Config)


@PROPERTY
@given(text=duplicate_key_texts())
def test_duplicate_keys_are_reported_with_both_lines(text: str) -> None:
    outcome = parse(text)
    assert isinstance(outcome, ConfigError)
    assert "duplicate key (first at line" in str(outcome)


@settings(max_examples=8, deadline=None)
@given(count=st.integers(1001, 5000), as_mappings=st.booleans())
def test_huge_allowlists_are_refused_not_compiled(count: int, as_mappings: bool) -> None:
    ips = [f"10.{i // 256 % 256}.{i % 256}.{i // 65536}" for i in range(count)]
    doc = {**VALID, "allowed_ips": [{"cidr": ip} for ip in ips] if as_mappings else ips}
    outcome = parse(yaml.safe_dump(doc))
    assert isinstance(outcome, ConfigError)
    assert f"has {count} entries; at most 1000" in str(outcome)


def test_anchors_aliases_and_merge_keys() -> None:
    aliased = VALID_TEXT.replace("allowed_ips:\n", "allowed_ips: &ips\n") + "\n"
    assert isinstance(parse(aliased + "tags: *ips\n"), ConfigError)  # unknown shape, not a crash
    shared = "kms: &none {log_group: null, topic: null, parameter: null, bucket: null}\n"
    text = VALID_TEXT.split("kms:")[0] + shared + "trail: *none\n"
    assert isinstance(parse(text), ConfigError)  # duplicate 'trail' key
    merged = f"base: &b {{region: us-east-1}}\n<<: *b\nslack: {{webhook_url: {WEBHOOK}}}\n"
    outcome = parse(merged)
    assert isinstance(outcome, ConfigError) and "merge keys" in str(outcome)
    # a non-recursive anchor reused many times expands without trouble
    ok = VALID_TEXT.replace("  label: VPN", "  label: &l VPN").replace(
        "label: office IPv6", "label: *l"
    )
    loaded = parse(ok)
    assert isinstance(loaded, Config) and loaded.allowed[2].label == "VPN"


# ---------------------------------------------------------------- through the CLI


@PROPERTY
@given(text=any_config_text)
def test_validate_exits_0_or_2_without_a_traceback(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    validate(text, tmp_path, capsys)


@PROPERTY
@given(text=mutated_texts() | duplicate_key_texts() | raw_texts)
def test_validate_agrees_with_the_loader(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = parse(text, dict(os.environ))
    assume(outcome is not None)
    code = validate(text, tmp_path, capsys)
    if isinstance(outcome, ConfigError):
        assert code == 2
    else:
        try:
            compile_pattern(outcome.allowed)
        except PatternError:
            assert code == 2
        else:
            assert code == 0


@PROPERTY
@given(
    text=mutated_texts() | raw_texts | duplicate_key_texts(),
    command=st.sampled_from(["status", "setup", "teardown", "test-alert"]),
)
def test_no_aws_client_before_the_config_is_valid(
    text: str,
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcome = parse(text)
    assume(isinstance(outcome, ConfigError))
    forbid_aws_clients(monkeypatch)
    path = tmp_path / "lw.yaml"
    path.write_text(text, encoding="utf-8")
    code, _, err = run_cli([command, "--config", str(path)], capsys)
    assert code == 2, err
    assert err.startswith("Error:") and "Traceback" not in err
    assert "AWS client created" not in err


def forbid_aws_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    import botocore.session

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("AWS client created before the config was validated")

    monkeypatch.setattr(boto3.Session, "client", refuse)
    monkeypatch.setattr(botocore.session.Session, "create_client", refuse)


def test_the_client_guard_really_guards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a valid config, status does reach for a client: the guard turns that into exit 1."""
    forbid_aws_clients(monkeypatch)
    path = tmp_path / "lw.yaml"
    path.write_text(VALID_TEXT, encoding="utf-8")
    code, _, err = run_cli(["status", "--config", str(path)], capsys)
    assert code == 1 and "AWS client created before the config was validated" in err


# ---------------------------------------------------------------- the allowlist compiler


@st.composite
def networks(draw: st.DrawFn) -> str:
    version = draw(st.sampled_from([4, 6]))
    address = draw(st.ip_addresses(v=version))
    prefix = draw(st.integers(0, 32 if version == 4 else 128))
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@st.composite
def allowlist_entries(draw: st.DrawFn) -> Any:
    network = draw(networks())
    form = draw(st.sampled_from(["plain", "mapping", "labelled", "host"]))
    if form == "mapping":
        return {"cidr": network}
    if form == "labelled":
        return {"cidr": network, "label": draw(odd_text | st.text(max_size=20))}
    if form == "host":
        return network.split("/")[0]  # a bare address (the network address itself)
    return network


def _random_network(rng: Any) -> str:
    version = rng.choice([4, 6])
    bits = 32 if version == 4 else 128
    prefix = rng.choice([rng.randint(0, bits), rng.randint(bits - 8, bits)])
    kind = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    address = kind(rng.getrandbits(bits))
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


# Up to the 1,000-entry limit: built from a seeded RNG (hypothesis draws stay small).
long_allowlists = st.builds(
    lambda count, rng: [_random_network(rng) for _ in range(count)],
    st.integers(900, 1000),
    st.randoms(use_true_random=False),
)


@PROPERTY
@given(
    entries=st.lists(allowlist_entries(), min_size=1, max_size=60) | long_allowlists,
    probe=st.lists(st.ip_addresses().map(str), max_size=3),
)
def test_any_allowlist_validates_without_a_traceback(
    entries: list[Any], probe: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = yaml.safe_dump({**VALID, "allowed_ips": entries}, allow_unicode=True)
    extra = [arg for ip in probe for arg in ("--ip", ip)]
    code = validate(text, tmp_path, capsys, *extra)
    loaded = parse(text)
    assert isinstance(loaded, Config)  # every generated entry is a valid network
    if code == 0:
        compiled = compile_pattern(loaded.allowed)
        assert compiled.length <= 1024
    else:
        with pytest.raises(PatternError):
            compile_pattern(loaded.allowed)


# ---------------------------------------------------------------- known crashes (bugs)

CRASHERS = {
    "recursive-anchor": "a: &a [*a]\n",
    "recursive-anchor-in-allowlist": f"region: us-east-1\nallowed_ips: &x [1.2.3.4, *x]\n"
    f"slack: {{webhook_url: {WEBHOOK}}}\n",
    "nesting-5000-deep": "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "int-over-4300-digits": "alarm: {period_seconds: " + "9" * 5000 + "}\n",
    "webhook-bad-ipv6-host": VALID_TEXT.replace(WEBHOOK, "'https://[::1/x'"),
    "webhook-empty": VALID_TEXT.replace(WEBHOOK, "''"),
}


@pytest.mark.parametrize("name", list(CRASHERS))
def test_known_crashes_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError):
        parse_config(CRASHERS[name], "lw.yaml", {})


def test_webhook_from_an_empty_variable_is_a_config_error() -> None:
    text = VALID_TEXT.replace(WEBHOOK, "${LW_WEBHOOK}")
    with pytest.raises(ConfigError):
        parse_config(text, "lw.yaml", {"LW_WEBHOOK": ""})


def test_former_crashes_are_config_errors_with_a_line() -> None:
    for text in CRASHERS.values():
        assert isinstance(parse(text), ConfigError)


def test_known_crash_exits_2_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lw.yaml"
    path.write_text(CRASHERS["recursive-anchor"], encoding="utf-8")
    code, _, err = run_cli(["validate", "--config", str(path)], capsys)
    assert code == 2, err
