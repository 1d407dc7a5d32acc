"""The embedded local stack of `make run`: DynamoDB emulator, API, sandbox, edge agent, demo data."""
