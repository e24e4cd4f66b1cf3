"""Click commands: parse, load config, call the engine, render. No AWS logic here."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import click

from . import __version__
from .errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    LoginwatchError,
    UsageError,
)

if TYPE_CHECKING:
    from .aws import Aws
    from .config import Config
    from .resources.base import Resource

# A command imports only what it uses, inside its body: `--help` and `--version`
# load click and no more (no config, YAML, rich or boto3); `validate` adds the
# config and rich, not boto3. bench/startup.py measures it and
# tests/unit/test_startup_imports.py pins it.


@dataclass
class Options:
    config_path: str | None
    profile: str | None
    region: str | None

    def load(self, *, need_webhook: bool = False) -> Config:
        """The config, with --region applied (checked first, like the file's region).

        need_webhook: only what writes the webhook (setup, test-alert --via slack) needs
        its environment variable; the others load without it (webhook_url None)."""
        from .config import check_region_option, load_config, resolve_config_path

        warnings: tuple[str, ...] = ()
        if self.region is not None:
            warnings = check_region_option(self.region)
        config = load_config(resolve_config_path(self.config_path), need_webhook=need_webhook)
        if self.region is not None:
            config = replace(config, region=self.region, warnings=config.warnings + warnings)
        return config


pass_options = click.make_pass_decorator(Options)


def _config_option(func: click.decorators.FC) -> click.decorators.FC:
    """--config is accepted both before and after the command name."""

    def remember(ctx: click.Context, _: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            ctx.find_object(Options).config_path = value  # type: ignore[union-attr]
        return value

    return click.option(
        "--config",
        "config_override",
        metavar="PATH",
        expose_value=False,
        callback=remember,
        help="Config file (default: $LOGINWATCH_CONFIG or ./loginwatch.yaml).",
    )(func)


class _Command(click.Command):
    def get_short_help_str(self, limit: int = 45) -> str:
        """The whole first paragraph in `--help`'s list (wrapped), never cut mid-sentence."""
        if self.short_help:
            return self.short_help
        return " ".join((self.help or "").split("\n\n")[0].split())


class _LazyChoice(click.Choice[str]):
    """A Choice whose values are imported when first needed (parsing, the command's own
    --help, completion), not when the CLI loads: `loginwatch --help` skips the notifier."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._load())

    @choices.setter
    def choices(self, _: object) -> None:  # Choice.__init__ assigns it
        pass


def _rule_names() -> Sequence[str]:
    from .notifier.rules import RULE_NAMES

    return RULE_NAMES


class _Group(click.Group):
    command_class = _Command


def _print_version(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    """The version, and how old the IP location data in its alerts is (read from the
    installed database's version alone: nothing is opened)."""
    if not value or ctx.resilient_parsing:
        return
    from .ip_location_data import SOURCE_DISTRIBUTION, source_date, source_version

    click.echo(f"loginwatch, version {__version__}")
    version = source_version()
    if version is None:
        click.echo(f"IP location data: not installed (pip install {SOURCE_DISTRIBUTION})")
    else:
        built = source_date(version) or "unknown date"
        click.echo(
            f"IP location data: {SOURCE_DISTRIBUTION} {version}, built {built} "
            f"(refresh: pip install -U {SOURCE_DISTRIBUTION}, then loginwatch setup)"
        )
    ctx.exit()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: $LOGINWATCH_CONFIG or ./loginwatch.yaml).",
)
@click.option("--profile", help="AWS profile to use (overrides AWS_PROFILE).")
@click.option("--region", help="Override the config's region.")
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version (and the IP location data's) and exit.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    profile: str | None,
    region: str | None,
    debug: bool,
) -> None:
    """Alert a Slack channel when someone signs in to the AWS console from outside your allowlist."""
    ctx.obj = Options(config_path=config_path, profile=profile, region=region)


