"""`prefetch hl7 build-query --signed --pki DIR`: the envelope as sent, verifiable on its own."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.security.pki import DevPki
from prefetch.security.verify import EnvelopeVerifier

runner = CliRunner()
ENV = {"PREFETCH_PKI_PASSPHRASE": "cli-signed-query-test"}


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("signed") / "pki"
    result = runner.invoke(
        app,
        [
            "pki",
            "dev",
            str(directory),
            "--key-size",
            "2048",
            "--hospital-ura",
            "12345678",
            "--system-uzi",
            "900000012",
        ],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    return directory


def build(pki_dir: Path, *extra: str) -> tuple[int, str]:
    manifest = json.loads((pki_dir / "manifest.json").read_text())
    spec = manifest["identities"]["specialist"]
    result = runner.invoke(
        app,
        [
            "hl7",
            "build-query",
            "--bsn",
            "123456782",
            "--clinician-uzi",
            spec["uzi_number"],
            "--clinician-role",
            spec["role"],
            "--clinician-name",
            "Dr. Test",
            "--ura",
            "12345678",
            "--hospital-name",
            "Testziekenhuis",
            "--system-uzi",
            "900000012",
            "--look-back-days",
            "365",
            *extra,
        ],
        env=ENV,
    )
    return result.exit_code, result.output


def test_signed_envelope_verifies_like_the_lsp_would(pki_dir: Path) -> None:
    code, output = build(pki_dir, "--signed", "--pki", str(pki_dir))
    assert code == 0, output
    envelope = output.encode()
    assert b"wsse:Security" in envelope
    verified = EnvelopeVerifier(DevPki.load(pki_dir).trust_store()).verify(
        envelope, client_identity=None
    )
    assert verified.params.bsn.value == "123456782"
    assert verified.mandate is not None  # the system queries under the specialist's mandate


@pytest.mark.tools
@pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="xmlsec1 not installed")
def test_token_in_the_printed_envelope_verifies_with_xmlsec1(pki_dir: Path, tmp_path: Path) -> None:
    code, output = build(pki_dir, "--signed", "--pki", str(pki_dir))
    assert code == 0
    root = parse_xml(output.encode())
    assertion = root.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}Assertion")
    assert assertion is not None
    token = tmp_path / "token.xml"
    token.write_bytes(etree.tostring(assertion))
    manifest = DevPki.load(pki_dir)
    result = subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
            "--trusted-pem",
            str(manifest.root_ca),
            "--untrusted-pem",
            str(manifest.issuing_ca),
            str(token),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_signed_without_pki_is_a_usage_error(pki_dir: Path) -> None:
    code, output = build(pki_dir, "--signed")
    assert code == 2
    assert "--signed needs --pki" in output
