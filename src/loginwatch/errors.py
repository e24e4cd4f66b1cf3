"""Errors that reach the user as one or two plain lines and an exit code.

Exit codes (documented in the README): 0 fine, 1 operational failure or
unhealthy, 2 bad usage, config or credentials, 130 interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class LoginwatchError(Exception):
    """An error with a message fit for the user and the exit code it implies."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        return [self.message] + ([self.hint] if self.hint else [])


class UsageError(LoginwatchError):
    """Bad input from the user: config, flags, credentials."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """One or more problems in the config file, each naming file, line and key."""

    def __init__(self, problems: list[str], path: str) -> None:
        self.problems = problems
        self.path = path
        head = f"{path}: {len(problems)} problem(s) in the config" if len(problems) > 1 else ""
        body = "\n".join(problems)
        super().__init__(f"{head}\n{body}".strip())


class AwsError(LoginwatchError):
    """An AWS call failed in a way the user must act on."""

    exit_code = EXIT_FAILURE


class EndpointLacksOperation(AwsError):
    """The endpoint (an emulator: stock moto, LocalStack) does not implement a call AWS
    has. A caller that can do without the call catches this and says what went unchecked."""

    def __init__(self, operation: str, action: str, answer: str = "") -> None:
        self.operation = operation  # TestMetricFilter
        self.action = action  # logs:TestMetricFilter
        # What it answered, when that is no AWS error saying so (a web server's error page).
        self.answer = answer
        super().__init__(f"{self._says(action)[0].upper()}{self._says(action)[1:]}.")

    def _says(self, name: str) -> str:
        if self.answer:
            return f"the endpoint cannot answer {name} ({self.answer})"
        return f"the endpoint does not implement {name}"

    @property
    def reason(self) -> str:
        """For a "… not verified: <reason>" line."""
        return self._says(self.operation)


class CredentialsError(UsageError):
    """No usable AWS credentials, profile or region."""
