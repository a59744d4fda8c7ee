"""The local stack's /storage/v1 through supabase-py (storage3), as a Python frontend or script uses it.

Each test acts through `create_client(API_URL, key)` with a user's session, anon or the service key, so
what is proven is the contract the official client relies on: paths, bodies, headers and error shapes.
"""

from __future__ import annotations

import http.client
import io
import json
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import psycopg
import pytest
from storage3.exceptions import StorageApiError
from supabase import Client, ClientOptions, create_client

from tests.support import ANON_KEY, SERVICE_KEY, Company, User, add_member, make_company, make_user, token_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 56
HTTP = httpx.Client(timeout=30)


def client_for(url: str, user: User | None = None, key: str = ANON_KEY) -> Client:
    headers = {"Authorization": f"Bearer {token_for(user)}"} if user else {}
    return create_client(url, key, options=ClientOptions(headers=headers, httpx_client=HTTP))


@pytest.fixture(scope="module")
def people(committed_module: psycopg.Connection) -> dict[str, User]:
    return {
        name: make_user(committed_module, email=f"{name}-{uuid.uuid4().hex[:6]}@example.com")
        for name in ("alice", "bob", "owner", "admin", "recruiter", "outsider")
    }


@pytest.fixture(scope="module")
def company(committed_module: psycopg.Connection, people: dict[str, User]) -> Company:
    company = make_company(committed_module, people["owner"])
    add_member(committed_module, company, people["admin"], "admin")
    add_member(committed_module, company, people["recruiter"], "recruiter")
    return company


@pytest.fixture(scope="module")
def committed_module(database) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database.superuser, autocommit=True) as connection:
        yield connection


def storage_error(call) -> StorageApiError:
    with pytest.raises(StorageApiError) as raised:
        call()
    return raised.value


def test_upload_download_and_info_of_an_own_avatar(api_url, people):
    alice = client_for(api_url, people["alice"]).storage.from_("avatars")
    path = f"{people['alice'].id}/me.png"
    uploaded = alice.upload(path, PNG, {"content-type": "image/png", "cache-control": "60"})
    assert uploaded.path == path
    assert uploaded.full_path == f"avatars/{path}"
    assert alice.download(path) == PNG
    info = alice.info(path)
    assert info["size"] == len(PNG)
    assert info["content_type"] == "image/png"
    assert info["cache_control"] == "max-age=60"
    assert alice.exists(path)
    assert not alice.exists(f"{people['alice'].id}/nothing.png")


def test_the_public_url_of_a_public_bucket_needs_no_token(api_url, people):
    alice = client_for(api_url, people["alice"]).storage.from_("avatars")
    path = f"{people['alice'].id}/public.png"
    alice.upload(path, PNG, {"content-type": "image/png"})
    url = alice.get_public_url(path)
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["etag"].startswith('"')
    # ETag revalidation and ranges, as a browser and a media player use them.
    assert httpx.get(url, headers={"if-none-match": response.headers["etag"]}).status_code == 304
    partial = httpx.get(url, headers={"range": "bytes=0-7"})
    assert partial.status_code == 206
    assert partial.content == PNG[:8]
    assert partial.headers["content-range"] == f"bytes 0-7/{len(PNG)}"
    download = httpx.get(alice.get_public_url(path, {"download": "avatar.png"}))
    assert download.headers["content-disposition"].startswith("attachment; filename=avatar.png")


def test_create_refuses_an_existing_object_and_upsert_replaces_it(api_url, people):
    alice = client_for(api_url, people["alice"]).storage.from_("avatars")
    path = f"{people['alice'].id}/twice.png"
    alice.upload(path, PNG, {"content-type": "image/png"})
    error = storage_error(lambda: alice.upload(path, PNG, {"content-type": "image/png"}))
    assert (error.status, error.code) == ("409", "Duplicate")
    assert error.message == "The resource already exists"
    alice.upload(path, PNG + b"2", {"content-type": "image/png", "upsert": "true"})
    assert alice.download(path) == PNG + b"2"
    alice.update(path, PNG + b"3", {"content-type": "image/png"})
    assert alice.download(path) == PNG + b"3"


