"""The no-account demo and what it and the tests run on: a local AWS emulator with
loginwatch's patches, a local Slack webhook catcher, and a filter-pattern evaluator.
Needs the optional ``demo`` extra (moto); no command but ``demo`` imports this package."""
