"""The LSP client: SOAP 1.1 over mutual TLS, signed tokens, outcome mapping."""
