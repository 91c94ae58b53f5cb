"""What every ``postgres.*`` action shares: its target, the target's databases, the subject.

The base of ``remediations.postgres.terminate_idle``,
``remediations.postgres.cancel_long_queries`` and ``remediations.postgres.activity``. A new
PostgreSQL action derives its params from :class:`DatabaseParams` and its class from
:class:`PostgresAction`, and so touches only the databases in the target's allow-list
and locks the same subjects (``TARGET/database/NAME``, or ``*`` for all of them).
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from remediations.base import Action, ActionContext, PermanentError, TargetNotAllowed
from remediations.targets import PostgresTarget


def _no_control(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("must not contain control characters")
    return value


PgName = Annotated[str, Field(min_length=1, max_length=63), AfterValidator(_no_control)]
"""A database, role or application name as PostgreSQL stores it (at most 63 bytes)."""


class DatabaseParams(BaseModel):
    """What every action's params hold: at most one database of the target (each says how it uses it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database: PgName | None = Field(
        default=None, description="One database of the target; default: all of them"
    )


P = TypeVar("P", bound=DatabaseParams)


class PostgresAction(Action[P]):
    """What the actions share: the target, the allow-list, the subject."""

    target_kinds = frozenset({"postgres"})

    def check_allowed(self, ctx: ActionContext, params: P) -> None:
        self._databases(ctx, params.database)

    def subject(self, ctx: ActionContext, params: P) -> str:
        return f"{ctx.target_name}/database/{params.database or '*'}"

    def _target(self, ctx: ActionContext) -> PostgresTarget:
        if not isinstance(ctx.target, PostgresTarget):
            raise PermanentError(f"{self.name} needs a postgres target, got {ctx.target_name!r}")
        return ctx.target

    def _databases(self, ctx: ActionContext, database: str | None) -> list[str]:
        """``[database]`` (refused unless the target lists it), or every database of the target."""
        target = self._target(ctx)
        if database is None:
            return list(target.databases)
        if database not in target.databases:
            raise TargetNotAllowed(
                f"database {database!r} is not among the databases of target {ctx.target_name!r} "
                f"({', '.join(target.databases)})"
            )
        return [database]
