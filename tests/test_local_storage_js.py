"""The local stack's /storage/v1 through supabase-js from npm, the client a frontend uses.

`node --test tests/js/storage.test.mjs` runs the Node tests against the live stack of the `api_url` fixture,
given its URL, keys and users' tokens in the environment; the last test runs supabase-js's browser bundle
in headless Chromium on a page of another origin, so CORS preflights carrying Storage's headers are part
of what passes. supabase-js is the copy pinned in tools/package.json (see tests/js/stack.mjs).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.support import ANON_KEY, User, make_user, run_node_tests, run_page, token_for

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(56))


@pytest.fixture(scope="module")
def people(database) -> Iterator[dict[str, User]]:
    with psycopg.connect(database.superuser, autocommit=True) as connection:
        yield {
            name: make_user(connection, email=f"{name}-{uuid.uuid4().hex[:6]}@example.com")
            for name in ("alice", "bob")
        }


def test_supabase_js_in_node(api_url, people):
    variables = {}
    for name, user in people.items():
        variables[f"{name.upper()}_ID"] = user.id
        variables[f"{name.upper()}_TOKEN"] = token_for(user)
    run_node_tests(api_url, "storage.test.mjs", **variables)


# A real browser ---------------------------------------------------------------------------------------

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>Storage</title>
<script src="/supabase.js"></script>
<script>
const config = __CONFIG__;
// The header names of every request supabase-js makes: those outside CORS's safelist made the browser
// send a preflight asking for them, and the request went out only if the preflight allowed them.
const sent = [];
function recording(input, init = {}) {
  const headers = [...new Headers(init.headers).keys()];
  sent.push({method: init.method || 'GET', url: String(input), headers});
  return fetch(input, init);
}

async function attempt(call) {
  try {
    const {data, error} = await call();
    if (error) return {ok: false, error: `${error.name} ${error.statusCode}: ${error.message}`};
    return {ok: true, value: data};
  } catch (e) {
    return {ok: false, error: `${e.name}: ${e.message}`};
  }
}

const bytesOf = async (blob) => [...new Uint8Array(await blob.arrayBuffer())];

async function run() {
  const client = supabase.createClient(config.api, config.anonKey, {
    accessToken: async () => config.token,
    global: {fetch: recording},
  });
  const avatars = client.storage.from('avatars');
  const bytes = new Uint8Array(config.png);
  const face = `${config.folder}/face.png`, raw = `${config.folder}/raw.png`;
  const options = {upsert: true, cacheControl: '60'};
  const steps = {
    // A File goes up as multipart (its cacheControl and metadata are form fields); the upsert is x-upsert.
    uploadFile: () => avatars.upload(face, new File([bytes], 'face.png', {type: 'image/png'}),
      {...options, metadata: {from: 'file'}}),
    // Bytes go up raw: x-upsert, x-metadata, cache-control and content-type are headers.
    uploadBytes: () => avatars.upload(raw, bytes,
      {...options, contentType: 'image/png', metadata: {from: 'bytes'}}),
    list: () => avatars.list(config.folder),
    downloadFile: async () => {
      const {data, error} = await avatars.download(face);
      return {data: data && {type: data.type, bytes: await bytesOf(data)}, error};
    },
    downloadBytes: async () => {
      const {data, error} = await avatars.download(raw);
      return {data: data && {type: data.type, bytes: await bytesOf(data)}, error};
    },
    infoFile: () => avatars.info(face),
    infoBytes: () => avatars.info(raw),
    remove: () => avatars.remove([face, raw]),
    listAfter: () => avatars.list(config.folder),
  };
  const results = {};
  for (const [name, step] of Object.entries(steps)) results[name] = await attempt(step);
  return {results, sent};
}

run()
  .catch((e) => ({fatal: String(e)}))
  .then((report) => fetch('/results', {method: 'POST', body: JSON.stringify(report)}));
</script>
"""


def test_supabase_js_storage_in_a_browser_on_another_origin(api_url, people):
    alice = people["alice"]
    folder = f"{alice.id}/browser-{uuid.uuid4().hex[:8]}"
    config = {
        "api": api_url,
        "anonKey": ANON_KEY,
        "token": token_for(alice),
        "folder": folder,
        "png": list(PNG),
    }
    report = run_page(PAGE.replace("__CONFIG__", json.dumps(config)))
    results = report.get("results")
    assert results is not None, report
    assert {name: outcome["ok"] for name, outcome in results.items()} == dict.fromkeys(results, True), results
    value = {name: outcome["value"] for name, outcome in results.items()}

    assert value["uploadFile"]["fullPath"] == f"avatars/{folder}/face.png"
    assert value["uploadBytes"]["fullPath"] == f"avatars/{folder}/raw.png"
    assert [entry["name"] for entry in value["list"]] == ["face.png", "raw.png"]
    for name in ("downloadFile", "downloadBytes"):
        assert value[name] == {"type": "image/png", "bytes": list(PNG)}, name
    for name, origin in (("infoFile", "file"), ("infoBytes", "bytes")):
        info = value[name]
        assert (info["contentType"], info["cacheControl"], info["size"]) == (
            "image/png",
            "max-age=60",
            len(PNG),
        )
        assert info["metadata"] == {"from": origin}, name
    assert sorted(entry["name"] for entry in value["remove"]) == [f"{folder}/face.png", f"{folder}/raw.png"]
    assert value["listAfter"] == []

    # What made those calls need a preflight that allowed Storage's own headers.
    uploads = [
        request
        for request in report["sent"]
        if request["method"] == "POST" and "/object/avatars/" in request["url"]
    ]
    assert len(uploads) == 2, report["sent"]
    file_upload, bytes_upload = (set(request["headers"]) for request in uploads)
    assert {"x-upsert", "authorization", "apikey"} <= file_upload
    assert {"x-upsert", "x-metadata", "cache-control", "content-type"} <= bytes_upload
