"""Multi-step tools (sagas): declared here as steps with compensations; run step by step by the domain."""
