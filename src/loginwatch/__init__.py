"""loginwatch: tell Slack when someone signs in to the AWS console from outside your allowlist."""

__version__ = "0.1.0"
