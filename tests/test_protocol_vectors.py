"""docs/protocol-vectors.json against peerbeam.transfer: every expected value recomputed.

The JavaScript client runs the same vectors, so passing both means the two
implementations agree byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from peerbeam.transfer import (
    RECEIVER,
    SENDER,
    Handshake,
    ProtocolError,
    decode_piece,
    derive_auth_key,
    encode_message,
    encode_piece,
    file_digest,
    iter_pieces,
    make_link,
    numbered_filename,
    parse_link,
    parse_message,
    piece_payload_limit,
    sanitize_filename,
    sdp_fingerprint_list,
    sdp_fingerprints,
    sdp_max_message_size,
)
from peerbeam.transfer.auth import KDF_INFO, hkdf_sha256, normalize_password, stretch_password
from peerbeam.transfer.chunks import chunk_digests_of
from peerbeam.transfer.codec import b64url_decode, b64url_encode
from peerbeam.transfer.frames import HEADER_SIZE

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent.parent / "docs" / "protocol-vectors.json").read_text("utf-8")
)


def test_vector_file_covers_every_section() -> None:
    assert VECTORS["protocol_version"] == 1
    for section in (
        "links",
        "auth_keys",
        "sdp_fingerprints",
        "auth",
        "frames",
        "digests",
        "sanitize_filename",
        "numbered_filename",
        "messages",
    ):
        assert VECTORS[section], section


# --- links ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["links"]["valid"], ids=lambda c: c["room"])
def test_link_parse(case: dict[str, Any]) -> None:
    link = parse_link(case["url"])
    assert link.base_url == case["base_url"]
    assert link.room == case["room"]
    assert link.key.hex() == case["key_hex"]
    assert link.password == case["password"]
    assert parse_link(make_link(link.base_url, link.room, link.key, link.password)) == link


@pytest.mark.parametrize("case", VECTORS["links"]["invalid"], ids=lambda c: c["why"])
def test_link_rejected(case: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_link(case["url"])
    assert info.value.code == case["code"]
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("case", VECTORS["links"]["make"], ids=lambda c: c["link"])
def test_make_link(case: dict[str, Any]) -> None:
    made = make_link(case["base_url"], case["room"], bytes.fromhex(case["key_hex"]), case["password"])
    assert made == case["link"]


# --- key derivation ---------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["auth_keys"], ids=lambda c: c["name"])
def test_auth_key(case: dict[str, Any]) -> None:
    link_key = bytes.fromhex(case["link_key_hex"])
    password = case["password"]
    if password is not None:
        assert normalize_password(password).hex() == case["password_utf8_nfc_hex"]
        stretched = stretch_password(link_key, case["room"], password, case["iterations"])
        assert stretched.hex() == case["pbkdf2_hex"]
        assert (link_key + stretched).hex() == case["hkdf_ikm_hex"]
    assert KDF_INFO.hex() == case["hkdf_info_hex"]
    assert (
        hkdf_sha256(
            bytes.fromhex(case["hkdf_ikm_hex"]), bytes.fromhex(case["hkdf_salt_hex"]), KDF_INFO
        ).hex()
        == case["auth_key_hex"]
    )
    key = derive_auth_key(link_key, case["room"], password, case.get("iterations", 1))
    assert key.hex() == case["auth_key_hex"]


def test_hkdf_matches_an_independent_implementation() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    for length in (16, 32, 33, 64, 100):
        expected = HKDF(hashes.SHA256(), length, b"salt", b"info").derive(b"ikm")
        assert hkdf_sha256(b"ikm", b"salt", b"info", length) == expected


# --- fingerprints and MACs --------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["sdp_fingerprints"]["valid"], ids=lambda c: c["name"])
def test_sdp_fingerprints(case: dict[str, Any]) -> None:
    assert list(sdp_fingerprint_list(case["sdp"])) == case["fingerprints"]
    assert sdp_fingerprints(case["sdp"]) == case["canonical"]
    assert sdp_max_message_size(case["sdp"]) == case["max_message_size"]


@pytest.mark.parametrize("case", VECTORS["sdp_fingerprints"]["invalid"], ids=lambda c: c["why"])
def test_sdp_fingerprints_rejected(case: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        sdp_fingerprints(case["sdp"])
    assert info.value.code == case["code"]


@pytest.mark.parametrize("case", VECTORS["auth"]["cases"], ids=lambda c: c["key"])
def test_transcript_and_mac(case: dict[str, Any]) -> None:
    key = bytes.fromhex(case["auth_key_hex"])
    handshake = Handshake(
        case["room"],
        case["sender_fingerprints"],
        case["receiver_fingerprints"],
        b64url_decode(case["sender_nonce_b64url"], 32),
        b64url_decode(case["receiver_nonce_b64url"], 32),
    )
    for role in (RECEIVER, SENDER):
        expected = case[role]
        assert handshake.transcript(role).hex() == expected["transcript_hex"]
        mac = handshake.mac(key, role)
        assert mac.hex() == expected["mac_hex"]
        assert b64url_encode(mac) == expected["mac_b64url"]
        assert handshake.verify(key, role, mac)
    assert case["receiver"]["mac_hex"] != case["sender"]["mac_hex"]


def test_auth_vector_keys_match_key_derivation_vectors() -> None:
    derived = {c["auth_key_hex"] for c in VECTORS["auth_keys"]}
    assert {c["auth_key_hex"] for c in VECTORS["auth"]["cases"]} == derived


def test_auth_messages_round_trip() -> None:
    for obj in VECTORS["auth"]["messages"].values():
        message = parse_message(json.dumps(obj))
        assert json.loads(encode_message(message)) == obj


# --- frames -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["frames"]["valid"], ids=lambda c: c["frame_hex"][:40])
def test_frame_encoding(case: dict[str, Any]) -> None:
    payload = bytes.fromhex(case["payload_hex"])
    frame = encode_piece(case["file"], case["chunk"], case["offset"], payload)
    assert frame.hex() == case["frame_hex"]
    piece = decode_piece(frame)
    assert (piece.file, piece.chunk, piece.offset) == (case["file"], case["chunk"], case["offset"])
    assert bytes(piece.payload) == payload


@pytest.mark.parametrize("case", VECTORS["frames"]["invalid"], ids=lambda c: c["why"])
def test_frame_rejected(case: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_piece(bytes.fromhex(case["frame_hex"]))
    assert info.value.code == case["code"]


def test_oversize_frame_rejected() -> None:
    case = VECTORS["frames"]["oversize"]
    frame = encode_piece(0, 0, 0, b"x")[:HEADER_SIZE] + b"x" * case["payload_size"]
    with pytest.raises(ProtocolError) as info:
        decode_piece(frame)
    assert info.value.code == case["code"]


@pytest.mark.parametrize("case", VECTORS["frames"]["piece_payload_limit"], ids=lambda c: c["who"])
def test_piece_payload_limit(case: dict[str, Any]) -> None:
    assert piece_payload_limit(case["max_message_size"]) == case["limit"]


# --- digests ----------------------------------------------------------------------------


def _digest_case_data(case: dict[str, Any]) -> bytes:
    if "data_hex" in case:
        return bytes.fromhex(case["data_hex"])
    # The generator formula written in the vector file, in Python.
    return bytes(((i * 31) + (i >> 16)) & 0xFF for i in range(case["size"]))


@pytest.mark.parametrize("case", VECTORS["digests"], ids=lambda c: c["name"])
def test_digests(case: dict[str, Any]) -> None:
    data = _digest_case_data(case)
    assert len(data) == case["size"]
    digests = chunk_digests_of(data, case["chunk_size"])
    assert [d.hex() for d in digests] == case["chunk_digests_hex"]
    assert file_digest(digests).hex() == case["file_digest_hex"]
    for prefix in case["prefixes"]:
        held = -(-prefix["offset"] // case["chunk_size"])
        assert file_digest(digests[:held]).hex() == prefix["prefix_hex"]


def test_generated_digest_case_reassembles_through_frames() -> None:
    case = next(c for c in VECTORS["digests"] if "generator" in c)
    data = _digest_case_data(case)
    for index, expected in enumerate(case["chunk_digests_hex"]):
        chunk = data[index * case["chunk_size"] : (index + 1) * case["chunk_size"]]
        pieces = [decode_piece(f) for f in iter_pieces(0, index, chunk, 262128)]
        assert b"".join(bytes(p.payload) for p in pieces) == chunk
        assert chunk_digests_of(chunk, case["chunk_size"])[0].hex() == expected


# --- file names -------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["sanitize_filename"], ids=lambda c: repr(c["input"])[:40])
def test_sanitize_filename(case: dict[str, Any]) -> None:
    assert sanitize_filename(case["input"]) == case["output"]
    # Idempotent: a sanitised name is its own sanitised form.
    assert sanitize_filename(case["output"]) == case["output"]


@pytest.mark.parametrize("case", VECTORS["numbered_filename"], ids=lambda c: c["output"][:40])
def test_numbered_filename(case: dict[str, Any]) -> None:
    assert numbered_filename(case["name"], case["number"]) == case["output"]


# --- messages ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", VECTORS["messages"]["valid"], ids=lambda t: t[:40])
def test_valid_messages(text: str) -> None:
    message = parse_message(text)
    again = json.loads(encode_message(message))
    original = json.loads(text)
    original.pop("future_field", None)  # unknown fields are ignored, not echoed
    assert again == original


@pytest.mark.parametrize("case", VECTORS["messages"]["invalid"], ids=lambda c: c["json"][:50])
def test_invalid_messages(case: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_message(case["json"])
    assert info.value.code == case["code"]


def test_too_large_message() -> None:
    case = VECTORS["messages"]["too_large"]
    head, tail = '{"t":"ping","pad":"', '"}'
    text = head + "x" * (case["size"] - len(head) - len(tail)) + tail
    assert len(text.encode()) == case["size"]
    with pytest.raises(ProtocolError) as info:
        parse_message(text)
    assert info.value.code == case["code"]
    assert parse_message(text[: -(case["size"] - 65536) - 2] + tail)  # 65536 bytes: fine
