"""Phone keys: pairing a phone's Ed25519 public key with the car, and checking commands it signs.

Pairing: the car shows a short code (``evos pair``, or the owner asks from the app and the car's screen shows it);
the phone sends its public key with that code; a match pairs the key. A code is single-use, lives a few minutes and
is spent after a few wrong guesses.

A signed command is an *envelope*, the UTF-8 text of a JSON object
``{"args": {...}, "command": "unlock", "counter": 7, "expires_at": 1767225600, "key_id": "..."}`` (clients write it
canonically: keys sorted, no whitespace), and a base64url Ed25519 signature over exactly those bytes. The car
refuses an envelope signed by an unknown or revoked key, a forged signature, an expired one (or one valid for longer
than the configured maximum), and a replay: the counter must exceed the last one accepted from that key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from evos.companion._accounts import hash_token
from evos.companion._config import CompanionConfig
from evos.companion._db import PairedKey, PairingCode
from evos.companion._errors import CompanionError, ConflictError, ForbiddenError, NotFoundError

CODE_DIGITS = 6
KEY_ID_CHARS = 22  # a key id: this many characters (132 bits) of the base64url SHA-256 of the raw public key
KEY_ID_RE = re.compile(f"[A-Za-z0-9_-]{{{KEY_ID_CHARS}}}")
MAX_COUNTER = 2**53 - 1  # the largest integer JavaScript numbers hold exactly


@dataclass(frozen=True)
class Envelope:
    command: str
    args: dict[str, Any]
    key_id: str
    counter: int
    expires_at: float  # seconds since the Unix epoch


def b64url_decode(text: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CompanionError(f"{what} is not base64url: {exc}", code="invalid_encoding") from exc


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_id_of(raw_public_key: bytes) -> str:
    """A key's id: the first 22 characters (132 bits) of the base64url SHA-256 of its 32 raw bytes."""
    return b64url(hashlib.sha256(raw_public_key).digest())[:KEY_ID_CHARS]


def decode_public_key(text: str) -> bytes:
    raw = b64url_decode(text, "public_key")
    if len(raw) != 32:
        raise CompanionError(f"public_key must be a raw Ed25519 key of 32 bytes, got {len(raw)}", code="invalid_key")
    return raw


