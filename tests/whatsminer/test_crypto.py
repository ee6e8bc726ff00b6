"""Whatsminer crypto against vectors computed with the OpenSSL command line (OpenSSL 3.0), never with
fleetd's own code, following the published algorithms (btminer API v2.0.5 and v3 documentation):

  MD5-crypt:  openssl passwd -1 -salt SALT PASSWORD
  v2 token:   KEY=$(openssl passwd -1 -salt BQeM3r2K admin | cut -d'$' -f4)
              SIGN=$(openssl passwd -1 -salt ZM8WzYxa "${KEY}7465" | cut -d'$' -f4)
  AES key:    printf %s "$KEY" | openssl dgst -sha256 -r
  envelope:   { printf %s "$JSON"; head -c $(( (16 - ${#JSON} % 16) % 16 )) /dev/zero; } |
              openssl enc -aes-256-ecb -nopad -K "$AES" | base64 -w0
  v3 token:   printf '%s%s%s%d' CMD PASSWORD SALT TS | openssl dgst -sha256 -binary | base64 | cut -c1-8
"""

from __future__ import annotations

import json

import pytest

from fleetd.transport import md5crypt
from fleetd.transport.btminer import aes_key, decrypt, derive_token, encrypt, envelope, fix_error_code_list
from fleetd.transport.btminer_v3 import frame, v3_token, whole_frame
from fleetd.transport.md5crypt import md5_crypt, md5_crypt_hash

MD5_CRYPT_VECTORS = [
    ("admin", "BQeM3r2K", "$1$BQeM3r2K$qRM8DSiibdET0wCRAmUA91"),
    ("hunter2", "uhCiDyVj", "$1$uhCiDyVj$HxgkeZjvDmxsBNIYTtUhX/"),
    ("", "abc", "$1$abc$Or2rbeUYTvt12aiVzMuS/."),
    ("a" * 40, "12345678", "$1$12345678$beiWYJUUHF.ZVo9A4ag9w0"),
    ("p@ss word!", "abcdefgh", "$1$abcdefgh$Erm6hscQtL61zdg4/hfcT/"),
    ("a", "x", "$1$x$P8VObTrxaqT4VBmnH06P8."),
]

# get_token answered time=7465 salt=BQeM3r2K newsalt=ZM8WzYxa; admin password "admin".
KEY = "qRM8DSiibdET0wCRAmUA91"
SIGN = "hfy1uR.WDQkaZ371DgUho."
AES_HEX = "81f8ba5e5951597c90371bc52ce7d16d9d72d143c564307face99fcc8c17c591"
POWER_OFF = '{"cmd":"power_off","respbefore":"true","token":"hfy1uR.WDQkaZ371DgUho."}'
POWER_OFF_ENC = (
    "KJjGtE+z9DuJYJ7lZ+Nb8vYBgPfPKMkjrj96uY94hRMY4/b23ebTiUOearMQcRW4yMpDwYGPWhS27jTW"
    "jAn3fqtKpLTxMmNkoyrHXoS/m0Q="
)
REPLY = '{"STATUS":"S","When":1700000000,"Code":131,"Msg":"API command OK","Description":""}'
REPLY_ENC = (
    "N0ObUHexCMtuU6O7e9iZRo1mVjx3lFGXce+Lcx1A0jrwaOtmxyyWKUurIQGlQBXXsW5xS+f0zUSvQv2h2ZfqN11FLQVIPhJ0cR6kRPFs"
    "BvN8DNLsh6Gl2w83Aew7yquw"
)


@pytest.mark.parametrize(("password", "salt", "expected"), MD5_CRYPT_VECTORS)
def test_md5_crypt_matches_openssl(password: str, salt: str, expected: str) -> None:
    assert md5_crypt(password, salt) == expected
    assert md5_crypt(password, f"$1${salt}$") == expected
    assert md5_crypt_hash(password, salt) == expected.rsplit("$", 1)[1]


@pytest.mark.parametrize(("password", "salt", "expected"), MD5_CRYPT_VECTORS)
def test_md5_crypt_in_python_and_through_libc_agree(
    password: str, salt: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(md5crypt, "_LIBC", None)  # the pure-Python scheme, as on Python 3.13+
    assert md5_crypt(password, salt) == expected


def test_salt_is_cut_at_eight_characters() -> None:
    assert md5_crypt("admin", "BQeM3r2Kxyz") == "$1$BQeM3r2K$qRM8DSiibdET0wCRAmUA91"


def test_token_derivation_chain() -> None:
    assert derive_token("admin", "BQeM3r2K", "ZM8WzYxa", "7465") == (KEY, SIGN)
    assert aes_key(KEY).hex() == AES_HEX


def test_envelope_encryption_matches_openssl() -> None:
    key = bytes.fromhex(AES_HEX)
    assert encrypt(POWER_OFF.encode(), key) == POWER_OFF_ENC
    env = json.loads(envelope(json.loads(POWER_OFF), key))
    assert env == {"enc": 1, "data": POWER_OFF_ENC}


def test_reply_decryption_matches_openssl() -> None:
    key = bytes.fromhex(AES_HEX)
    assert decrypt(REPLY_ENC, key) == REPLY.encode()
    assert decrypt(encrypt(REPLY.encode(), key), key) == REPLY.encode()


def test_decrypt_rejects_partial_blocks() -> None:
    with pytest.raises(ValueError):
        decrypt("QUJD", bytes(32))


@pytest.mark.parametrize(
    ("command", "password", "salt", "ts", "token"),
    [
        ("set.miner.service", "super", "uhCiDyVj", 1773869570, "wusyZCiM"),
        ("set.miner.pools", "abcdefg", "QbVy1Ou3", 1700000000, "8XdQZJdP"),  # the API v3 document's example
        ("set.miner.power_limit", "p@ss word!", "Ab3dE6gH", 1773869570, "MQPh2dHm"),
    ],
)
def test_v3_token_matches_openssl(command: str, password: str, salt: str, ts: int, token: str) -> None:
    assert v3_token(command, password, salt, ts) == token


def test_v3_framing() -> None:
    f = frame({"cmd": "get.device.info"})
    assert f[:4] == (len(f) - 4).to_bytes(4, "little")
    assert whole_frame(f) and not whole_frame(f[:-1]) and not whole_frame(f[:3])


def test_error_code_list_quirk_is_repaired() -> None:
    raw = b'{"STATUS":"S","Code":131,"Msg":{"error_code":["110":"2024-06-15 09:15:00","218":"x"]},"When":1}'
    fixed = json.loads(fix_error_code_list(raw))
    assert fixed["Msg"]["error_code"] == {"110": "2024-06-15 09:15:00", "218": "x"}
    ok = b'{"Msg":{"error_code":[{"110":"t"}]}}'
    assert fix_error_code_list(ok) == ok
