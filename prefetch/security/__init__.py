"""Security adapter: UZI certificates and keys, trust, mutual TLS, SAML tokens, dev PKI.

The only package that imports `cryptography` and `signxml`. Modules:

- `uzi`      UZI identity from a certificate (SAN otherName 2.5.5.5)
- `keys`     `Credential` (PKCS#12 loaded once), passphrase rules
- `trust`    `TrustStore`: anchors, CRLs, path validation
- `pki`      `create_dev_pki` / `DevPki`
- `tls`      client / server `ssl.SSLContext`, `mtls_session`, client certificate check
- `tokens`   transactietoken and mandaattoken (SAML 2.0, signed with signxml)
- `wssec`    SOAP envelope with `wsse:Security`; `EnvelopeVerifier` (simulator side)
- `errors`   `CertificateRejected`, `TokenRejected` and their reasons
"""
