"""Credentials: common values, per-vendor overrides, factory defaults; immutable and never printed."""

from __future__ import annotations

import copy
import pickle

import pytest
from fleetd.drivers.base import Credentials, Login


def test_precedence_vendor_table_then_common_then_factory() -> None:
    creds = Credentials("admin", "common", {"antminer": Login(password="ant"), "whatsminer": Login("user1")})
    assert creds.for_vendor("antminer") == Login("admin", "ant")
    assert creds.for_vendor("whatsminer") == Login("user1", "common")
    assert Credentials().for_vendor("antminer") == Login("root", "root")
    assert Credentials().for_vendor("whatsminer") == Login("super", "super")
    assert Credentials().for_vendor("nosuch") == Login()
    # A driver with several protocols passes the factory login of the one it speaks.
    assert Credentials().for_vendor("whatsminer", default=Login(None, "admin")) == Login(None, "admin")
    assert Credentials(password="pw").for_vendor("whatsminer", default=Login(None, "admin")).password == "pw"


def test_common_username_is_not_applied_to_whatsminer() -> None:
    creds = Credentials("root", "pw")
    assert creds.for_vendor("antminer") == Login("root", "pw")
    assert creds.for_vendor("whatsminer") == Login("super", "pw")  # its account stays the factory "super"


def test_any_vendor_applies_everywhere_and_yields_to_nothing_but_vendor_tables() -> None:
    cli = Credentials.any_vendor("user1", "pw")
    assert cli.for_vendor("whatsminer") == Login("user1", "pw")
    assert cli.for_vendor("antminer") == Login("user1", "pw")
    assert Credentials.any_vendor(None, "pw").for_vendor("whatsminer") == Login("super", "pw")
    assert Credentials.any_vendor() == Credentials()


def test_immutable_hashable_and_redacted() -> None:
    table = {"antminer": Login("root", "s3cret")}
    creds = Credentials("root", "top-secret", table)
    table["antminer"] = Login("x", "y")  # the caller's dict is copied
    assert creds.for_vendor("antminer").password == "s3cret"
    with pytest.raises(TypeError):
        creds.vendors["whatsminer"] = Login()  # type: ignore[index]
    assert hash(creds) == hash(Credentials("root", "top-secret", {"antminer": Login("root", "s3cret")}))
    assert pickle.loads(pickle.dumps(creds)) == creds == copy.deepcopy(creds)
    texts = [repr(creds), str(creds), repr(creds.for_vendor("antminer")), repr(creds.vendors)]
    assert not [t for t in texts if "secret" in t]