def test_another_users_folder_is_refused_and_their_object_cannot_be_overwritten(api_url, people):
    alice_id = people["alice"].id
    client_for(api_url, people["alice"]).storage.from_("avatars").upload(
        f"{alice_id}/mine.png", PNG, {"content-type": "image/png"}
    )
    bob = client_for(api_url, people["bob"]).storage.from_("avatars")
    error = storage_error(lambda: bob.upload(f"{alice_id}/bob.png", PNG, {"content-type": "image/png"}))
    assert (error.status, error.code) == ("403", "Unauthorized")
    assert error.message == "new row violates row-level security policy"
    error = storage_error(
        lambda: bob.upload(f"{alice_id}/mine.png", b"evil", {"content-type": "image/png", "upsert": "true"})
    )
    assert error.status == "403"
    assert (
        client_for(api_url, people["alice"]).storage.from_("avatars").download(f"{alice_id}/mine.png") == PNG
    )
    # Nor can bob remove or move it: the delete matches no row he may delete.
    assert bob.remove([f"{alice_id}/mine.png"]) == []
    error = storage_error(lambda: bob.move(f"{alice_id}/mine.png", f"{people['bob'].id}/stolen.png"))
    assert error.status == "404"


def test_anon_may_read_a_public_bucket_but_not_write(api_url, people):
    alice = client_for(api_url, people["alice"]).storage.from_("avatars")
    path = f"{people['alice'].id}/anon-read.png"
    alice.upload(path, PNG, {"content-type": "image/png"})
    anon = client_for(api_url).storage.from_("avatars")
    assert anon.download(path) == PNG
    error = storage_error(
        lambda: anon.upload(f"{people['alice'].id}/anon.png", PNG, {"content-type": "image/png"})
    )
    assert error.status == "403"


def test_company_logos_are_written_by_owners_and_admins_only(api_url, people, company):
    for who in ("owner", "admin"):
        logos = client_for(api_url, people[who]).storage.from_("company-logos")
        logos.upload(f"{company.id}/{who}.png", PNG, {"content-type": "image/png"})
    for who in ("recruiter", "outsider", "alice"):
        logos = client_for(api_url, people[who]).storage.from_("company-logos")
        with pytest.raises(StorageApiError) as refused:
            logos.upload(f"{company.id}/{who}.png", PNG, {"content-type": "image/png"})
        assert refused.value.status == "403", who
    assert client_for(api_url).storage.from_("company-logos").download(f"{company.id}/owner.png") == PNG


def test_list_with_prefix_paging_sort_and_search(api_url, people):
    alice = client_for(api_url, people["alice"]).storage.from_("avatars")
    root = f"{people['alice'].id}/album"
    for name in ("b.png", "a.png", "c.png", "sub/d.png"):
        alice.upload(f"{root}/{name}", PNG, {"content-type": "image/png"})
    listed = alice.list(root)
    # By name, folders and files in one order (Storage's newest search); by a date, folders first.
    assert [entry["name"] for entry in listed] == ["a.png", "b.png", "c.png", "sub"]
    assert listed[3]["id"] is None  # a folder
    assert listed[0]["metadata"]["size"] == len(PNG)
    page = alice.list(root, {"limit": 2, "offset": 1})
    assert [entry["name"] for entry in page] == ["b.png", "c.png"]
    by_date = alice.list(root, {"sortBy": {"column": "created_at", "order": "desc"}})
    assert [entry["name"] for entry in by_date] == ["sub", "c.png", "a.png", "b.png"]
    newest_first = alice.list(root, {"sortBy": {"column": "name", "order": "desc"}})
    assert [entry["name"] for entry in newest_first] == ["sub", "c.png", "b.png", "a.png"]
    assert [entry["name"] for entry in alice.list(root, {"search": "b"})] == ["b.png"]
    # A search that reaches into a folder names what it found relative to the prefix.
    assert [entry["name"] for entry in alice.list(root, {"search": "sub/d"})] == ["sub/d.png"]
    assert [entry["name"] for entry in alice.list(root, {"search": "s"})] == ["sub"]


def test_remove_move_and_copy(api_url, people):
    alice = client_for(api_url, people["alice"]).storage.from_("avatars")
    folder = people["alice"].id
    alice.upload(f"{folder}/move-me.png", PNG, {"content-type": "image/png"})
    alice.move(f"{folder}/move-me.png", f"{folder}/moved.png")
    assert alice.download(f"{folder}/moved.png") == PNG
    assert not alice.exists(f"{folder}/move-me.png")
    alice.copy(f"{folder}/moved.png", f"{folder}/copied.png")
    assert alice.download(f"{folder}/copied.png") == PNG
    removed = alice.remove([f"{folder}/moved.png", f"{folder}/copied.png", f"{folder}/never.png"])
    assert sorted(row["name"] for row in removed) == [f"{folder}/copied.png", f"{folder}/moved.png"]
    assert not alice.exists(f"{folder}/moved.png")


