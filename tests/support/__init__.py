"""The test suite's shared tooling: live servers, waiting on conditions, protocol readers."""
