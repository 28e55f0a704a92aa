"""Fixtures for the LSP client tests (values and helpers live in `lsp_helpers`)."""

from lsp_helpers import client_pki, hospital_credential

__all__ = ["client_pki", "hospital_credential"]
