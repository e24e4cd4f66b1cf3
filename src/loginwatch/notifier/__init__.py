"""The loginwatch Lambda notifier: CloudWatch alarm (via SNS) → Slack.

This package is shipped to Lambda as the top-level package ``loginwatch_notifier``
(handler ``loginwatch_notifier.handler.lambda_handler``). It uses only the standard
library and the boto3 that the Lambda runtime provides, and imports its own modules
relatively — never anything else from ``loginwatch``.
"""
