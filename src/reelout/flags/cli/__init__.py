"""`reelout flags`: the flag admin, schedules and stale report on the command line."""
