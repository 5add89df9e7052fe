"""Care settings (content/care.yml) and the built-in `care.*` actions the shipped flows call."""