def _check_ips(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    import ipaddress

    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise click.BadParameter(f"'{value}' is not an IPv4 or IPv6 address") from None
    return values


@cli.command()
@_config_option
@click.option(
    "--ip",
    "ips",
    multiple=True,
    callback=_check_ips,
    help="Say whether a successful sign-in from this IP would alert (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option(
    "--aws",
    "ask_aws",
    is_flag=True,
    help="Also have AWS evaluate the pattern (CloudWatch Logs TestMetricFilter) against "
    "sign-ins at the edges of every allowlist entry; needs credentials.",
)
@pass_options
def validate(options: Options, ips: tuple[str, ...], as_json: bool, ask_aws: bool) -> None:
    """Check the config offline and show the filter pattern it compiles to."""
    from . import ui
    from .allowlist import PatternError
    from .summary import summarize

    config = options.load()
    try:
        summary = summarize(config, ips)
    except PatternError as exc:
        raise UsageError(f"{config.path}: allowed_ips: {exc}") from None
    verdict = None
    if ask_aws:
        from .aws import connect
        from .pattern_check import verify

        aws = connect(options.profile, config.region, command=_command_name())
        verdict = verify(aws.client("logs"), summary.compiled.pattern, config.allowed)
    if as_json:
        data = summary.to_json()
        if verdict is not None:
            data["aws_verdict"] = {
                "checked": verdict.checked,
                "missed": verdict.missed,
                "over_matched": verdict.over_matched,
                "unavailable": verdict.unavailable or None,
            }
        ui.print_json(data)
    else:
        ui.render_summary(summary)
        if verdict is not None:
            ui.render_verdict(verdict)
    if verdict is not None:
        from .pattern_check import require_safe

        require_safe(verdict)


def _command_name() -> str:
    """The command being run ("setup", "test-alert"), for the AWS clients' user agent."""
    context = click.get_current_context(silent=True)
    return context.info_name or "" if context is not None else ""


def _connect(options: Options, *, need_webhook: bool = False) -> tuple[Config, Aws]:
    """Config first (no AWS call before it is valid), then credentials."""
    from . import ui
    from .aws import connect

    config = options.load(need_webhook=need_webhook)
    for warning in config.warnings:
        ui.warn(warning)
    return config, connect(options.profile, config.region, command=_command_name())


@cli.command()
@_config_option
@click.option("--dry-run", is_flag=True, help="Show the plan; make no changes.")
@click.option("--verbose", "-v", is_flag=True, help="List every resource by name and region.")
@pass_options
def setup(options: Options, dry_run: bool, verbose: bool) -> None:
    """Create or repair every resource of the alert chain (idempotent)."""
    from . import engine, ui

    config, aws = _connect(options, need_webhook=True)
    ui.out.print(
        f"loginwatch '{config.name}' → account {aws.account_id}, region {config.region}"
        + (" [dim](dry run)[/]" if dry_run else "")
    )
    deployment = engine.build_deployment(config, aws)
    printer = ui.StepPrinter(dry_run=dry_run, verbose=verbose)
    try:
        results = engine.plan(deployment, printer) if dry_run else engine.apply(deployment, printer)
    finally:
        printer.stop()
    for message in dict.fromkeys(deployment.notices):  # each filter may say the same
        ui.notice(message)
    ui.setup_summary(results, dry_run)


@cli.command()
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option(
    "--verbose", "-v", is_flag=True, help="List every resource by name and region, and every check."
)
@pass_options
def status(options: Options, as_json: bool, verbose: bool) -> None:
    """Check that every resource exists, matches the config and can fire (read-only)."""
    from . import engine, ui

    config, aws = _connect(options)
    deployment = engine.build_deployment(config, aws, strict=False)
    report = engine.status(deployment)
    if as_json:
        ui.print_json(report.to_json())
    else:
        ui.render_status(report, verbose=verbose)
        if config.webhook_url is None and not report.nothing_set_up:
            ui.out.print(
                "[dim]The stored webhook was not compared with the config's: its "
                "environment variable is not set.[/]"
            )
    if not report.healthy:
        raise SystemExit(EXIT_FAILURE)


@cli.command()
@_config_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--dry-run", is_flag=True, help="Show what would be removed and kept; change nothing."
)
@click.option(
    "--delete-bucket",
    is_flag=True,
    help="Also empty (every object version) and delete the trail bucket: the original CloudTrail logs.",
)
@click.option(
    "--delete-trail-logs",
    is_flag=True,
    help="Also delete the trail's CloudWatch Logs group (a copy of CloudTrail events).",
)
@click.option(
    "--discard-undelivered",
    is_flag=True,
    help="Delete queued alerts Slack never received along with their queues "
    "(without it, teardown refuses while any are queued).",
)
@click.option("--verbose", "-v", is_flag=True, help="List every resource by name and region.")
@pass_options
def teardown(
    options: Options,
    yes: bool,
    dry_run: bool,
    delete_bucket: bool,
    delete_trail_logs: bool,
    discard_undelivered: bool,
    verbose: bool,
) -> None:
    """Remove what setup created; keeps the trail bucket (audit logs) by default."""
    from . import engine, ui

    config, aws = _connect(options)
    deployment = engine.build_deployment(config, aws, strict=False)
    items = engine.teardown_plan(
        deployment, delete_bucket=delete_bucket, delete_trail_logs=delete_trail_logs
    )
    ui.render_teardown_plan(items, verbose=verbose)
    to_delete = [i for i in items if i.action in ("delete", "clean")]
    queued = [i for i in items if i.undelivered]
    if queued and not discard_undelivered:
        held = ", ".join(
            f"{i.undelivered} in {i.resource.name} ({i.resource.region})" for i in queued
        )
        refusal = UsageError(
            f"{sum(i.undelivered for i in queued)} alert(s) Slack never received are still "
            f"queued: {held}." + ("" if dry_run else " Nothing was removed."),
            "Run `loginwatch redeliver` first (`--dry-run` lists them), or re-run teardown "
            "with --discard-undelivered to delete them with their queues.",
        )
        if not dry_run:
            raise refusal
        ui.warn(" ".join(refusal.lines()))  # the plan above would drop them
    if dry_run:
        ui.teardown_dry_run_summary(items)
        return
    if not to_delete:
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "teardown needs confirmation, and there is no terminal to ask on.",
                "Re-run with --yes to confirm, or --dry-run to only list.",
            )
        if not click.confirm(f"Remove these {len(to_delete)} resource(s)?", default=False):
            # Declining is an answer, not a failure: exit 0, as documented.
            ui.out.print("Nothing was changed.")
            return
    printer = ui.TeardownPrinter(verbose=verbose)
    try:
        engine.teardown(items, printer.done)
    finally:
        printer.stop()
    ui.teardown_done(to_delete)


