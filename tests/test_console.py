"""The web console, page by page and action by action, through its HTTP interface
(an in-memory ASGI client; tests/test_console_e2e.py drives a real browser): what it
shows, that its actions have the API's results and errors, CSRF, sign-in, policies
and accounts."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rekollect.console.session import COOKIE
from rekollect.protocol import model
from rekollect.security.access import AccessControl
from rekollect.security.keystore import KeyRing, NewKey, create_key, delete_key
from rekollect.security.policy import parse_policy
from rekollect.security.sealing import load_or_create_master_key
from rekollect.server.app import create_app
from rekollect.service import OPERATIONS, Service
from rekollect.service.faces import add_faces
from rekollect.storage import open_database
from rekollect.storage.records import Scope
from tests import faces as made_up
from tests.console_browser import Browser, browsers

ACCOUNT = "000000000000"
OTHER_ACCOUNT = "222222222222"
SCOPE = Scope(ACCOUNT, "us-east-1")
PHOTOS = (
    Path(__file__).resolve().parents[2] / "shared/datasets/face-recognition-examples"
)


@pytest.fixture
def service(store_url: str) -> Iterator[Service]:
    service = Service(open_database(store_url))
    yield service
    service.close()


@pytest.fixture
def keys(service: Service, tmp_path: Path) -> dict[str, Any]:
    """Access control on the store's keys, re-read on every request."""
    master_file = tmp_path / "master.key"
    ring = KeyRing(
        service.database, master_file, model.operation_names(), refresh_s=0.0
    )
    access = AccessControl(
        ring, account_id=ACCOUNT, default_region="us-east-1", open_when_keyless=True
    )
    return {"access": access, "master": load_or_create_master_key(master_file)}


@pytest.fixture
def open_browser(service: Service) -> Iterator[Browser]:
    """A browser on the console of a keyless loopback server."""
    with browsers(create_app(service)) as make:
        yield make()


@pytest.fixture
def keyed(service: Service, keys: dict[str, Any]) -> Iterator[Any]:
    """Makes browsers on the console of a server with access control."""
    with browsers(create_app(service, access=keys["access"])) as make:
        yield make


def make_key(
    service: Service,
    keys: dict[str, Any],
    account_id: str = ACCOUNT,
    policy: dict[str, Any] | None = None,
) -> NewKey:
    parsed = None
    if policy is not None:
        parsed = parse_policy(json.dumps(policy), model.operation_names())
    return create_key(
        service.database,
        keys["master"],
        account_id=account_id,
        user_name="alice",
        policy=parsed,
    )


def sign_in(browser: Browser, key: NewKey) -> None:
    browser.get("/console/sign-in")
    data = {"access_key_id": key.key.access_key_id, "secret": key.secret}
    response = browser.post("/console/sign-in", data)
    assert response.status_code == 200, browser.messages


def collection_with_faces(
    service: Service, count: int, scope: Scope = SCOPE, name: str = "staff"
) -> list[str]:
    """A collection of `count` made-up faces (ExternalImageIds img-000, ...)."""
    OPERATIONS["CreateCollection"](service, scope, collection_id=name)
    person = made_up.person()
    new = [
        made_up.new_face(made_up.face_of(person), f"img-{i:03d}") for i in range(count)
    ]
    add_faces(service, scope, name, new)
    return sorted(face.face_id for face in new)


def shown_faces(page: str) -> list[str]:
    """Face ids of the tiles in the faces section of a collection page."""
    section = page.split('id="faces"', 1)[1]
    return re.findall(r'class="tile[^"]*" data-face-id="([^"]+)"', section)


def user_of(service: Service, face_id: str, collection: str = "staff") -> str | None:
    answer = OPERATIONS["ListFaces"](
        service, SCOPE, collection_id=collection, face_ids=[face_id]
    )
    return answer["Faces"][0]["UserId"] if answer["Faces"] else "deleted"


# --- open console ------------------------------------------------------------------


def test_a_keyless_loopback_console_needs_no_sign_in_and_says_so(open_browser):
    response = open_browser.get("/console", follow_redirects=True)
    assert response.status_code == 200
    assert "needs no sign-in" in response.text
    assert '<meta name="viewport" content="width=device-width' in response.text

    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/console" in cookie


