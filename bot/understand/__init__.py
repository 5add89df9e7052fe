"""Reading what a person typed: normalisation, values, and a small learned layer (docs/triage.md)."""
