"""The local stack's /storage/v1 through supabase-js from npm, the client a frontend uses.

`node --test tests/js/` runs the Node tests against the live stack of the `api_url` fixture, given its URL,
keys and users' tokens in the environment; the last test runs supabase-js's browser bundle in headless
Chromium on a page of another origin, so CORS preflights carrying Storage's headers are part of what passes.
supabase-js is the copy pinned in tools/package.json (see tests/js/stack.mjs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support import ANON_KEY, SERVICE_KEY, User, make_user, run_page, token_for

ROOT = Path(__file__).resolve().parents[1]
NODE_TESTS = ROOT / "tests/js"
SUPABASE_JS = ROOT / "tools/node_modules/@supabase/supabase-js/package.json"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(56))


@pytest.fixture(scope="module")
def people(database) -> Iterator[dict[str, User]]:
    with psycopg.connect(database.superuser, autocommit=True) as connection:
        yield {
            name: make_user(connection, email=f"{name}-{uuid.uuid4().hex[:6]}@example.com")
            for name in ("alice", "bob")
        }


def node() -> list[str]:
    """The command that runs node, or a skip saying how to install what is missing."""
    found = shutil.which("node")
    if found is None:
        pytest.skip(
            "node is not installed (Debian: apt-get install npm, which brings it; .ci/run installs it)"
        )
    if not SUPABASE_JS.exists():
        pytest.skip("supabase-js is not installed: run `make install` (npm ci --prefix tools)")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, check=True).stdout
    major = int(version.strip().lstrip("v").split(".")[0])
    if major < 20:
        # Present but too old is a broken setup, not a missing part: fail, so CI cannot pass without these.
        pytest.fail(f"node {version.strip()} is too old for supabase-js 2 (it declares >= 22; 20 works)")
    # createClient makes a realtime client, which needs a WebSocket: built into Node 22, behind a flag in 20.
    return [found, "--experimental-websocket"] if major < 22 else [found]


def test_supabase_js_in_node(api_url, people):
    env = {
        **os.environ,
        "API_URL": api_url,
        "ANON_KEY": ANON_KEY,
        "SERVICE_KEY": SERVICE_KEY,
        "NO_COLOR": "1",
    }
    for name, user in people.items():
        env[f"{name.upper()}_ID"] = user.id
        env[f"{name.upper()}_TOKEN"] = token_for(user)
    result = subprocess.run(
        [*node(), "--test", "--test-reporter=spec", str(NODE_TESTS)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"node --test tests/js/ failed (exit {result.returncode}):\n{output}", pytrace=False)
    # A run that found no test file passes too: every test the files declare must have run and passed.
    declared = sum(
        len(re.findall(r"^test\(", path.read_text(), re.MULTILINE)) for path in NODE_TESTS.glob("*.test.mjs")
    )
    passed = re.search(r"^\S+ pass (\d+)$", output, re.MULTILINE)  # the spec reporter's summary
    assert passed is not None, output
    assert int(passed.group(1)) == declared > 0, output


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