def test_pages_forbid_framing_and_foreign_scripts(open_browser):
    headers = open_browser.get("/console/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"


def test_every_asset_is_served_locally(open_browser):
    page = open_browser.get("/console/").text
    assets = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert assets and all(a.startswith("/console/") for a in assets), assets
    for asset in assets:
        if "/static/" in asset:
            assert open_browser.get(asset).status_code == 200


def test_collections_page_shows_counts_model_and_creation(service, open_browser):
    collection_with_faces(service, 3)
    OPERATIONS["CreateUser"](service, SCOPE, collection_id="staff", user_id="bob")
    page = open_browser.get("/console/").text
    row = re.search(r'<tr data-collection="staff">(.*?)</tr>', page, re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    assert "staff" in cells[0]
    assert cells[1:4] == ["3", "1", service.face_model_version]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", cells[4])


# --- browsing ----------------------------------------------------------------------


def test_faces_page_through_in_bounded_pages_both_ways(service, open_browser):
    face_ids = collection_with_faces(service, 250)
    seen: list[str] = []
    page = open_browser.get("/console/c/staff?show=all").text
    while True:
        shown = shown_faces(page)
        assert 0 < len(shown) <= 120
        seen += shown
        found = re.search(r'href="([^"]+)#faces" id="next-faces"', page)
        if found is None:
            break
        page = open_browser.get(found.group(1).replace("&amp;", "&")).text
    assert seen == face_ids

    back: list[str] = []
    while True:
        back = shown_faces(page) + back
        found = re.search(r'href="([^"]+)#faces" id="previous-faces"', page)
        if found is None:
            break
        page = open_browser.get(found.group(1).replace("&amp;", "&")).text
    assert back == face_ids


def test_faces_are_filtered_by_owner_and_external_image_id(service, open_browser):
    face_ids = collection_with_faces(service, 30)
    OPERATIONS["CreateUser"](service, SCOPE, collection_id="staff", user_id="bob")
    OPERATIONS["AssociateFaces"](
        service, SCOPE, collection_id="staff", user_id="bob", face_ids=face_ids[:4]
    )

    unowned = shown_faces(open_browser.get("/console/c/staff").text)
    assert unowned == face_ids[4:]
    bobs = shown_faces(open_browser.get("/console/c/staff?show=user&user=bob").text)
    assert bobs == face_ids[:4]
    nobody = open_browser.get("/console/c/staff?show=user&user=nobody").text
    assert shown_faces(nobody) == []

    page = open_browser.get("/console/c/staff?show=all&external=img-01").text
    shown = re.findall(r'data-external="(img-[^"]+)"', page.split('id="faces"')[1])
    assert sorted(shown) == [f"img-{i:03d}" for i in range(10, 20)]


def test_users_are_shown_with_their_faces_and_filtered_by_id(service, open_browser):
    face_ids = collection_with_faces(service, 12)
    for user_id, faces in [("ann", face_ids[:10]), ("anton", []), ("bob", [])]:
        OPERATIONS["CreateUser"](service, SCOPE, collection_id="staff", user_id=user_id)
        if faces:
            OPERATIONS["AssociateFaces"](
                service, SCOPE, collection_id="staff", user_id=user_id, face_ids=faces
            )
    page = open_browser.get("/console/c/staff?user=an").text
    users = re.findall(r'<article class="user" data-user="([^"]+)">', page)
    assert users == ["ann", "anton"]
    ann = page.split('data-user="ann">')[1].split("</article>")[0]
    assert len(re.findall(r'class="tile[^"]*" data-face-id', ann)) == 8
    assert "+2 more" in ann and "10 faces · ACTIVE" in ann


def test_thumbnails_are_cacheable_and_missing_ones_are_404(service, open_browser):
    [face_id] = collection_with_faces(service, 1)
    assert "no image" in open_browser.get("/console/c/staff").text
    response = open_browser.get(f"/console/c/staff/faces/{face_id}.jpg")
    assert response.status_code == 404


# --- actions -----------------------------------------------------------------------


def test_associate_and_disassociate_by_selection(service, open_browser):
    face_ids = collection_with_faces(service, 5)
    open_browser.get("/console/c/staff")
    open_browser.post("/console/c/staff/users", {"user_id": "carol"})
    assert ("ok", "User carol created.") in open_browser.messages

    open_browser.post(
        "/console/c/staff/associate", {"face_id": face_ids[:3], "to_user": "carol"}
    )
    assert ("ok", "Associated 3 faces with user carol.") in open_browser.messages
    assert [user_of(service, f) for f in face_ids[:4]] == ["carol"] * 3 + [None]

    open_browser.post("/console/c/staff/disassociate", {"face_id": face_ids[:1]})
    assert ("ok", "Disassociated 1 face from carol.") in open_browser.messages
    assert user_of(service, face_ids[0]) is None


def test_the_apis_refusals_are_told_in_words(service, open_browser):
    face_ids = collection_with_faces(service, 2)
    for user_id in ("dan", "eve"):
        OPERATIONS["CreateUser"](service, SCOPE, collection_id="staff", user_id=user_id)
    OPERATIONS["AssociateFaces"](
        service, SCOPE, collection_id="staff", user_id="dan", face_ids=face_ids[:1]
    )
    open_browser.get("/console/c/staff")

    open_browser.post(
        "/console/c/staff/associate", {"face_id": face_ids[:1], "user_id": "eve"}
    )
    [(kind, text)] = [m for m in open_browser.messages if m[0] == "error"]
    assert "ASSOCIATED_TO_A_DIFFERENT_USER" in text and "dan" in text

    open_browser.post("/console/c/staff/users", {"user_id": "dan"})
    assert (
        "error",
        "A user with the id: dan already exists. (ConflictException)",
    ) in open_browser.messages

    open_browser.post("/console/c/staff/users", {"user_id": "no spaces"})
    [(kind, text)] = open_browser.messages
    assert kind == "error" and "(InvalidParameterException)" in text
    assert user_of(service, face_ids[0]) == "dan"


def test_delete_faces_keeps_faces_of_users_and_says_why(service, open_browser):
    face_ids = collection_with_faces(service, 3)
    OPERATIONS["CreateUser"](service, SCOPE, collection_id="staff", user_id="fay")
    OPERATIONS["AssociateFaces"](
        service, SCOPE, collection_id="staff", user_id="fay", face_ids=face_ids[:1]
    )
    open_browser.get("/console/c/staff")
    open_browser.post("/console/c/staff/faces/delete", {"face_id": face_ids[:2]})
    assert ("ok", "Deleted 1 face.") in open_browser.messages
    assert any("ASSOCIATED_TO_AN_EXISTING_USER" in t for _, t in open_browser.messages)
    assert [user_of(service, f) for f in face_ids[:2]] == ["fay", "deleted"]


def test_users_and_collections_are_created_and_deleted(service, open_browser):
    open_browser.get("/console/")
    open_browser.post("/console/collections", {"collection_id": "team"})
    assert ("ok", "Collection team created.") in open_browser.messages
    open_browser.post("/console/c/team/users", {"user_id": "gus"})
    open_browser.post("/console/c/team/users/delete", {"delete_user": "gus"})
    assert open_browser.messages == [
        ("ok", "User gus deleted; its faces stay in the collection.")
    ]
    open_browser.post("/console/c/team/delete")
    assert (
        "ok",
        "Collection team deleted, with all its faces.",
    ) in open_browser.messages
    listing = OPERATIONS["ListCollections"](service, SCOPE)
    assert listing["CollectionIds"] == []


def test_an_action_returns_to_the_page_and_filter_it_came_from(service, open_browser):
    face_ids = collection_with_faces(service, 2)
    open_browser.get("/console/c/staff?show=all&external=img")
    response = open_browser.post(
        "/console/c/staff/faces/delete",
        {"face_id": face_ids[:1], "return": "?show=all&external=img&evil=1"},
        follow=False,
    )
    assert response.headers["location"] == "/console/c/staff?show=all&external=img"


# --- CSRF --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attack",
    ["no-token", "other-session-token", "other-origin"],
)
def test_forged_posts_change_nothing(service, open_browser, attack):
    face_ids = collection_with_faces(service, 1)
    with browsers(create_app(service)) as make:
        other = make()
        other.get("/console/")
        other_token = other.csrf
    open_browser.get("/console/c/staff")
    options: dict[str, Any] = {"data": {"face_id": face_ids}, "follow": False}
    if attack == "no-token":
        options["csrf"] = ""
    elif attack == "other-session-token":
        options["csrf"] = other_token
    else:
        options["headers"] = {"origin": "https://evil.example"}
    response = open_browser.post("/console/c/staff/faces/delete", **options)
    assert response.status_code == 403
    assert user_of(service, face_ids[0]) is None  # still there, of no user


# --- sign-in, policies and accounts ------------------------------------------------


def test_with_keys_every_page_wants_a_sign_in(service, keys, keyed):
    make_key(service, keys)
    browser = keyed()
    response = browser.get("/console/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in"
    assert browser.get("/console/c/staff", follow_redirects=False).status_code == 303
    assert browser.get("/console/c/staff/faces/x.jpg").status_code == 403
    response = browser.post(
        "/console/collections", {"collection_id": "x"}, follow=False
    )
    assert response.headers["location"] == "/console/sign-in"
    assert OPERATIONS["ListCollections"](service, SCOPE)["CollectionIds"] == []


def test_a_wrong_secret_is_refused_and_the_right_one_signs_in(
    service, keys, keyed, caplog
):
    key = make_key(service, keys)
    browser = keyed()
    browser.get("/console/sign-in")
    data = {"access_key_id": key.key.access_key_id, "secret": "not-it"}
    caplog.set_level(logging.WARNING, logger="rekollect.console.app")
    response = browser.post("/console/sign-in", data)
    assert response.status_code == 401
    assert "not right" in response.text
    [refusal] = [r.getMessage() for r in caplog.records if "sign-in" in r.getMessage()]
    assert key.key.access_key_id in refusal and "not-it" not in refusal

    sign_in(browser, key)
    assert key.key.access_key_id in browser.page
    assert "needs no sign-in" not in browser.page


def test_deleting_the_key_ends_its_console_sessions(service, keys, keyed):
    key = make_key(service, keys)
    make_key(service, keys)  # the server stays keyed once `key` is gone
    browser = keyed()
    sign_in(browser, key)
    assert browser.get("/console/").status_code == 200
    delete_key(service.database, key.key.access_key_id)
    response = browser.get("/console/", follow_redirects=False)
    assert response.headers["location"] == "/console/sign-in"


def test_signing_out_ends_the_session(service, keys, keyed):
    browser = keyed()
    sign_in(browser, make_key(service, keys))
    browser.post("/console/sign-out")
    assert ("ok", "Signed out.") in browser.messages
    response = browser.get("/console/", follow_redirects=False)
    assert response.headers["location"] == "/console/sign-in"


def test_a_key_sees_only_its_own_accounts_collections(service, keys, keyed):
    [face_id] = collection_with_faces(service, 1, name="ours")
    theirs = Scope(OTHER_ACCOUNT, "us-east-1")
    collection_with_faces(service, 1, scope=theirs, name="theirs")
    browser = keyed()
    sign_in(browser, make_key(service, keys, account_id=OTHER_ACCOUNT))

    page = browser.get("/console/").text
    assert 'data-collection="theirs"' in page and "ours" not in page
    assert browser.get("/console/c/ours").status_code == 404
    assert browser.get(f"/console/c/ours/faces/{face_id}.jpg").status_code == 404
    browser.get("/console/c/theirs")
    browser.post("/console/c/ours/faces/delete", {"face_id": [face_id]})
    assert "does not exist" in browser.messages[0][1]
    assert user_of(service, face_id, "ours") is None


def test_a_keys_policy_rules_the_console_as_it_rules_the_api(service, keys, keyed):
    face_ids = collection_with_faces(service, 2, name="team-a")
    collection_with_faces(service, 1, name="secret")
    arn = f"arn:aws:rekognition:*:{ACCOUNT}:collection/team-*"
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": "rekognition:List*", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": ["rekognition:Describe*", "rekognition:*User*"],
                "Resource": arn,
            },
            {"Effect": "Deny", "Action": "rekognition:DeleteFaces", "Resource": "*"},
        ]
    }
    browser = keyed()
    sign_in(browser, make_key(service, keys, policy=policy))

    page = browser.get("/console/").text
    assert "not authorized to perform: rekognition:DescribeCollection" in page
    assert browser.get("/console/c/secret").status_code == 403
    assert browser.get("/console/c/team-a").status_code == 200

    browser.post("/console/c/team-a/faces/delete", {"face_id": face_ids[:1]})
    [(kind, text)] = browser.messages
    assert kind == "error"
    assert "not authorized to perform: rekognition:DeleteFaces" in text
    assert "(AccessDeniedException)" in text
    assert user_of(service, face_ids[0], "team-a") is None

    browser.post("/console/c/team-a/users", {"user_id": "hal"})
    assert ("ok", "User hal created.") in browser.messages


