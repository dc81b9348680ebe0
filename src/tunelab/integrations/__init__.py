"""Optional integrations with other tools, each over the public API (`tunelab.api`) only."""