@cli.command("test-alert")
@_config_option
@click.option(
    "--via",
    type=click.Choice(["alarm", "fast-path", "lambda", "slack", "self-check"]),
    default="alarm",
    show_default=True,
    help="alarm: the real path CloudWatch → SNS → Lambda → Slack; fast-path: a marked event "
    "on another region's EventBridge bus → forwarding → Lambda → Slack; lambda: invoke the "
    "function directly; slack: post straight to the webhook (no AWS needed); self-check: "
    "run the notifier's self-check now and show its verdict.",
)
@click.option(
    "--from-region",
    metavar="REGION",
    help="fast-path: the region to send the test event from (default: the first other region "
    "the fast path covers).",
)
@click.option(
    "--timeout", type=click.IntRange(5, 900), default=90, show_default=True, help="Seconds to wait."
)
@click.option(
    "--rule",
    type=_LazyChoice(_rule_names),
    help="Test this rule's route: its alarm (--via alarm) and the destination(s) its alerts "
    "go to. Without it the test goes to the default channel.",
)
@pass_options
def test_alert(
    options: Options, via: str, timeout: int, from_region: str | None, rule: str | None
) -> None:
    """Send a test alert through the chain and confirm it reached Slack."""
    from . import alert_drill as alerts
    from . import engine, ui

    test_id = alerts.new_test_id()
    if via == "self-check":
        config, aws = _connect(options)
        if rule is not None or not config.self_check.enabled:
            raise UsageError(
                "--via self-check takes no --rule, and needs self_check.enabled (the default)."
            )
        names = engine.drill_deployment(config, aws).names
        with ui.out.status(f"Running {names.function}'s self-check …"):
            result = alerts.via_self_check(aws, names)
    elif via == "slack":
        config = options.load(need_webhook=True)
        _require_rule_on(config, rule)
        ui.out.print(f"Posting test {test_id} to Slack from this machine …")
        result = alerts.via_slack(config, test_id, rule=rule)
    else:
        config, aws = _connect(options)
        _require_rule_on(config, rule)
        # Names and the resource list for the diagnosis; building it reads nothing.
        deployment = engine.drill_deployment(config, aws)
        names = deployment.names
        region = ""
        if via == "fast-path":
            region = from_region or _fast_path_test_region(config, aws, rule)
        # Before waiting for a delivery: one that cannot come is said at once.
        cannot_run = None if via == "lambda" else alerts.cannot_run(aws, names, via, test_id)
        if cannot_run is not None:
            result = cannot_run
        elif via == "lambda":
            with ui.out.status(f"Invoking {names.function} with test {test_id} …"):
                result = alerts.via_lambda(aws, names, test_id, rule)
        elif via == "fast-path":
            with ui.out.status(
                f"Test event {test_id} put on the default bus in {region}; waiting …"
            ) as spin:
                result = alerts.via_fast_path(
                    deployment,
                    test_id,
                    region=region,
                    timeout=timeout,
                    rule=rule,
                    on_wait=lambda s: spin.update(
                        f"Waiting for the notifier to deliver test {test_id} … {s:.0f} s"
                    ),
                )
        else:
            alarm = names.rule_alarm(rule or "outside_allowlist")
            with ui.out.status(f"Alarm {alarm} set to ALARM for test {test_id}; waiting …") as spin:
                result = alerts.via_alarm(
                    deployment,
                    test_id,
                    timeout=timeout,
                    rule=rule,
                    on_wait=lambda s: spin.update(
                        f"Waiting for the notifier to deliver test {test_id} … {s:.0f} s"
                    ),
                )
    ui.render_test_alert(result)
    if not result.delivered:
        raise SystemExit(EXIT_FAILURE)


