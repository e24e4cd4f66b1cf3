"""`loginwatch review`: what would have alerted in the last N days, and which networks to allow.

Split so the judging and the suggestions are pure (tested in microseconds) and the AWS
reads sit in one module:
- ``limiter``: at most 2 LookupEvents requests per second per region (AWS's limit);
- ``history``: sign-ins from CloudTrail LookupEvents or one Logs Insights query, and the
  long-term-key API calls from Logs Insights (the only I/O here);
- ``judge``: every sign-in through the notifier's own rules and routes (pure);
- ``suggest``: networks and ``except`` entries worth adding, with their evidence (pure);
- ``config_edit``: ``--write``'s comment-keeping edit of the config file;
- ``run``: the order of it all; ``render``: the screen and ``--json``.
"""
