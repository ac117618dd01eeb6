"""PAdES signatures on the PDFs the portal issues (audit packs, consent history exports), with pyHanko.

The certificate lives with the other signing keys: SIGNING_KEYS_DIR/pdf/cert.pem and key.pem. When the
folder is empty, a self-signed certificate (RSA 3072, ten years) is generated on first use, so a demo or
a fresh install signs at once. In production, PDF_SIGNING_CERT and PDF_SIGNING_KEY name a certificate and
key issued by a CA the readers trust (PDF_SIGNING_CHAIN: intermediates; PDF_SIGNING_KEY_PASSWORD when the
key is encrypted).

Signing is an incremental update over the finished PDF (PAdES B-B, subfilter ETSI.CAdES.detached) that
covers the whole file; any later change of a byte shows as "modified" in pyHanko and common readers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

FIELD_NAME = "PortalSignature"


def certificate_dir() -> Path:
    base = Path(getattr(settings, "SIGNING_KEYS_DIR", settings.VAR_DIR / "keys"))
    path = base / "pdf"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _self_signed(folder: Path) -> None:
    """A self-signed signing certificate (key usage: digital signature, non-repudiation)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name(
        [
            x509.NameAttribute(
                NameOID.COMMON_NAME, getattr(settings, "PDF_SIGNING_NAME", "Version Contract Portal")
            ),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Version Contract Portal (self-signed)"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path = folder / "key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class CertificateFiles:
    cert: Path
    key: Path
    chain: tuple[Path, ...]
    password: bytes | None
    self_signed: bool


def certificate_files() -> CertificateFiles:
    """The configured certificate and key, or the self-signed pair kept with the signing keys."""
    configured_cert = getattr(settings, "PDF_SIGNING_CERT", "")
    configured_key = getattr(settings, "PDF_SIGNING_KEY", "")
    password = getattr(settings, "PDF_SIGNING_KEY_PASSWORD", "") or None
    if configured_cert and configured_key:
        chain = tuple(Path(p) for p in getattr(settings, "PDF_SIGNING_CHAIN", []) or [])
        return CertificateFiles(
            Path(configured_cert), Path(configured_key), chain, password.encode() if password else None, False
        )
    folder = certificate_dir()
    if not (folder / "cert.pem").exists() or not (folder / "key.pem").exists():
        _self_signed(folder)
    return CertificateFiles(folder / "cert.pem", folder / "key.pem", (), None, True)


@lru_cache(maxsize=4)
def _signer(cert: str, key: str, chain: tuple[str, ...], password: bytes | None) -> signers.SimpleSigner:
    signer = signers.SimpleSigner.load(key, cert, ca_chain_files=chain, key_passphrase=password)
    if signer is None:
        raise RuntimeError(f"The PDF signing certificate {cert} or key {key} could not be loaded.")
    return signer


def signer() -> signers.SimpleSigner:
    files = certificate_files()
    return _signer(str(files.cert), str(files.key), tuple(map(str, files.chain)), files.password)


def certificate_pem() -> bytes:
    """The signing certificate (PEM): what a reader adds to its trust list for a self-signed install."""
    return certificate_files().cert.read_bytes()


def pdf_sign(pdf: bytes, *, reason: str, location: str = "") -> bytes:
    """The PDF with a PAdES B-B signature over the whole file, as an incremental update."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    metadata = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        reason=reason,
        location=location or getattr(settings, "PDF_SIGNING_LOCATION", ""),
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
    )
    out = io.BytesIO()
    signers.sign_pdf(writer, metadata, signer=signer(), output=out)
    return out.getvalue()


@dataclass(frozen=True)
class PdfSignatureStatus:
    signed: bool
    intact: bool  # the signed bytes hash to the signed digest
    valid: bool  # the signature verifies with the certificate's key
    trusted: bool  # the certificate chains to the trust roots given
    covers_whole_file: bool  # nothing was appended after the signature
    signer: str

    @property
    def ok(self) -> bool:
        return self.signed and self.intact and self.valid and self.trusted and self.covers_whole_file


def pdf_signature_check(pdf: bytes, *, trust_pem: bytes | None = None) -> PdfSignatureStatus:
    """Validate the portal's signature (trusting `trust_pem`, default: the portal's certificate)."""
    trust_pem = trust_pem or certificate_pem()
    _, _, der = asn1_pem.unarmor(trust_pem)
    root = asn1_x509.Certificate.load(der)
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        embedded = reader.embedded_signatures
    except Exception:  # unreadable after tampering: report as not intact
        return PdfSignatureStatus(False, False, False, False, False, "")
    if not embedded:
        return PdfSignatureStatus(False, False, False, False, False, "")
    sig = embedded[-1]
    context = ValidationContext(trust_roots=[root], allow_fetching=False)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no event loop here: pyHanko's synchronous API runs its own
        status = validate_pdf_signature(sig, context)
    else:  # inside an event loop (ASGI, Playwright's sync API): validate on a thread of its own
        with ThreadPoolExecutor(max_workers=1) as pool:
            status = pool.submit(validate_pdf_signature, sig, context).result()
    return PdfSignatureStatus(
        signed=True,
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        covers_whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        signer=status.signing_cert.subject.human_friendly,
    )
