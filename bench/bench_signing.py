"""Signing benchmark: what building and signing the tokens adds per query (RSA 4096).

    python bench/bench_signing.py [--queries 300] [--key-size 4096] [--pki DIR]

Without `--pki` a throwaway dev PKI is generated in a temporary directory (RSA 4096 takes
~10-30 s; the passphrase is random and never leaves the process). `--pki DIR` reuses an
existing dev PKI; its passphrase then comes from `PREFETCH_PKI_PASSPHRASE`.

Per query it times, separately:
  token      build + sign the transactietoken (the mandaattoken is signed once, at
             registration, and only copied per query)
  envelope   token + SOAP envelope with wsse:Security and the stored mandaattoken, around an
             HL7 body built beforehand — the cost signing adds to a query (bound: 10 ms)
  query      the whole secure_query: HL7 body + token + envelope (the tree path)
  template   the same bytes from the per-run template (`EnvelopeTemplates`, what
             `LspClient` sends): fill, digest, one RSA signature, fill
  raw RSA    one bare RSA-SHA256 signature with the same key (the floor)
  verify     the simulator side: EnvelopeVerifier.verify per envelope (single thread)

Exit status 1 when the median of `envelope` is above the bound.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Identifier
from prefetch.domain.people import Clinician
from prefetch.hl7v3.params import QueryParams
from prefetch.hl7v3.query import build_query
from prefetch.security.envelope_template import EnvelopeTemplates
from prefetch.security.keys import PASSPHRASE_ENV
from prefetch.security.mandates import register_mandate
from prefetch.security.pki import DevPki, create_dev_pki
from prefetch.security.tokens import build_transaction_token
from prefetch.security.verify import EnvelopeVerifier
from prefetch.security.wssec import secure_envelope, secure_query

BOUND_MS = 10.0
BSNS = ("111222333", "123456782", "999999990")


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _time(n: int, fn: Callable[[int], object]) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--key-size", type=int, default=4096)
    ap.add_argument("--pki", type=Path, default=None)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-signing-") as tmp:
        if args.pki is not None:
            pki = DevPki.load(args.pki)
            passphrase = os.environ[PASSPHRASE_ENV].encode()
        else:
            passphrase = secrets.token_hex(16).encode()
            t0 = time.perf_counter()
            pki = create_dev_pki(Path(tmp) / "pki", passphrase=passphrase, key_size=args.key_size)
            print(f"dev PKI (RSA {args.key_size}) generated in {time.perf_counter() - t0:.1f} s")
        return _run(pki, passphrase, args.queries)


def _run(pki: DevPki, passphrase: bytes, n: int) -> int:
    hospital = pki.hospital.load(passphrase)
    specialist_cred = pki.specialist.load(passphrase)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    mandate = register_mandate(
        specialist_cred,
        name="Dr. Bench",
        mandated_id=hospital.identity.uzi_number,
        schedules=["bench"],
        valid_from=now - dt.timedelta(hours=1),
        valid_until=now + dt.timedelta(days=1),
        now=now,
    )
    ident = specialist_cred.identity
    overseer = Clinician(ident.uzi_number, ident.role, "Dr. Bench", ident.ura)
    root = f"2.16.528.1.1007.3.3.{pki.hospital_ura}"

    def params(i: int) -> QueryParams:
        return QueryParams(
            bsn=Bsn(BSNS[i % len(BSNS)]),
            message_id=Identifier(f"{root}.1", f"m{i}"),
            query_id=Identifier(f"{root}.2", f"q{i}"),
            created_at=now,
            overseer=overseer,
            hospital_ura=pki.hospital_ura,
            hospital_name=pki.hospital_name,
            sender_application_id="4242",
            author_system_uzi=hospital.identity.uzi_number,
        )

    all_params = [params(i) for i in range(n)]
    bodies = [build_query(p) for p in all_params]
    key = hospital.private_key
    raw = _time(n, lambda i: key.sign(b"x" * 600, padding.PKCS1v15(), hashes.SHA256()))
    token = _time(n, lambda i: build_transaction_token(all_params[i], hospital, now=now))

    envelopes: list[bytes] = []

    def envelope(i: int) -> None:
        tok = build_transaction_token(all_params[i], hospital, now=now)
        envelopes.append(
            secure_envelope(bodies[i], transaction_token=tok, mandate_token=mandate.token_xml)
        )

    env = _time(n, envelope)
    query = _time(
        n, lambda i: secure_query(all_params[i], hospital, mandate_token=mandate.token_xml, now=now)
    )
    templates = EnvelopeTemplates(hospital)
    template = _time(
        n,
        lambda i: templates.envelope(all_params[i], mandate_token=mandate.token_xml, now=now),
    )
    verifier = EnvelopeVerifier(pki.trust_store(), clock=lambda: now)
    client = hospital.identity
    ver = _time(n, lambda i: verifier.verify(envelopes[i], client_identity=client))

    bits = key.key_size
    print(f"{n} queries, RSA {bits}, signing certificate UZI system {client.uzi_number}")
    print(f"  raw RSA-SHA256 signature   median {_median_ms(raw):6.2f} ms")
    print(f"  token (build + sign)       median {_median_ms(token):6.2f} ms")
    print(f"  token + envelope           median {_median_ms(env):6.2f} ms   (bound {BOUND_MS} ms)")
    print(f"  whole secure_query         median {_median_ms(query):6.2f} ms")
    print(f"  same bytes from template   median {_median_ms(template):6.2f} ms")
    print(
        f"  verify (simulator side)    median {_median_ms(ver):6.2f} ms"
        f"   -> {1000 / _median_ms(ver):.0f} envelopes/s per core"
    )
    ok = _median_ms(env) < BOUND_MS
    print("OK" if ok else f"FAIL: signing adds more than {BOUND_MS} ms per query")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
