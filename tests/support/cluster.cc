// Process-level test harness.
