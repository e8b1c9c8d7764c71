"""conversation_runtime: YAML dialogs executed as deterministic state machines."""
