"""Shared pytest configuration: the test bed's fixtures are available to every test."""

pytest_plugins = [
    "phonefleet_testbed.fixtures",
    "phonefleet_testbed.tenants",
    "phonefleet_testbed.chaos.options",
]
