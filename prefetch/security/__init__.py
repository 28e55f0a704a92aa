"""Security adapter: UZI certificates and keys, trust, mutual TLS, SAML tokens, dev PKI.

The only package that imports `cryptography` and `signxml`. Modules:

- `uzi`        UZI identity from a certificate (SAN otherName 2.5.5.5)
- `keys`       `Credential` (PKCS#12 loaded once), passphrase rules
- `trust`      `TrustStore`: anchors, CRLs, path validation
- `certbuild`  certificate / CRL builders; `pki`: `create_dev_pki` / `DevPki`
- `tls`        client / server `ssl.SSLContext`, `mtls_session`, client certificate check
- `saml`       assertion shapes, `TokenProfile` (every [U] wire choice), `TokenInfo`
- `tokens`     transactietoken and mandaattoken (SAML 2.0, signed with signxml)
- `wssec`      SOAP envelope with `wsse:Security`, `secure_query`; re-exports the verifier
- `envelope`   strict structural reading of a secured envelope (anti-wrapping)
- `signcheck`  `TokenChecker`: signer and signature of one assertion
- `verify`     `EnvelopeVerifier`: what the LSP checks, one reason per failure
- `mandates`   `register_mandate`, `check_mandate` (before a run)
- `errors`     `CertificateRejected`, `TokenRejected`, `RequestRejected` and their reasons
"""

import logging

# signxml logs every canonicalised string at DEBUG: that is the signed assertion, with the
# patient's BSN. Keep it quiet whatever the root level is.
logging.getLogger("signxml").setLevel(logging.WARNING)
