"""HL7v3 message building and parsing (pure: values in, values or bytes out).

Public API, by module:

- `params`: `QueryParams`, `QueryRef`, `id_key` (the shared query contract)
- `aorta_settings`: `AortaSettings`, `DEFAULT_SETTINGS` (every uncertain wire choice)
- `query`: `build_query(params, settings) -> Element`, `parse_query(root) -> QueryParams`
- `answer`: `SourceSystem`, `build_dispense_item`, `build_lsp_issue_item`, `build_batch`,
  `build_accept_ack`, `build_soap_fault`, `wrap_soap_body` (what the LSP sends back)
- `parse`: `parse_answer(data, *, expect, expect_bsn) -> ParsedAnswer`
- `codes`: `LSP_CODES` (the one code table), `classify(parsed) -> Outcome`
- `schema`: `validate_query`, `validate_answer_item`, `validate_batch`,
  `validate_accept_ack`, `validate_dispense_event` (raise `SchemaValidationError`)
- `soap`: `envelope`, `unwrap`, `SoapFault`
- `xmlparse`: `parse_xml`, `make_parser` (the only way XML is parsed in the product)
"""