def test_signed_download_urls_are_scoped_and_expire(api_url, people):
    alice = client_for(api_url, people["alice"]).storage.from_("avatars")
    folder = people["alice"].id
    alice.upload(f"{folder}/signed.png", PNG, {"content-type": "image/png"})
    alice.upload(f"{folder}/other.png", PNG + b"other", {"content-type": "image/png"})
    signed = alice.create_signed_url(f"{folder}/signed.png", 60)["signedURL"]
    assert httpx.get(signed).content == PNG
    token = signed.split("token=")[1]
    other = signed.replace("signed.png", "other.png")
    assert httpx.get(other).json()["error"] == "InvalidSignature"
    tampered = signed.replace(token, token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
    assert httpx.get(tampered).json()["error"] == "InvalidJWT"
    many = alice.create_signed_urls([f"{folder}/signed.png", f"{folder}/missing.png"], 60)
    assert many[0]["error"] is None
    assert httpx.get(many[0]["signedURL"]).content == PNG
    assert many[1]["signedURL"] is None
    error = storage_error(lambda: alice.create_signed_url(f"{folder}/missing.png", 60))
    assert error.status == "404"


def test_signed_upload_url(api_url, people):
    alice = client_for(api_url, people["alice"]).storage.from_("avatars")
    path = f"{people['alice'].id}/by-token.png"
    signed = alice.create_signed_upload_url(path)
    client_for(api_url).storage.from_("avatars").upload_to_signed_url(
        path, signed["token"], PNG, {"content-type": "image/png"}
    )
    assert alice.download(path) == PNG
    # The token names one path and one use: another path is refused, and a second upload is a duplicate.
    elsewhere = storage_error(
        lambda: (
            client_for(api_url)
            .storage.from_("avatars")
            .upload_to_signed_url(
                f"{people['alice'].id}/elsewhere.png", signed["token"], PNG, {"content-type": "image/png"}
            )
        )
    )
    assert elsewhere.code == "InvalidSignature"
    bob = client_for(api_url, people["bob"]).storage.from_("avatars")
    assert storage_error(lambda: bob.create_signed_upload_url(path)).status == "403"


def test_limits_and_types_are_the_buckets(api_url, people):
    alice = client_for(api_url, people["alice"]).storage.from_("avatars")
    folder = people["alice"].id
    error = storage_error(lambda: alice.upload(f"{folder}/page.html", b"<p>", {"content-type": "text/html"}))
    assert (error.status, error.code) == ("415", "invalid_mime_type")
    limit = 2 * 1024 * 1024
    alice.upload(f"{folder}/max.png", io.BytesIO(b"x" * limit).read(), {"content-type": "image/png"})
    error = storage_error(
        lambda: alice.upload(f"{folder}/over.png", b"x" * (limit + 1), {"content-type": "image/png"})
    )
    assert (error.status, error.code) == ("413", "Payload too large")
    assert not alice.exists(f"{folder}/over.png")


@pytest.mark.parametrize(
    "name",
    [
        "../escape.png",
        "a/../../escape.png",
        "%2e%2e/escape.png",
        "/etc/passwd",
        "a//b.png",
        "nul\x00.png",
        "tab\t.png",
        "x" * 1025,
        "caf\u00e9.png",
        "cafe\u0301.png",
    ],
)
def test_names_storage_refuses(api_url, people, name):
    # http.client sends the path as given: clients such as httpx and browsers remove dot segments first.
    path = f"{people['alice'].id}/{name}" if not name.startswith("/") else name
    quoted = quote(path, safe="/%")
    connection = http.client.HTTPConnection(api_url.removeprefix("http://"), timeout=30)
    headers = {"authorization": f"Bearer {token_for(people['alice'])}", "content-type": "image/png"}
    connection.request("POST", f"/storage/v1/object/avatars/{quoted}", body=PNG, headers=headers)
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 400, body
    assert body["error"] == "InvalidKey", body


def test_buckets_are_listed_and_managed_by_the_service_role_only(api_url, people):
    service = client_for(api_url, key=SERVICE_KEY).storage
    assert {"avatars", "company-logos"} <= {bucket.id for bucket in service.list_buckets()}
    avatars = service.get_bucket("avatars")
    assert avatars.public is True
    assert avatars.file_size_limit == 2 * 1024 * 1024
    name = f"scratch-{uuid.uuid4().hex[:6]}"
    service.create_bucket(name, options={"public": False, "file_size_limit": "1MB"})
    service.update_bucket(name, options={"public": True, "allowed_mime_types": ["text/*"]})
    assert service.get_bucket(name).allowed_mime_types == ["text/*"]
    service.from_(name).upload("a.txt", b"a", {"content-type": "text/plain"})
    assert storage_error(lambda: service.delete_bucket(name)).status == "409"
    service.empty_bucket(name)
    service.delete_bucket(name)
    assert storage_error(lambda: service.get_bucket(name)).status == "404"
    alice = client_for(api_url, people["alice"]).storage
    assert alice.list_buckets() == []
    assert storage_error(lambda: alice.create_bucket("mine")).status == "403"
    assert storage_error(lambda: alice.delete_bucket("avatars")).status == "404"


def test_list_v2_pages_with_a_cursor_by_name_and_by_date(api_url, people):
    alice = client_for(api_url, people["alice"]).storage.from_("avatars")
    root = f"{people['alice'].id}/v2"
    names = ["c.png", "a.png", "big/1.png", "big/2.png", "big/3.png", "b.png", "small/1.png"]
    for name in names:
        alice.upload(f"{root}/{name}", PNG, {"content-type": "image/png"})
    flat = alice.list_v2({"prefix": f"{root}/", "limit": 3})
    assert [entry.name for entry in flat.objects] == [f"{root}/{n}" for n in ("a.png", "b.png", "big/1.png")]
    assert flat.hasNext
    rest = alice.list_v2({"prefix": f"{root}/", "limit": 10, "cursor": flat.nextCursor})
    assert [entry.name for entry in rest.objects] == [
        f"{root}/{n}" for n in ("big/2.png", "big/3.png", "c.png", "small/1.png")
    ]
    assert not rest.hasNext
    # One level: folders once each, and a page that ends on a folder continues after it.
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        options = {"prefix": f"{root}/", "limit": 2, "with_delimiter": True}
        page = alice.list_v2({**options, **({"cursor": cursor} if cursor else {})})
        seen += [folder.name for folder in page.folders] + [entry.name for entry in page.objects]
        if not page.hasNext:
            break
        cursor = page.nextCursor
    assert sorted(seen) == sorted(f"{root}/{n}" for n in ("a.png", "b.png", "big/", "c.png", "small/"))
    assert len(seen) == len(set(seen))
    # Newest first, two at a time, every object once.
    by_date: list[str] = []
    cursor = None
    for _ in range(10):
        options = {"prefix": f"{root}/", "limit": 2, "sortBy": {"column": "created_at", "order": "desc"}}
        page = alice.list_v2({**options, **({"cursor": cursor} if cursor else {})})
        by_date += [entry.name for entry in page.objects]
        if not page.hasNext:
            break
        cursor = page.nextCursor
    assert by_date == [f"{root}/{n}" for n in reversed(names)]
    error = storage_error(lambda: alice.list_v2({"prefix": "", "cursor": "not a cursor"}))
    assert (error.status, error.code) == ("400", "InvalidParameter")


def test_types_and_cache_controls_that_would_break_a_header_are_refused(api_url, people):
    alice = client_for(api_url, people["alice"]).storage.from_("avatars")
    folder = people["alice"].id
    error = storage_error(
        lambda: alice.upload(
            f"{folder}/crlf.png", PNG, {"content-type": "image/png", "cache-control": "1\r\nX: y"}
        )
    )
    assert (error.status, error.code) == ("400", "InvalidRequest")
    alice.upload(f"{folder}/source.png", PNG, {"content-type": "image/png"})
    token = token_for(people["alice"])
    copied = HTTP.post(
        f"{api_url}/storage/v1/object/copy",
        json={
            "bucketId": "avatars",
            "sourceKey": f"{folder}/source.png",
            "destinationKey": f"{folder}/copy.png",
            "copyMetadata": False,
            "metadata": {"mimetype": "image/png\r\nSet-Cookie: a=b"},
        },
        headers={"authorization": f"Bearer {token}", "apikey": ANON_KEY},
    )
    assert copied.json()["error"] == "InvalidRequest"
    assert not alice.exists(f"{folder}/copy.png")