def test_sessions_are_bound_to_the_server_that_issued_them(service, keys, keyed):
    browser = keyed()
    sign_in(browser, make_key(service, keys))
    cookie = browser.client.cookies[COOKIE]
    body, _, mac = cookie.partition(".")
    forged = body + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
    browser.client.cookies.set(COOKIE, forged, domain="127.0.0.1", path="/console")
    response = browser.get("/console/", follow_redirects=False)
    assert response.headers["location"] == "/console/sign-in"


# --- photos ------------------------------------------------------------------------


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"face photos not found at {PHOTOS}")
def test_photos_are_indexed_and_searched_from_the_console(service, open_browser):
    OPERATIONS["CreateCollection"](service, SCOPE, collection_id="photos")
    open_browser.get("/console/c/photos")
    names = [
        "examples__knn_examples__train__obama__obama.jpg",
        "examples__knn_examples__train__biden__biden2.jpg",
    ]
    files = [("photo", (n, (PHOTOS / n).read_bytes(), "image/jpeg")) for n in names]
    open_browser.post("/console/c/photos/index", files=files)
    assert open_browser.messages == [("ok", f"{n}: indexed 1 face.") for n in names]

    tiles = re.findall(
        r'data-face-id="([^"]+)" data-external="([^"]+)"', open_browser.page
    )
    obama = next(face for face, external in tiles if "obama" in external)
    assert f'src="/console/c/photos/faces/{obama}.jpg"' in open_browser.page
    jpeg = open_browser.get(f"/console/c/photos/faces/{obama}.jpg")
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert "immutable" in jpeg.headers["cache-control"]
    open_browser.post("/console/c/photos/users", {"user_id": "barack"})
    open_browser.post(
        "/console/c/photos/associate", {"face_id": [obama], "to_user": "barack"}
    )

    probe = PHOTOS / "examples__obama-480p.jpg"
    response = open_browser.post(
        "/console/c/photos/search",
        {"threshold": "80"},
        files=[("photo", (probe.name, probe.read_bytes(), "image/jpeg"))],
    )
    assert response.status_code == 200
    users = re.findall(r'<article class="match" data-user="([^"]+)">', response.text)
    assert users == ["barack"]
    faces = re.findall(r'<div class="tile" data-face-id="([^"]+)"', response.text)
    assert faces == [obama]


@pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"face photos not found at {PHOTOS}")
def test_a_photo_without_a_face_is_told_in_words(service, open_browser):
    import io

    from PIL import Image

    OPERATIONS["CreateCollection"](service, SCOPE, collection_id="photos")
    open_browser.get("/console/c/photos")
    blank = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 140, 200)).save(blank, "JPEG")
    files = [("photo", ("sky.jpg", blank.getvalue(), "image/jpeg"))]
    open_browser.post("/console/c/photos/index", files=files)
    assert open_browser.messages == [("error", "sky.jpg: indexed 0 faces.")]

    response = open_browser.post("/console/c/photos/search", files=files)
    assert "No face in the photo could be searched." in response.text
    assert (
        "There are no faces in the image. Should be at least 1. "
        "(InvalidParameterException)"
    ) in response.text