def canonical_json(data: Any) -> str:
    """The canonical text of a JSON value: keys sorted, no whitespace, UTF-8 (what the phone signs)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def parse_envelope(text: str) -> Envelope:
    """The envelope's fields; CompanionError (422) naming what is missing or of the wrong type.

    The text must be canonical JSON (``canonical_json`` gives it back byte for byte). That refuses every form two
    readers could read differently: a field given twice (Python keeps the last, other parsers the first), escapes
    and whitespace, ``NaN``/``Infinity`` (a NaN expiry passed both expiry comparisons), or nesting too deep to parse.
    """
    try:
        data = json.loads(text)
        same = canonical_json(data) == text
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CompanionError(f"envelope is not JSON: {exc}", code="invalid_envelope") from exc
    except ValueError:  # NaN or Infinity
        same = False
    if not same:
        raise CompanionError("envelope must be canonical JSON: keys sorted, each once, no whitespace, no escapes "
                             "beyond what JSON needs, finite numbers (docs/companion.md)", code="invalid_envelope")
    if not isinstance(data, dict):
        raise CompanionError("envelope must be a JSON object", code="invalid_envelope")
    kinds: dict[str, tuple[type, ...]] = {"command": (str,), "args": (dict,), "key_id": (str,), "counter": (int,),
                                          "expires_at": (int, float)}
    for field, kind in kinds.items():
        value = data.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CompanionError(f"envelope field {field!r} must be {' or '.join(k.__name__ for k in kind)}, "
                                 f"got {value!r}", code="invalid_envelope")
    extra = sorted(set(data) - set(kinds))
    if extra:
        raise CompanionError(f"envelope has unknown field {extra[0]!r}", code="invalid_envelope")
    if not 0 < data["counter"] <= MAX_COUNTER:
        raise CompanionError(f"envelope counter must be 1..{MAX_COUNTER}, got {data['counter']}",
                             code="invalid_envelope")
    if not KEY_ID_RE.fullmatch(data["key_id"]):
        raise CompanionError(f"envelope key_id must be {KEY_ID_CHARS} base64url characters, got {data['key_id']!r}",
                             code="invalid_envelope")
    return Envelope(data["command"], data["args"], data["key_id"], data["counter"], float(data["expires_at"]))


def verify_envelope(session: Session, user_id: int, command: str, text: str, signature: str, now_s: float,
                    config: CompanionConfig) -> Envelope:
    """Check a signed command and consume its counter; ForbiddenError (or CompanionError for bad form) if refused."""
    envelope = parse_envelope(text)
    if envelope.command != command:
        raise ForbiddenError(f"envelope is signed for command {envelope.command!r}, not {command!r}",
                             code="envelope_mismatch")
    key = session.get(PairedKey, envelope.key_id)
    if key is None or key.user_id != user_id:
        raise ForbiddenError(f"key {envelope.key_id!r} is not paired with this car", code="unknown_key")
    if key.revoked_at is not None:
        raise ForbiddenError(f"key {envelope.key_id!r} was revoked", code="revoked_key")
    try:
        Ed25519PublicKey.from_public_bytes(b64url_decode(key.public_key, "stored key")).verify(
            b64url_decode(signature, "signature"), text.encode())
    except InvalidSignature:
        raise ForbiddenError(f"signature does not match the envelope and key {key.id!r}",
                             code="bad_signature") from None
    if envelope.expires_at <= now_s:
        raise ForbiddenError(f"envelope expired at {envelope.expires_at:.0f} (now {now_s:.0f})", code="expired")
    if envelope.expires_at > now_s + config.envelope_max_lifetime_s:
        raise ForbiddenError(f"envelope may be valid for at most {config.envelope_max_lifetime_s:.0f} s",
                             code="expiry_too_far")
    # conditional update: two requests racing with the same counter cannot both pass
    moved = session.execute(update(PairedKey).where(PairedKey.id == key.id, PairedKey.counter < envelope.counter)
                            .values(counter=envelope.counter, last_used_at=now_s))
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise ForbiddenError(f"counter {envelope.counter} is not above the last accepted {key.counter}: replayed",
                             code="replayed")
    return envelope


# ---- pairing ------------------------------------------------------------------------------------------------
def create_pairing_code(session: Session, now_s: float, lifetime_s: float, attempts: int) -> tuple[str, float]:
    """A new pairing code for the car to show (valid ``lifetime_s``, spent after ``attempts`` wrong guesses), and
    when it expires. It replaces any code still live: the screen shows one code, and many live codes would
    multiply the odds of a guess."""
    session.execute(update(PairingCode).where(PairingCode.used_at.is_(None), PairingCode.expires_at > now_s)
                    .values(attempts_left=0))
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    expires_at = now_s + lifetime_s
    session.add(PairingCode(code_hash=hash_token(code), created_at=now_s, expires_at=expires_at,
                            attempts_left=attempts))
    return code, expires_at


def key_json(key: PairedKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "public_key": key.public_key, "counter": key.counter,
            "created_at": key.created_at, "last_used_at": key.last_used_at, "revoked_at": key.revoked_at}


def pair_key(session: Session, user_id: int, code: str, public_key: str, name: str, now_s: float) -> dict[str, Any]:
    """Pair a phone's key with the code the car shows; a wrong code spends one of its attempts."""
    raw = decode_public_key(public_key)
    live = list(session.scalars(select(PairingCode).where(
        PairingCode.used_at.is_(None), PairingCode.expires_at > now_s, PairingCode.attempts_left > 0)))
    digest = hash_token(code)
    match = next((c for c in live if hmac.compare_digest(c.code_hash, digest)), None)
    if match is None:
        for pending in live:
            pending.attempts_left -= 1
        raise ForbiddenError("pairing code does not match a code the car shows (or it expired): ask the car "
                             "for a new one", code="bad_pairing_code", keep_changes=True)
    kid = key_id_of(raw)
    if session.get(PairedKey, kid) is not None:
        raise ConflictError(f"key {kid!r} is already paired (or was revoked); generate a new key",
                            code="key_exists")
    match.used_at = now_s
    key = PairedKey(id=kid, user_id=user_id, name=name, public_key=b64url(raw), counter=0, created_at=now_s)
    session.add(key)
    return key_json(key)


def list_keys(session: Session, user_id: int) -> list[dict[str, Any]]:
    keys = session.scalars(select(PairedKey).where(PairedKey.user_id == user_id).order_by(PairedKey.created_at))
    return [key_json(k) for k in keys]


def revoke_key(session: Session, user_id: int, key_id: str, now_s: float) -> None:
    key = session.get(PairedKey, key_id)
    if key is None or key.user_id != user_id or key.revoked_at is not None:
        raise NotFoundError(f"no paired key with id {key_id!r}")
    key.revoked_at = now_s
