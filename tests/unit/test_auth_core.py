"""Basic security's pure parts: PBKDF2 credentials, config keys, the chain, the authorizer,
the database edits and the route-declaration check."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI

from common.auth import db
from common.auth.config import parse_security
from common.auth.declare import STATE, check_routes
from common.auth.engine import ALLOW_ALL_RESULT, SecurityEngine, Unauthenticated, parse_basic
from common.auth.model import Action, AuthenticationResult, Resource, ResourceAction, UserAndRoleMap
from common.auth.node import first_fetch_wait
from common.auth.passwords import CredentialVerifier, make_credentials, resolve_password
from common.config import load_settings
from common.errors import ConfigError

BASIC = {
    "druid.auth.authenticatorChain": '["b"]',
    "druid.auth.authenticator.b.type": "basic",
    "druid.auth.authenticator.b.authorizerName": "z",
    "druid.auth.authorizers": '["z"]',
    "druid.auth.authorizer.z.type": "basic",
}


def test_credentials_are_druids_pbkdf2_sha512() -> None:
    creds = make_credentials("s3cret")
    salt, key = base64.b64decode(creds.salt), base64.b64decode(creds.hash)
    assert (len(salt), len(key), creds.iterations) == (32, 64, 10_000)
    assert key == hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 10_000, 64)
    verifier = CredentialVerifier()
    assert verifier.verify("s3cret", creds) and verifier.verify("s3cret", creds)
    assert not verifier.verify("s3creT", creds)


def test_password_providers(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    assert resolve_password("plain", "k") == "plain"
    assert resolve_password('{"type":"default","password":"p"}', "k") == "p"
    assert resolve_password('{"type":"environment","variable":"PW"}', "k", {"PW": "e"}) == "e"
    assert resolve_password(f'{{"type":"file","path":"{secret}"}}', "k") == "from-file"
    with pytest.raises(ValueError, match="k: environment variable 'NOPE' is not set"):
        resolve_password('{"type":"environment","variable":"NOPE"}', "k", {})


def test_settings_keys_and_secrets_stay_hidden() -> None:
    s = load_settings(
        "broker",
        properties={**BASIC, "druid.auth.authenticator.b.initialAdminPassword": "hunter2"},
        environ={},
    )
    assert s.security.authenticators["b"].initial_admin_password is not None
    assert "hunter2" not in repr(s.security)
    assert "hunter2" not in str(s.visible_properties())
    with pytest.raises(ConfigError, match=r"druid\.auth\.authenticator\.b\.colour"):
        load_settings(
            "broker", properties={**BASIC, "druid.auth.authenticator.b.colour": "x"}, environ={}
        )
    with pytest.raises(
        ConfigError, match=r"authorizerName: 'nope' is not in druid\.auth\.authorizers"
    ):
        load_settings(
            "broker",
            properties={**BASIC, "druid.auth.authenticator.b.authorizerName": "nope"},
            environ={},
        )
    with pytest.raises(ConfigError, match="internalClientPassword is required"):
        load_settings("broker", properties={"druid.escalator.type": "basic"}, environ={})


def test_basic_header_parsing_follows_druid() -> None:
    enc = lambda s: "Basic " + base64.b64encode(s.encode()).decode()  # noqa: E731
    assert parse_basic(None) is None and parse_basic("Bearer x") is None
    assert parse_basic(enc("u:p")) == ("u", "p")
    for bad in ("Basic !!!", enc("nocolon"), enc("a:b:c")):
        with pytest.raises(Unauthenticated):
            parse_basic(bad)


def engine_with(
    props: dict[str, str], users: dict[str, str], maps: UserAndRoleMap
) -> SecurityEngine:
    settings = parse_security(props)
    authn = {
        n: db.AuthenticatorUser(name=n, credentials=make_credentials(p, 1000))
        for n, p in users.items()
    }
    snap = db.SecuritySnapshot(authn={"b": authn}, authz={"z": maps}, loaded=True)
    return SecurityEngine(settings, lambda: snap)


def basic(user: str, pw: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def test_chain_basic_then_anonymous_and_skip_on_failure() -> None:
    props = {
        **BASIC,
        "druid.auth.authenticatorChain": '["b","anon"]',
        "druid.auth.authenticator.anon.type": "anonymous",
        "druid.auth.authenticator.anon.authorizerName": "z",
    }
    e = engine_with(props, {"alice": "pw"}, UserAndRoleMap())
    assert e.authenticate(basic("alice", "pw")) == AuthenticationResult("alice", "z", "b")
    assert e.authenticate({}).identity == "defaultUser"  # no credentials: on to anonymous
    with pytest.raises(Unauthenticated):
        e.authenticate(basic("alice", "wrong"))  # bad credentials stop the chain
    skip = engine_with(
        {**props, "druid.auth.authenticator.b.skipOnFailure": "true"},
        {"alice": "pw"},
        UserAndRoleMap(),
    )
    assert skip.authenticate(basic("alice", "wrong")).identity == "defaultUser"
    only_basic = engine_with(BASIC, {}, UserAndRoleMap())
    with pytest.raises(Unauthenticated):
        only_basic.authenticate({})


def test_permissions_match_whole_names_per_type_and_action() -> None:
    maps = UserAndRoleMap()
    maps = db.create_authz_user(db.create_role(maps, "r"), "alice")
    maps = db.assign_role(maps, "alice", "r")
    ra = ResourceAction(resource=Resource(name="wiki.*", type="DATASOURCE"), action=Action.READ)
    maps = db.set_permissions(maps, "r", [ra])
    e = engine_with(BASIC, {"alice": "pw"}, maps)
    alice = AuthenticationResult("alice", "z", "b")
    assert e.authorize(alice, "DATASOURCE", "wikipedia", Action.READ)
    assert not e.authorize(alice, "DATASOURCE", "my-wiki", Action.READ)  # full match only
    assert not e.authorize(alice, "DATASOURCE", "wiki", Action.WRITE)
    assert not e.authorize(alice, "STATE", "wiki", Action.READ)
    assert not e.authorize(AuthenticationResult("bob", "z", "b"), "DATASOURCE", "wiki", Action.READ)
    assert e.authorize(ALLOW_ALL_RESULT, "STATE", "STATE", Action.WRITE)
    with pytest.raises(db.SecurityDbError, match=r"User \[alice\] already has role \[r\]"):
        db.assign_role(maps, "alice", "r")
    with pytest.raises(db.SecurityDbError, match="invalid resource name pattern"):
        db.set_permissions(
            maps,
            "r",
            [ResourceAction(resource=Resource(name="(", type="STATE"), action=Action.READ)],
        )
    assert db.delete_role(maps, "r").userMap["alice"].roles == []


def test_seeding_creates_druids_initial_users_once() -> None:
    s = parse_security(
        {
            **BASIC,
            "druid.auth.authenticator.b.initialAdminPassword": "a",
            "druid.auth.authenticator.b.initialInternalClientPassword": "i",
        }
    )
    users = db.seed_authn({}, s, "b")
    assert sorted(users) == ["admin", "druid_system"]
    again = db.seed_authn(users, s, "b")
    assert again["admin"].credentials == users["admin"].credentials  # never overwritten
    maps = db.seed_authz(UserAndRoleMap(), s, "z")
    assert maps.userMap["admin"].roles == ["admin"]
    assert maps.userMap["druid_system"].roles == ["druid_system"]
    assert len(maps.roleMap["admin"].permissions) == 14  # 7 resource types x READ/WRITE


def test_a_route_without_a_declaration_fails_app_creation() -> None:
    app = FastAPI()
    router = APIRouter(prefix="/druid/x")

    @router.get("/declared", dependencies=[STATE])
    async def declared() -> int:
        return 1

    @router.post("/forgotten")
    async def forgotten() -> int:
        return 2

    app.include_router(router)
    with pytest.raises(TypeError, match="POST /druid/x/forgotten declares no access"):
        check_routes(app)


def test_max_sync_retries_bounds_the_first_fetch_wait_like_druids_retries() -> None:
    assert parse_security(BASIC).max_sync_retries == 10
    # RetryUtils between 10 tries: 1, 2, 4, ... s, capped at 60 s
    assert first_fetch_wait(10) == 1 + 2 + 4 + 8 + 16 + 32 + 60 + 60 + 60
    assert first_fetch_wait(1) == 0 and first_fetch_wait(3) == 3
    s = parse_security({**BASIC, "druid.auth.basic.common.maxSyncRetries": "3"})
    assert s.max_sync_retries == 3
    with pytest.raises(ValueError, match=r"maxSyncRetries: must be positive"):
        parse_security({**BASIC, "druid.auth.basic.common.maxSyncRetries": "0"})