@cli.command()
@_config_option
@click.option("--dry-run", is_flag=True, help="List the undelivered alerts; post nothing.")
@pass_options
def redeliver(options: Options, dry_run: bool) -> None:
    """Post the alerts that failed for days (after you fixed the cause), then remove them."""
    from . import engine, ui
    from .redeliver import lambda_invoker, redeliver

    config, aws = _connect(options)
    deployment = engine.build_deployment(config, aws, strict=False)
    invoke = lambda_invoker(aws, deployment.names)
    items = redeliver(deployment, invoke, dry_run=dry_run, on_item=ui.redelivered)
    ui.redeliver_summary(items, dry_run)
    if any(not i.delivered for i in items) and not dry_run:
        raise SystemExit(EXIT_FAILURE)


def _require_rule_on(config: Config, rule: str | None) -> None:
    if rule is not None and config.rules.get(rule) is None:
        raise UsageError(
            f"The rule {rule} is off in {config.path}, so it has no alarm or route to test.",
            f"Turn it on (rules.{rule}.enabled: true) and run `loginwatch setup`.",
        )


def _fast_path_test_region(config: Config, aws: Aws, rule: str | None = None) -> str:
    """A region other than the home one, so the test crosses a forwarding rule too
    (credentials_exposed: one where AWS sends its reports)."""
    from .resources.base import enabled_regions
    from .resources.watch_rules import KEY_EXPOSED_REGIONS

    if not config.fast_path.enabled:
        raise UsageError(
            "The fast path is off (fast_path.enabled: false), so there is nothing to test.",
            "Turn it on and run `loginwatch setup`, or test the alarm path: --via alarm.",
        )
    if rule == "credentials_exposed":
        if config.region.startswith(("cn-", "us-gov-", "us-iso")):
            return config.region  # another partition's Health events arrive at home
        return next((r for r in KEY_EXPOSED_REGIONS if r != config.region), config.region)
    listed = config.fast_path.regions
    candidates = sorted(enabled_regions(aws)) if listed is None else list(listed)
    others = [r for r in candidates if r != config.region]
    return others[0] if others else config.region


