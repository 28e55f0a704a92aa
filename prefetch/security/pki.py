"""A development PKI shaped like the UZI register (`prefetch pki dev DIR`).

Layout of DIR (mode 0700; every `.p12` file mode 0600, PKCS#12 PBES2 / AES-256-CBC)::

    manifest.json          what is where, and who (UZI numbers, URA, roles, card types)
    root-ca.pem            root CA certificate (the trust anchor)
    issuing-ca.pem         issuing CA certificate (signed by the root)
    ca-bundle.pem          issuing + root: the file TLS peers verify against
    root-ca.crl.pem        root's CRL (revokes nothing)
    issuing-ca.crl.pem     issuing CA's CRL (revokes `revoked`)
    crls.pem               both CRLs (for ssl contexts)
    hospital.p12/.pem      hospital server certificate, card type S (TLS client, token signer)
    specialist.p12/.pem    medical specialist's UZI pass, card type Z (signs mandates)
    assistant.p12/.pem     poli / pharmacy assistant's pass, card type N
    simulator.p12/.pem     the LSP simulator's TLS server certificate (localhost, 127.0.0.1)
    revoked.p12/.pem       a hospital-like server certificate listed on the CRL (tests)
    expired.p12/.pem       a hospital-like server certificate past notAfter (tests)
    foreign-ca.pem         an unrelated CA ...
    foreign-client.p12/.pem  ... and a UZI-looking client certificate it issued (tests)

No private key is ever written except inside an encrypted PKCS#12 file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from prefetch.errors import ConfigError
from prefetch.security import certbuild as cb
from prefetch.security.keys import Credential, pkcs12_bytes, write_private
from prefetch.security.trust import TrustStore
from prefetch.security.uzi import CardType, format_uzi_value

MANIFEST = "manifest.json"
DEFAULT_URA = "12345678"
DEFAULT_HOSPITAL_NAME = "Ontwikkelziekenhuis"
DEFAULT_SYSTEM_UZI = "900000012"
_PEM = serialization.Encoding.PEM


@dataclass(frozen=True, slots=True)
class DevIdentity:
    """One end-entity in the dev PKI: where its files are and who it is."""

    label: str
    p12: Path
    cert: Path
    display_name: str
    uzi_number: str | None
    card_type: str | None
    ura: str | None
    role: str | None
    agb: str | None

    def load(self, passphrase: bytes) -> Credential:
        return Credential.load(self.p12, passphrase)


@dataclass(frozen=True, slots=True)
class DevPki:
    """Paths and identities of a generated development PKI."""

    directory: Path
    hospital_ura: str
    hospital_name: str
    key_size: int
    root_ca: Path
    issuing_ca: Path
    ca_bundle: Path
    crls: tuple[Path, ...]
    crl_bundle: Path
    foreign_ca: Path
    identities: dict[str, DevIdentity]

    def identity(self, label: str) -> DevIdentity:
        try:
            return self.identities[label]
        except KeyError:
            raise ConfigError(
                "unknown identity in dev PKI", label=label, known=",".join(sorted(self.identities))
            ) from None

    @property
    def hospital(self) -> DevIdentity:
        return self.identity("hospital")

    @property
    def specialist(self) -> DevIdentity:
        return self.identity("specialist")

    @property
    def assistant(self) -> DevIdentity:
        return self.identity("assistant")

    @property
    def simulator(self) -> DevIdentity:
        return self.identity("simulator")

    def trust_store(self, *, require_crl: bool = True) -> TrustStore:
        """A TrustStore with the dev root as anchor, the issuing CA and both CRLs.

        Raises ConfigError when a file is missing or not PEM.
        """
        try:
            return TrustStore.from_files(
                [self.root_ca], [self.issuing_ca], list(self.crls), require_crl=require_crl
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(
                "cannot read the dev PKI's CA or CRL files",
                path=str(self.directory),
                error=type(exc).__name__,
                fix="run `prefetch pki dev DIR` again",
            ) from None

    @classmethod
    def load(cls, directory: Path) -> DevPki:
        """Read `manifest.json` of a dev PKI directory."""
        try:
            data = json.loads((directory / MANIFEST).read_text("utf-8"))
        except (OSError, ValueError):
            raise ConfigError(
                "not a dev PKI directory (manifest.json missing or bad)",
                path=str(directory),
                fix="run `prefetch pki dev DIR`",
            ) from None
        try:
            return cls._from_manifest(directory, data)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ConfigError(
                "not a dev PKI directory (manifest.json incomplete)",
                path=str(directory),
                fix="run `prefetch pki dev DIR`",
            ) from None

    @classmethod
    def _from_manifest(cls, directory: Path, data: Any) -> DevPki:
        files = data["files"]
        return cls(
            directory=directory,
            hospital_ura=data["hospital"]["ura"],
            hospital_name=data["hospital"]["name"],
            key_size=int(data["key_size"]),
            root_ca=directory / files["root_ca"],
            issuing_ca=directory / files["issuing_ca"],
            ca_bundle=directory / files["ca_bundle"],
            crls=tuple(directory / f for f in files["crls"]),
            crl_bundle=directory / files["crl_bundle"],
            foreign_ca=directory / files["foreign_ca"],
            identities={
                label: DevIdentity(
                    label=label,
                    p12=directory / ident["p12"],
                    cert=directory / ident["cert"],
                    display_name=ident["name"],
                    uzi_number=ident.get("uzi_number"),
                    card_type=ident.get("card_type"),
                    ura=ident.get("ura"),
                    role=ident.get("role"),
                    agb=ident.get("agb"),
                )
                for label, ident in data["identities"].items()
            },
        )


@dataclass(frozen=True, slots=True)
class _Spec:
    label: str
    subject: cb.UziSubject
    dns: tuple[str, ...] = ()


def _specs(ura: str, hospital: str, system_uzi: str) -> list[_Spec]:
    def server(label: str, uzi: str) -> _Spec:
        return _Spec(
            label,
            cb.UziSubject(f"prefetch.{label}.test", hospital, uzi, CardType.SERVER, ura, "00.000"),
            (f"prefetch.{label}.test",),
        )

    return [
        server("hospital", system_uzi),
        _Spec(
            "specialist",
            cb.UziSubject(
                "Dr. A. Specialist",
                hospital,
                "123456782",
                CardType.ZORGVERLENER,
                ura,
                "01.015",
                "01234567",
            ),
        ),
        _Spec(
            "assistant",
            cb.UziSubject(
                "B. Assistent", hospital, "123456790", CardType.NAMED_EMPLOYEE, ura, "00.000"
            ),
        ),
        server("revoked", "900000024"),
        server("expired", "900000036"),
    ]


def create_dev_pki(
    directory: Path,
    *,
    passphrase: bytes,
    key_size: int = 4096,
    hospital_ura: str = DEFAULT_URA,
    hospital_name: str = DEFAULT_HOSPITAL_NAME,
    hospital_system_uzi: str = DEFAULT_SYSTEM_UZI,
    now: dt.datetime | None = None,
) -> DevPki:
    """Generate the development PKI into `directory` (created 0700; must be empty or new).

    Every value is checked before anything is written; raises ConfigError for bad values or
    an unusable directory. If generation fails half-way, what was written is removed again
    (the directory too, when this call created it).
    """
    if key_size < 2048:
        raise ConfigError("RSA keys below 2048 bits are not allowed", key_size=key_size)
    specs = _specs(hospital_ura, hospital_name, hospital_system_uzi)
    for spec in specs:
        subject = spec.subject
        try:
            format_uzi_value(
                uzi_number=subject.uzi_number,
                card_type=subject.card_type,
                ura=subject.ura,
                role=subject.role,
                agb=subject.agb,
            )
        except ValueError:
            raise ConfigError(
                "hospital URA must be 8 digits and the system UZI number 8 or 9 digits",
                label=spec.label,
            ) from None
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    created = _prepare_directory(directory)
    try:
        return _generate(
            directory,
            specs=specs,
            passphrase=passphrase,
            key_size=key_size,
            hospital_ura=hospital_ura,
            hospital_name=hospital_name,
            now=now,
        )
    except BaseException:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        else:  # it was empty: empty it again
            for child in directory.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def _prepare_directory(directory: Path) -> bool:
    """Create `directory` (0700) or check that it is an empty directory; True if created."""
    created = not directory.exists() and not directory.is_symlink()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if any(directory.iterdir()):
            raise ConfigError(
                "dev PKI directory is not empty", path=str(directory), fix="choose a new directory"
            )
        os.chmod(directory, 0o700)
    except OSError as exc:
        if created and directory.is_dir():
            shutil.rmtree(directory, ignore_errors=True)
        raise ConfigError(
            "cannot create the dev PKI directory",
            path=str(directory),
            error=type(exc).__name__,
            fix="choose a new directory in a writable place",
        ) from None
    return created


def _generate(
    directory: Path,
    *,
    specs: list[_Spec],
    passphrase: bytes,
    key_size: int,
    hospital_ura: str,
    hospital_name: str,
    now: dt.datetime,
) -> DevPki:
    start = now - dt.timedelta(hours=1)
    root = cb.make_ca(
        "prefetch dev UZI root CA",
        cb.new_key(key_size),
        parent=None,
        not_before=start,
        not_after=now + dt.timedelta(days=3650),
        path_length=1,
    )
    issuing = cb.make_ca(
        "prefetch dev UZI issuing CA",
        cb.new_key(key_size),
        parent=root,
        not_before=start,
        not_after=now + dt.timedelta(days=1825),
        path_length=0,
    )
    files: dict[str, object] = {}
    identities: dict[str, dict[str, str | None]] = {}
    out = _Writer(directory, passphrase)
    files["root_ca"] = out.pem("root-ca.pem", root.cert)
    files["issuing_ca"] = out.pem("issuing-ca.pem", issuing.cert)
    files["ca_bundle"] = out.pem("ca-bundle.pem", issuing.cert, root.cert)
    chain = [issuing.cert, root.cert]
    revoked_certs: list[x509.Certificate] = []
    for spec in specs:
        key = cb.new_key(key_size)
        not_before, not_after = start, now + dt.timedelta(days=730)
        if spec.label == "expired":
            not_before, not_after = now - dt.timedelta(days=400), now - dt.timedelta(days=1)
        cert = cb.make_uzi_cert(
            spec.subject,
            key,
            issuing,
            not_before=not_before,
            not_after=not_after,
            dns_names=spec.dns,
        )
        if spec.label == "revoked":
            revoked_certs.append(cert)
        s = spec.subject
        identities[spec.label] = {
            "p12": out.p12(f"{spec.label}.p12", spec.label, key, cert, chain),
            "cert": out.pem(f"{spec.label}.pem", cert),
            "name": s.common_name,
            "uzi_number": s.uzi_number,
            "card_type": s.card_type.value,
            "ura": s.ura,
            "role": s.role,
            "agb": s.agb,
        }
    sim_key = cb.new_key(key_size)
    sim_cert = cb.make_tls_server_cert(
        "localhost",
        sim_key,
        issuing,
        not_before=start,
        not_after=now + dt.timedelta(days=730),
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
    )
    identities["simulator"] = {
        "p12": out.p12("simulator.p12", "simulator", sim_key, sim_cert, chain),
        "cert": out.pem("simulator.pem", sim_cert),
        "name": "localhost",
    }
    foreign = cb.make_ca(
        "foreign CA",
        cb.new_key(key_size),
        parent=None,
        not_before=start,
        not_after=now + dt.timedelta(days=3650),
        path_length=0,
    )
    files["foreign_ca"] = out.pem("foreign-ca.pem", foreign.cert)
    f_key = cb.new_key(key_size)
    f_subject = cb.UziSubject(
        "prefetch.foreign.test", "Elders", "900000048", CardType.SERVER, hospital_ura, "00.000"
    )
    f_cert = cb.make_uzi_cert(
        f_subject, f_key, foreign, not_before=start, not_after=now + dt.timedelta(days=730)
    )
    identities["foreign"] = {
        "p12": out.p12("foreign-client.p12", "foreign", f_key, f_cert, [foreign.cert]),
        "cert": out.pem("foreign-client.pem", f_cert),
        "name": f_subject.common_name,
        "uzi_number": f_subject.uzi_number,
        "card_type": "S",
        "ura": hospital_ura,
        "role": "00.000",
        "agb": "00000000",
    }
    # The dev CA keys are not kept, so these CRLs cannot be re-issued: they last a year
    # (regenerate the dev PKI then). Real UZI CRLs are short-lived and fetched regularly.
    next_update = now + dt.timedelta(days=365)
    root_crl = cb.make_crl(root, [], now=now, next_update=next_update)
    issuing_crl = cb.make_crl(issuing, revoked_certs, now=now, next_update=next_update)
    files["crls"] = [
        out.crl("root-ca.crl.pem", root_crl),
        out.crl("issuing-ca.crl.pem", issuing_crl),
    ]
    files["crl_bundle"] = out.crl("crls.pem", root_crl, issuing_crl)
    manifest = {
        "format": "prefetch-dev-pki/1",
        "created": now.isoformat(),
        "key_size": key_size,
        "key_protection": "PKCS#12 PBES2 AES-256-CBC, PBKDF2-SHA256; passphrase not stored",
        "hospital": {"ura": hospital_ura, "name": hospital_name},
        "files": files,
        "identities": identities,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return DevPki.load(directory)


class _Writer:
    def __init__(self, directory: Path, passphrase: bytes) -> None:
        self._dir = directory
        self._passphrase = passphrase

    def pem(self, name: str, *certs: x509.Certificate) -> str:
        (self._dir / name).write_bytes(b"".join(c.public_bytes(_PEM) for c in certs))
        return name

    def crl(self, name: str, *crls: x509.CertificateRevocationList) -> str:
        (self._dir / name).write_bytes(b"".join(c.public_bytes(_PEM) for c in crls))
        return name

    def p12(
        self,
        name: str,
        friendly: str,
        key: rsa.RSAPrivateKey,
        cert: x509.Certificate,
        chain: list[x509.Certificate],
    ) -> str:
        write_private(self._dir / name, pkcs12_bytes(friendly, key, cert, chain, self._passphrase))
        return name
