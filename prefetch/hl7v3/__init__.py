"""HL7v3 message building and parsing (pure)."""
