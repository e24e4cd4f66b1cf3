"""Every resource name and ARN, derived once from the config and the account."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config

MANAGED_BY = ("managed-by", "loginwatch")
NAME_TAG = "loginwatch:name"

# Each rule's metric filter and alarm: (name suffix, metric name). outside_allowlist keeps
# the names it had before there were rules, so an upgrade changes nothing. The CIS rules'
# share "cis-" and the access-key rules' "key-"; the operator's policy names every rule's
# alarm in one ARN (``<name>-*``).
CIS_PREFIX = "cis-"
KEY_PREFIX = "key-"
TAMPER_PREFIX = "tamper-"
RULE_RESOURCES = {
    "outside_allowlist": ("unallowed-console-login", "UnallowedConsoleLogin"),
    "root_sign_in": (f"{CIS_PREFIX}root-usage", "RootAccountUsage"),
    "no_mfa": (f"{CIS_PREFIX}console-sign-in-without-mfa", "ConsoleSignInWithoutMfa"),
    "failed_sign_ins": (f"{CIS_PREFIX}console-sign-in-failures", "ConsoleSignInFailures"),
    # The access-key rules' filters, alarms and EventBridge rules share "key-": one ARN
    # each in the operator's policy, the invoke permission and the dead-letter queues.
    "access_key_outside_allowlist": (f"{KEY_PREFIX}api-calls-outside", "AccessKeyOutsideAllowlist"),
    "credentials_exposed": (f"{KEY_PREFIX}quarantined", "AccessKeyQuarantined"),
    # tamper has two: CIS CloudWatch.5's (every trail's changes, exactly) and one for
    # changes to loginwatch's own resources.
    "tamper": (f"{CIS_PREFIX}trail-changes", "CloudTrailChanges"),
    "tamper_own_resources": (f"{TAMPER_PREFIX}own-resources", "LoginwatchResourceChanges"),
}
# A filter (and its alarm) is named by its rule, but for a rule with more than one.
FILTER_RULE = {"tamper_own_resources": "tamper"}


def filter_rule(filter_id: str) -> str:
    """The rule a metric filter and its alarm belong to."""
    return FILTER_RULE.get(filter_id, filter_id)


@dataclass(frozen=True)
class Names:
    name: str
    region: str
    account: str
    partition: str
    bucket_override: str | None = None
    reused_trail: str | None = None

    @classmethod
    def for_config(cls, config: Config, account: str, partition: str = "aws") -> Names:
        return cls(
            name=config.name,
            region=config.region,
            account=account,
            partition=partition,
            bucket_override=config.bucket,
            reused_trail=config.existing_trail,
        )

    def _arn(self, service: str, resource: str, region: str | None = None) -> str:
        return f"arn:{self.partition}:{service}:{region or self.region}:{self.account}:{resource}"

    # ------------------------------------------------------------ trail side
    @property
    def bucket(self) -> str:
        return self.bucket_override or f"{self.name}-trail-{self.account}-{self.region}"

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}"

    @property
    def trail(self) -> str:
        return self.reused_trail or f"{self.name}-trail"

    @property
    def trail_arn(self) -> str:
        if self.reused_trail and self.reused_trail.startswith("arn:"):
            return self.reused_trail
        return self._arn("cloudtrail", f"trail/{self.trail}")

    @property
    def trail_log_group(self) -> str:
        return f"/{self.name}/cloudtrail"

    @property
    def trail_role(self) -> str:
        return f"{self.name}-cloudtrail-to-logs"

    # ------------------------------------------------------------ detection
    @property
    def metric_namespace(self) -> str:
        return f"LoginWatch/{self.name}"

    metric_name = RULE_RESOURCES["outside_allowlist"][1]

    @property
    def alarm(self) -> str:
        return self.rule_alarm("outside_allowlist")

    @property
    def alarm_arn(self) -> str:
        return self.rule_alarm_arn("outside_allowlist")

    def rule_filter(self, rule: str) -> str:
        return f"{self.name}-{RULE_RESOURCES[rule][0]}"

    def rule_alarm(self, rule: str) -> str:
        return f"{self.name}-{RULE_RESOURCES[rule][0]}"

    def rule_metric(self, rule: str) -> str:
        return RULE_RESOURCES[rule][1]

    def rule_alarm_arn(self, rule: str) -> str:
        return self._arn("cloudwatch", f"alarm:{self.rule_alarm(rule)}")

    @property
    def rule_alarms_arn(self) -> str:
        """Every rule's alarm (``<name>-…``, a rule on or off), for the operator's policy.
        One ARN keeps `permissions --compact` within IAM's 6,144 characters; the price:
        another deployment whose name starts with this one's and a hyphen shares it."""
        return self._arn("cloudwatch", f"alarm:{self.name}-*")

    @property
    def every_alarm_arn(self) -> list[str]:
        """Every rule's alarm, on or off: the topic and the notifier's role name them all,
        so turning a rule on or off changes neither."""
        return [self.rule_alarm_arn(rule) for rule in RULE_RESOURCES]

    def alarm_rules(self, rules: list[str]) -> dict[str, str]:
        """Alarm name → rule, for the notifier (a rule may have more than one alarm)."""
        return {
            self.rule_alarm(f): filter_rule(f) for f in RULE_RESOURCES if filter_rule(f) in rules
        }

    @property
    def topic(self) -> str:
        return f"{self.name}-alerts"

    @property
    def topic_arn(self) -> str:
        return self._arn("sns", self.topic)

    # ------------------------------------------------------------ notifier
    @property
    def parameter(self) -> str:
        return f"/{self.name}/slack-webhook-url"

    @property
    def parameter_arn(self) -> str:
        return self._arn("ssm", f"parameter{self.parameter}")

    @property
    def parameters_arn(self) -> str:
        """Every parameter of this loginwatch (the webhooks, the heartbeat URL): they live
        under its own path ``/<name>/``, for the operator's policy."""
        return self._arn("ssm", f"parameter/{self.name}/*")

    @property
    def topics_arn(self) -> str:
        """Both topics (the alarms', the second voice's), for the operator's policy: one
        ARN, as for its alarms (rule_alarms_arn), with the same price."""
        return self._arn("sns", f"{self.name}-*")

    @property
    def destinations_path(self) -> str:
        """Where the extra Slack destinations' webhooks live, one SecureString each."""
        return f"/{self.name}/slack-destinations"

    def destination_parameter(self, destination: str) -> str:
        return f"{self.destinations_path}/{destination}"

    def destination_parameter_arn(self, destination: str) -> str:
        return self._arn("ssm", f"parameter{self.destination_parameter(destination)}")

    @property
    def notifier_role(self) -> str:
        return f"{self.name}-notifier"

    @property
    def function(self) -> str:
        return f"{self.name}-notifier"

    @property
    def function_arn(self) -> str:
        return self._arn("lambda", f"function:{self.function}")

    @property
    def notifier_log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def permission_sid(self) -> str:
        return f"{self.name}-sns-invoke"

    # ------------------------------------------------------------ fast path (EventBridge)
    @property
    def sign_in_rule(self) -> str:
        """The same name in every region: the home rule and each forwarding rule."""
        return f"{self.name}-console-sign-in"

    def rule_arn(self, region: str | None = None) -> str:
        return self._arn("events", f"rule/{self.sign_in_rule}", region)

    def api_call_rule(self, index: int) -> str:
        """access_key_outside_allowlist's rules, numbered from 1 in every region (the
        allowlist's complement may need several patterns)."""
        return f"{self.name}-{KEY_PREFIX}api-calls-{index + 1}"

    @property
    def key_exposed_rule(self) -> str:
        """credentials_exposed's rule (AWS Health, the quarantine policy)."""
        return f"{self.name}-{KEY_PREFIX}exposed"

    def tamper_rule(self, index: int) -> str:
        """tamper's rules, numbered from 1 in every region (as many as its patterns)."""
        return f"{self.name}-{TAMPER_PREFIX}{index + 1}"

    def key_rule_arn(self, rule: str, region: str | None = None) -> str:
        return self._arn("events", f"rule/{rule}", region)

    def rules_arn(self, region: str | None = None) -> str:
        """Every EventBridge rule of this deployment (``<name>-…``), for the operator's
        policy (the sign-in rule, the access-key and tamper rules in one ARN), as for
        its alarms (rule_alarms_arn)."""
        return self._arn("events", f"rule/{self.name}-*", region)

    def key_rules_arn(self, region: str | None = None) -> str:
        """Every access-key rule of a region (their number follows the allowlist)."""
        return self._arn("events", f"rule/{self.name}-{KEY_PREFIX}*", region)

    @property
    def watch_rules_permission_sid(self) -> str:
        return f"{self.name}-watch-rules-invoke"

    def event_bus_arn(self, region: str | None = None) -> str:
        return self._arn("events", "event-bus/default", region)

    @property
    def forwarding_role(self) -> str:
        return f"{self.name}-events-forward"

    @property
    def events_permission_sid(self) -> str:
        return f"{self.name}-events-invoke"

    @property
    def claims_table(self) -> str:
        return f"{self.name}-claims"

    @property
    def claims_table_arn(self) -> str:
        return self._arn("dynamodb", f"table/{self.claims_table}")

    # ------------------------------------------------------------ undelivered alerts (SQS)
    @property
    def retry_queue(self) -> str:
        """The notifier's OnFailure destination: failed alerts wait here for a retry."""
        return f"{self.function}-retry"

    @property
    def final_queue(self) -> str:
        """Where the retry queue gives up (after days): `loginwatch redeliver` reads it."""
        return f"{self.function}-undelivered"

    @property
    def events_dead_letter_queue(self) -> str:
        """Each region's: events its sign-in rule could not hand over (24 h of retries)."""
        return f"{self.name}-events-undelivered"

    @property
    def queues_arn(self) -> str:
        """Every queue of this loginwatch (``<name>-…``, in any region), for the operator's
        policy: one ARN keeps it within IAM's size limit, at the price rule_alarms_arn
        says (another deployment whose name starts with this one's and a hyphen)."""
        return self._arn("sqs", f"{self.name}-*", "*")

    def queue_arn(self, queue: str, region: str | None = None) -> str:
        return self._arn("sqs", queue, region)

    @property
    def event_source_mappings_arn(self) -> str:
        """Every event source mapping in the home region (their ids are generated)."""
        return self._arn("lambda", "event-source-mapping:*")

    # ------------------------------------------------------------ self-check, second voice
    @property
    def schedule(self) -> str:
        """EventBridge Scheduler's schedule that runs the self-check (default group)."""
        return f"{self.name}-self-check"

    @property
    def schedule_arn(self) -> str:
        return self._arn("scheduler", f"schedule/default/{self.schedule}")

    @property
    def scheduler_role(self) -> str:
        return f"{self.name}-scheduler"

    @property
    def heartbeat_parameter(self) -> str:
        """The dead-man's-switch URL (self_check.heartbeat_url), a SecureString."""
        return f"/{self.name}/heartbeat-url"

    @property
    def heartbeat_parameter_arn(self) -> str:
        return self._arn("ssm", f"parameter{self.heartbeat_parameter}")

    @property
    def second_voice_topic(self) -> str:
        """The second voice's topic: its only subscriber is self_check.email."""
        return f"{self.name}-second-voice"

    @property
    def second_voice_topic_arn(self) -> str:
        return self._arn("sns", self.second_voice_topic)

    @property
    def heartbeat_alarm(self) -> str:
        return f"{self.name}-self-check-heartbeat"

    @property
    def errors_alarm(self) -> str:
        return f"{self.name}-notifier-errors"

    def alarm_arn_of(self, alarm: str) -> str:
        return self._arn("cloudwatch", f"alarm:{alarm}")

    # ------------------------------------------------------------ organization mode
    @property
    def stack_set(self) -> str:
        """The service-managed StackSet that puts forwarding rules in member accounts."""
        return f"{self.name}-member-forwarding"

    @property
    def stack_set_arn(self) -> str:
        return self._arn("cloudformation", f"stackset/{self.stack_set}:*")

    def member_forwarding_role(self, region: str) -> str:
        """A member account's forwarding role in ``region`` (each region's stack has one;
        IAM names are per account). Named, not generated, so that the tamper rules know
        it: ``<name>-…`` like every resource of loginwatch's. The template passes
        ``${AWS::Region}``."""
        return f"{self.name}-member-forward-{region}"

    @property
    def bus_policy_sid(self) -> str:
        """The central default bus's statement admitting the organization's events."""
        return f"{self.name}-organization"

    def role_arn(self, role: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{role}"

    def log_group_arn(self, log_group: str, region: str | None = None) -> str:
        return self._arn("logs", f"log-group:{log_group}", region)
