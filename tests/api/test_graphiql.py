"""The GraphiQL page works offline: every asset comes from the package, over the API's
own origin, under a CSP that allows no other; a real headless Chromium renders it, runs
a query with a pasted key, and keeps the key out of the browser's storage."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from idgraph.api.graphiql import ASSETS, MEDIA_TYPES
from idgraph.config import Settings
from idgraph.store.port import Store
from tests.api.conftest import Api, open_api
from tests.api.live import live_server

BROWSER = Path(__file__).parent / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
HTML = {"Accept": "text/html"}
URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.fixture
async def ide(settings: Settings, store: Store) -> AsyncIterator[Api]:
    api = dataclasses.replace(settings.api, graphiql=True)
    async for opened in open_api(dataclasses.replace(settings, api=api), store):
        yield opened


async def test_the_page_references_only_its_own_origin(ide: Api) -> None:
    response = await ide.client.get("/graphql", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "//" not in response.text.replace("<!doctype html>", "")
    references = URL.findall(response.text)
    assert references
    assert all(ref.startswith("/graphiql/") for ref in references), references
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "http" not in csp
    assert "*" not in csp


async def test_every_asset_is_served_with_its_content_type_and_the_csp(ide: Api) -> None:
    page = (await ide.client.get("/graphql", headers=HTML)).text
    for reference in URL.findall(page):
        response = await ide.client.get(reference)
        assert response.status_code == 200, reference
        kind = "text/css" if reference.endswith(".css") else "text/javascript"
        assert response.headers["content-type"] == f"{kind}; charset=utf-8"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in response.headers["content-security-policy"]
    assert (await ide.client.get("/graphiql/LICENSE.react")).status_code == 404
    assert (await ide.client.get("/graphiql/../app.py")).status_code == 404


async def test_no_page_and_no_assets_when_graphiql_is_off(api: Api) -> None:
    assert (await api.client.get("/graphiql/graphiql.min.js")).status_code == 404
    assert (await api.client.get("/graphql", headers=HTML)).status_code != 200


def test_the_vendored_files_are_those_the_script_fetched() -> None:
    for line in (ASSETS / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name
    assert set(MEDIA_TYPES) <= {p.name for p in ASSETS.iterdir()}


@pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and shutil.which("npm")),
    reason=f"needs a Chromium at {CHROMIUM} (set CHROMIUM; Debian: apt install chromium) and npm",
)
def test_a_headless_chromium_renders_the_page_and_runs_a_query(tmp_path: Path) -> None:
    driver = tmp_path / "browser"
    shutil.copytree(BROWSER, driver)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent"],
        cwd=driver,
        check=True,
        timeout=300,
    )
    with live_server(tmp_path) as server:  # --demo: GraphiQL on
        ran = subprocess.run(
            ["node", "graphiql.mjs", f"{server.base}/graphql", CHROMIUM],
            cwd=driver,
            env={**os.environ, "IDGRAPH_KEY": server.keys["IDGRAPH_KEY"]},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ran.returncode == 0, ran.stderr
        key = server.keys["IDGRAPH_KEY"]
    report = json.loads(ran.stdout)
    assert report["rendered"]
    assert report["external"] == []
    # The schema is fetched as the page loads, before a key is pasted: HTTP 401.
    # Anything else (a script error, a CSP violation) fails the test.
    assert [e for e in report["errors"] if "status of 401" not in e] == []
    assert '"__typename": "Query"' in report["result"]
    assert key not in report["storage"]
    assert "idg_persisted_before" not in report["storage"]
    assert key not in report["editorsAfterReload"]
    assert report["assets"]["/graphiql/graphiql.min.js"] == "text/javascript; charset=utf-8"
