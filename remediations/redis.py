"""Redis actions: ``redis.diagnose`` (read-only evidence) and ``redis.flushdb`` (one logical DB).

Run by ``receiver.flow.workers`` against a :class:`~remediations.targets.RedisTarget`. Each
call opens one connection (redis.asyncio) with socket timeouts and closes it. The
logical DB is always the action's ``db`` param, checked against the target's ``dbs``
allow-list after templating; a DB number in the target's URL is overridden, never used,
so the URL cannot steer a flush elsewhere. ``FLUSHALL`` is never sent. redis-py is
imported on first use, so start-up and ``rules lint`` do not pay for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from remediations.base import (
    Action,
    ActionContext,
    PermanentError,
    Plan,
    RemediationError,
    Result,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.targets import RedisTarget

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis import exceptions as rex

_TIMEOUT = 5.0  # seconds, connect and each reply


def _not_bool(value: object) -> object:
    if isinstance(value, bool):  # YAML's `db: yes` must not quietly mean db 1
        raise ValueError("a db number, not a boolean")
    return value


DbNumber = Annotated[int, Field(ge=0, le=65535), BeforeValidator(_not_bool)]
"""A logical DB number; a templated "3" renders to 3."""


class DiagnoseParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    db: DbNumber = Field(default=0, description="Logical DB to read DBSIZE of (in the target's dbs)")


class FlushDbParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    db: DbNumber = Field(description="The one logical DB to flush (must be in the target's dbs)")


def _classify(exc: rex.RedisError, what: str) -> RemediationError:
    from redis import exceptions as rex  # noqa: PLC0415 - loaded by the client that failed

    message = f"{what}: {exc.__class__.__name__}: {exc}"
    if isinstance(exc, rex.AuthenticationError | rex.AuthorizationError):
        return PermanentError(message)  # both derive from ConnectionError, which is retried
    # Worth a retry: unreachable, slow, loading (a ConnectionError), failing over, briefly unwilling.
    if isinstance(exc, rex.ConnectionError | rex.TimeoutError | rex.ReadOnlyError | rex.TryAgainError
                  | rex.ClusterDownError):
        return TemporaryError(message)
    return PermanentError(message)  # NOPERM, DB index out of range, unknown command, ...


class _RedisAction:
    """What both actions share: the target, the allow-list, the connection."""

    name: ClassVar[str]

    def _target(self, ctx: ActionContext) -> RedisTarget:
        if not isinstance(ctx.target, RedisTarget):
            raise PermanentError(f"{self.name} needs a redis target, got {ctx.target_name!r}")
        return ctx.target

    def _check_db(self, ctx: ActionContext, db: int) -> None:
        target = self._target(ctx)
        if db not in target.dbs:
            allowed = ", ".join(map(str, target.dbs))
            raise TargetNotAllowed(f"db {db} is not among the dbs of target {ctx.target_name!r} ({allowed})")

    def _subject(self, ctx: ActionContext, db: int) -> str:
        return f"{ctx.target_name}/db/{db}"

    @asynccontextmanager
    async def _connect(self, ctx: ActionContext, db: int) -> AsyncIterator[aioredis.Redis]:
        """One connection to logical DB ``db``; redis errors inside come out classified."""
        import redis.asyncio as aioredis  # noqa: PLC0415 - redis-py is imported on first use
        from redis import exceptions as rex  # noqa: PLC0415
        from redis.asyncio.retry import Retry  # noqa: PLC0415
        from redis.backoff import NoBackoff  # noqa: PLC0415

        self._check_db(ctx, db)
        try:
            client = aioredis.from_url(
                self._target(ctx).url.reveal(), single_connection_client=True, decode_responses=True,
                socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT, retry=Retry(NoBackoff(), 0),
            )
        except ValueError:  # the message may quote the URL, password and all
            raise PermanentError(
                f"{self.name}: the url of target {ctx.target_name!r} is not a redis://, rediss:// "
                "or unix:// URL redis-py can parse"
            ) from None
        # from_url lets a /N path or ?db=N in the URL win over a db argument: set it here.
        client.connection_pool.connection_kwargs["db"] = db
        try:
            yield client
        except rex.RedisError as exc:
            raise _classify(exc, f"{self.name} on {ctx.target_name} db {db}") from None
        finally:
            await client.aclose()


class RedisDiagnose(_RedisAction, Action[DiagnoseParams]):
    """Read-only evidence: memory, evictions, fragmentation, DBSIZE, clients."""

    name = "redis.diagnose"
    description = "INFO memory and stats, DBSIZE of one logical DB, connected and blocked clients"
    params_model = DiagnoseParams
    read_only = True
    target_kinds = frozenset({"redis"})
    timeout = 15.0
    permissions = ("ACL +info +dbsize +select",)

    def check_allowed(self, ctx: ActionContext, params: DiagnoseParams) -> None:
        self._check_db(ctx, params.db)

    def subject(self, ctx: ActionContext, params: DiagnoseParams) -> str:
        return self._subject(ctx, params.db)

    async def plan(self, ctx: ActionContext, params: DiagnoseParams) -> Plan:
        self._check_db(ctx, params.db)
        return Plan(
            action=self.name, target=ctx.target_name, destructive=False,
            steps=("INFO memory, INFO stats, INFO clients", f"DBSIZE of db {params.db}"),
            details={"db": params.db},
        )

    async def execute(self, ctx: ActionContext, params: DiagnoseParams, plan: Plan) -> Result:
        async with self._connect(ctx, params.db) as client:
            memory: dict[str, Any] = await client.info("memory")
            stats: dict[str, Any] = await client.info("stats")
            clients: dict[str, Any] = await client.info("clients")
            keys = int(await client.dbsize())
        details = {
            "db": params.db,
            "dbsize": keys,
            "used_memory": memory.get("used_memory"),
            "used_memory_human": memory.get("used_memory_human"),
            "maxmemory": memory.get("maxmemory"),
            "maxmemory_human": memory.get("maxmemory_human"),
            "maxmemory_policy": memory.get("maxmemory_policy"),
            "mem_fragmentation_ratio": memory.get("mem_fragmentation_ratio"),
            "evicted_keys": stats.get("evicted_keys"),
            "connected_clients": clients.get("connected_clients"),
            "blocked_clients": clients.get("blocked_clients"),
        }
        limit = details["maxmemory_human"] if details["maxmemory"] else "no maxmemory"
        return Result(
            summary=(f"db {params.db}: {keys} keys; memory {details['used_memory_human']} of {limit}, "
                     f"fragmentation {details['mem_fragmentation_ratio']}, "
                     f"{details['evicted_keys']} evicted; {details['connected_clients']} clients, "
                     f"{details['blocked_clients']} blocked"),
            details=details,
        )


class RedisFlushDb(_RedisAction, Action[FlushDbParams]):
    """Delete every key of one logical DB (FLUSHDB ASYNC); always asks a human first."""

    name = "redis.flushdb"
    description = "FLUSHDB of one logical DB (never FLUSHALL); approval always"
    params_model = FlushDbParams
    destructive = True
    approval_always = True
    target_kinds = frozenset({"redis"})
    timeout = 30.0
    permissions = ("ACL +flushdb +dbsize +select",)

    def check_allowed(self, ctx: ActionContext, params: FlushDbParams) -> None:
        self._check_db(ctx, params.db)

    def subject(self, ctx: ActionContext, params: FlushDbParams) -> str:
        return self._subject(ctx, params.db)

    async def plan(self, ctx: ActionContext, params: FlushDbParams) -> Plan:
        async with self._connect(ctx, params.db) as client:
            keys = int(await client.dbsize())
        return Plan(
            action=self.name, target=ctx.target_name, destructive=True,
            steps=(f"FLUSHDB ASYNC of db {params.db} on {ctx.target_name}: deletes all {keys} keys "
                   "it holds now (the other dbs are untouched)",),
            details={"db": params.db, "dbsize": keys},
        )

    async def execute(self, ctx: ActionContext, params: FlushDbParams, plan: Plan) -> Result:
        async with self._connect(ctx, params.db) as client:
            before = int(await client.dbsize())
            # ASYNC: the keys go at once, their memory is freed in the background, so a big
            # DB does not stall the server.
            await client.flushdb(asynchronous=True)
            after = int(await client.dbsize())
        return Result(
            summary=f"flushed db {params.db}: {before} keys before, {after} after",
            details={"db": params.db, "dbsize_before": before, "dbsize_after": after},
        )
