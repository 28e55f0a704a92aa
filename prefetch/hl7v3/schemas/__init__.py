"""Package data: XML schemas (see schemas/NOTICE)."""