@cli.command()
@_config_option
@click.option(
    "--for",
    "commands",
    type=click.Choice(["setup", "status", "teardown", "test-alert", "redeliver", "review", "all"]),
    multiple=True,
    default=("all",),
    show_default=True,
    help="Which commands the policy must allow (repeatable).",
)
@click.option("--account", metavar="ID", help="Account id for the ARNs (default: ask STS).")
@click.option(
    "--compact",
    is_flag=True,
    help="Merge statements so the policy fits IAM's 6,144-character managed-policy limit.",
)
@click.option(
    "--boundary",
    is_flag=True,
    help="Print the permissions boundary for loginwatch's roles instead (config "
    "iam.permissions_boundary names it): what an administrator creates once.",
)
@pass_options
def permissions(
    options: Options,
    commands: tuple[str, ...],
    account: str | None,
    compact: bool,
    boundary: bool,
) -> None:
    """Print the IAM policy (JSON) an operator needs to run loginwatch for this config.

    With iam.permissions_boundary set, the policy lets the operator create and change
    loginwatch's roles only with that boundary (--boundary prints it)."""
    from . import engine, ui
    from .aws import connect
    from .operator_policy import MANAGED_POLICY_LIMIT, operator_policy, policy_size
    from .resources.role import boundary_policy

    config = options.load()
    if account is not None and not (account.isdigit() and len(account) == 12):
        raise UsageError(f"--account '{account}' is not a 12-digit AWS account id.")
    if account is None or config.reuses_trail:
        # A reused trail is read (and checked) to learn the log group the filter lives in.
        live = engine.build_deployment(
            config, connect(options.profile, config.region, command=_command_name())
        )
        deployment = live
        if account is not None:
            deployment = engine.offline_deployment(
                config, account, trail_log_group=live.trail_log_group
            )
    else:
        deployment = engine.offline_deployment(config, account)
    resources = engine.resources_for(deployment)
    if boundary:
        policy = boundary_policy(resources)
    else:
        policy = operator_policy(resources, commands, compact=compact)
    ui.print_json(policy)
    size = policy_size(policy)
    if size > MANAGED_POLICY_LIMIT:
        how = "Use --compact, or split it by --for."
        if compact and not boundary:
            how = _split_advice(resources, commands)
        ui.warn(
            f"this policy has {size} non-whitespace characters; a managed policy allows "
            f"{MANAGED_POLICY_LIMIT}. {how}"
        )


def _split_advice(resources: Sequence[Resource], commands: Sequence[str]) -> str:
    """Where the compact policy is too big: setup's own policy and the other commands',
    with their sizes, so the two can be attached as two managed policies."""
    from .operator_policy import COMMANDS, SETUP, operator_policy, policy_size

    wanted = [c for c in COMMANDS if c in commands or "all" in commands]
    rest = [c for c in wanted if c != SETUP]
    if SETUP not in wanted or not rest:
        return "Split it by --for."
    sizes = [
        policy_size(operator_policy(resources, part, compact=True)) for part in ([SETUP], rest)
    ]
    others = " ".join(f"--for {c}" for c in rest)
    return (
        f"Attach two instead: --for setup ({sizes[0]} characters) and {others} "
        f"({sizes[1]} characters)."
    )


