"""Fixtures: one embedded cluster per run, a migrated template database cloned per test module.

The controlling pytest process (xdist's, or the only one) starts the cluster and builds the template in
`pytest_configure`; workers inherit its address through the environment. Each module gets a clone
(`create database ... template ...`, tens of milliseconds); each test that needs no commit gets one
connection inside a transaction that is rolled back.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from psycopg import sql

from rpc.local.embedded import bootstrap, recreate_database
from rpc.platform import db as platform_db
from rpc.platform.ai import AI
from rpc.platform.migrations import Runner
from rpc.platform.settings import Settings, with_database, with_login

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from rpc.local.embedded import SUPERUSER, SUPERUSER_PASSWORD, EmbeddedPostgres

from tests.ai_server import AIServer
from tests.support import free_port, live_server, value

TEMPLATE = "tb_template"
ENV_CLUSTER = "TALENTBASE_TEST_CLUSTER"  # "<host>:<port>" of the run's cluster, set by the controller


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if not _is_controller(config) or os.environ.get(ENV_CLUSTER):
        return
    root = Path(tempfile.mkdtemp(prefix="talentbase-tests-"))
    cluster = EmbeddedPostgres(root, port=free_port())
    cluster.start()
    config._talentbase_cluster = (cluster, root)  # type: ignore[attr-defined]
    os.environ[ENV_CLUSTER] = f"{cluster.host}:{cluster.port}"
    superuser = cluster.dsn()
    bootstrap(superuser)  # the cluster's roles, which the template's owner needs
    recreate_database(superuser, TEMPLATE)
    template = with_database(superuser, TEMPLATE)
    bootstrap(template)
    Runner(with_login(template, "postgres", "postgres")).push()


def pytest_unconfigure(config: pytest.Config) -> None:
    started = getattr(config, "_talentbase_cluster", None)
    if started is not None:
        cluster, root = started
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Database:
    """One database of the test cluster, with the DSNs of the roles that matter."""

    name: str
    superuser: str  # supabase_admin: factories (as GoTrue and the dashboard would write)
    admin: str  # postgres: what migrations and the worker use
    authenticator: str  # what PostgREST and our request pool log in as

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": self.admin,
            "api_database_url": self.authenticator,
            "run_worker": False,
            "log_json": False,
            # Object bytes of this database's local Storage API, never the developer's .data/storage.
            "storage_dir": Path(tempfile.gettempdir()) / f"talentbase-storage-{self.name}",
            "db_pool_max": 4,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]


def cluster_dsn(database: str = "postgres", user: str = SUPERUSER, password: str = SUPERUSER_PASSWORD) -> str:
    return f"postgresql://{user}:{password}@{os.environ[ENV_CLUSTER]}/{database}"


def value_in(database: str, query: LiteralString, params: Any = None) -> Any:
    """The first column of the first row of `query` in a database of the test cluster."""
    with psycopg.connect(cluster_dsn(database)) as conn:
        return value(conn, query, params)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A new database brought to Supabase's shape (bootstrap) with none of our migrations; yields its name."""
    name = f"tb_fresh_{uuid.uuid4().hex[:10]}"
    recreate_database(cluster_dsn(), name)
    assert bootstrap(cluster_dsn(name)) is True
    yield name
    drop_database(name)


def clone_database(name: str, template: str = TEMPLATE) -> Database:
    with psycopg.connect(cluster_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("create database {} template {} owner postgres").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return Database(
        name,
        cluster_dsn(name),
        cluster_dsn(name, "postgres", "postgres"),
        cluster_dsn(name, "authenticator", "postgres"),
    )


def drop_database(name: str) -> None:
    with psycopg.connect(cluster_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    shutil.rmtree(Path(tempfile.gettempdir()) / f"talentbase-storage-{name}", ignore_errors=True)


@pytest.fixture
async def admin(database: Database) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """The worker's connection: it logs in as `postgres`."""
    async with await psycopg.AsyncConnection.connect(database.admin, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def ai() -> Iterator[AIServer]:
    """The local OpenAI-compatible server (tests/ai_server.py) on a port of its own, one per module."""
    server = AIServer()
    with live_server(server.app()) as url:
        server.url = f"{url}/v1"
        yield server


@pytest.fixture
async def new_ai() -> AsyncIterator[Callable[..., AI]]:
    """`new_ai(settings, db=None)`: an AI layer, closed after the test as the app and the worker close theirs."""
    made: list[AI] = []

    def new(settings: Settings, db: platform_db.Database | None = None) -> AI:
        made.append(ai := AI(settings, db))
        return ai

    yield new
    for ai in made:
        await ai.close()


@pytest.fixture(scope="module")
def database() -> Iterator[Database]:
    """A migrated database of this module's own, dropped afterwards."""
    db = clone_database(f"tb_{uuid.uuid4().hex[:12]}")
    yield db
    drop_database(db.name)


@pytest.fixture
def conn(database: Database) -> Iterator[psycopg.Connection]:
    """The test's connection as the superuser, in one transaction that is rolled back."""
    with psycopg.connect(database.superuser) as connection:
        yield connection
        connection.rollback()


@pytest.fixture(scope="module")
def module_conn(database: Database) -> Iterator[psycopg.Connection]:
    """One superuser connection for a module, in one transaction that is never committed: a world built on
    it once is shared by the module's tests, each in a savepoint of its own (see `conn` in test_matching)."""
    with psycopg.connect(database.superuser) as connection:
        yield connection
        connection.rollback()


@pytest.fixture
def committed(database: Database) -> Iterator[psycopg.Connection]:
    """An autocommit superuser connection, for data that the app or PostgREST must see."""
    with psycopg.connect(database.superuser, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def app(database: Database) -> Litestar:
    from app import create_app

    return create_app(database.settings())


@pytest.fixture(scope="module")
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def api_url(database: Database) -> Iterator[str]:
    """The whole local stack on this module's database, as a frontend meets it: the app under uvicorn on
    127.0.0.1 with real PostgREST behind `/rest/v1`, Auth at `/auth/v1`, Storage at `/storage/v1` and the
    functions at `/functions/v1`."""
    from app import create_app
    from rpc.local.rest import HOW_TO_GET_IT, find_postgrest

    settings = database.settings(rest_api=True, storage_api=True, auth_api=True)
    if find_postgrest(settings) is None:
        pytest.skip(HOW_TO_GET_IT)
    with live_server(create_app(settings)) as url:
        yield url
