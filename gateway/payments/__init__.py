"""The payment core: orchestration state machine, cancels/refunds and recovery."""