@cli.command()
@_config_option
@click.option(
    "--days",
    type=click.IntRange(1, 90),
    default=30,
    show_default=True,
    help="How far back to look (CloudTrail keeps 90 days).",
)
@click.option(
    "--source",
    type=click.Choice(["auto", "logs", "lookup"]),
    default="auto",
    show_default=True,
    help="auto: the trail's log group (one Logs Insights query) when it holds the whole "
    "window, else CloudTrail LookupEvents in every enabled region; logs or lookup: only that.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option(
    "--write",
    is_flag=True,
    help="Add the suggested networks to the config's allowed_ips, each labelled with its "
    "evidence (keeps the file's comments and layout; shows the diff and asks first).",
)
@click.option(
    "--network",
    "networks",
    multiple=True,
    metavar="CIDR",
    help="With --write: add only this suggested network (repeatable).",
)
@click.option("--yes", is_flag=True, help="With --write: do not ask for confirmation.")
@pass_options
def review(
    options: Options,
    days: int,
    source: str,
    as_json: bool,
    write: bool,
    networks: tuple[str, ...],
    yes: bool,
) -> None:
    """Show what would have alerted in the last N days, and suggest networks to allow.

    Console sign-ins of every enabled region, judged by the notifier's own rules with
    the current config, per principal; networks that look like the team's own; and,
    where the trail has a log group, API calls signed with long-term keys."""
    from datetime import date

    from . import ui
    from .review import config_edit, render
    from .review.run import review as run_review

    if networks and not write:
        raise UsageError("--network chooses what --write adds: give --write too.")
    config, aws = _connect(options)
    with render.LookupBar() as bar:
        result = run_review(
            config, aws, days=days, source=source, progress=bar, on_source=bar.start
        )
    if as_json:
        ui.print_json(result.to_json())
    else:
        render.render(result)
    if not write:
        return
    entries = config_edit.chosen(result.suggestions, networks, date.today().isoformat())
    if not entries:
        ui.err.print("Nothing to write: no network was suggested.")
        return
    with open(config.path, encoding="utf-8", newline="") as file:
        before = file.read()
    after = config_edit.add_allowlist_entries(before, entries, config.path)
    ui.err.print(config_edit.unified_diff(before, after, config.path), markup=False)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "--write needs confirmation, and there is no terminal to ask on.",
                "Re-run with --yes to write without asking.",
            )
        if not click.confirm(f"Add {len(entries)} network(s) to {config.path}?", default=False):
            ui.err.print("Nothing was changed.")
            return
    config_edit.write_checked(config.path, after)
    ui.err.print(f"Added {len(entries)} network(s) to allowed_ips in {config.path}. "
                 "Run `loginwatch setup` to apply.")  # fmt: skip


@cli.command()
@click.option(
    "--keep", is_flag=True, help="Keep the emulator running at the end (Ctrl-C stops it)."
)
@click.option("--raw", is_flag=True, help="Also print the raw Slack payload (JSON).")
def demo(keep: bool, raw: bool) -> None:
    """Run the whole job against a local AWS emulator: no account, no network."""
    from . import ui
    from .demo import run as demo_run  # needs the optional emulator (moto)

    demo_run.run(ui, keep=keep, raw=raw)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: map every outcome to a documented exit code, no tracebacks."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="loginwatch", standalone_mode=False)
    except click.exceptions.Abort:
        from . import ui

        ui.err.print("Aborted.")
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except LoginwatchError as exc:
        from . import ui

        if debug:
            import traceback

            traceback.print_exc()
        ui.error(exc.lines())
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        from . import ui

        ui.err.print(
            "\nInterrupted. Nothing half-made is left behind; re-run the command to finish."
        )
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # last resort: one line, traceback only with --debug
        from . import ui

        if debug:
            import traceback

            traceback.print_exc()
        ui.error(
            [f"unexpected error: {type(exc).__name__}: {exc}", "Re-run with --debug for details."]
        )
        sys.exit(EXIT_FAILURE)
    sys.exit(0)
