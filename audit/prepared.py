"""Reads on the hot paths, compiled by the ORM once and then run as plain SQL with new parameters.

Profiling the submission and the commit (bench/README.md, round 8) showed Django building and compiling the
same few queries on every request: a third of a submission's CPU went to ``QuerySet.filter`` and
``SQLCompiler.as_sql`` for four one-row look-ups that PostgreSQL answers in microseconds. Django has no
prepared-query API (its compiler is rebuilt per execution), so this module keeps what the compiler produced:

* the query is written as an ordinary QuerySet, so its SQL, joins and quoting stay Django's, per engine;
* it is compiled once per thread and database alias with *sentinel* values for its parameters; the positions
  of the sentinels in the compiled parameters are where each call's values go (a sentinel that is not found
  exactly once is an error at the first call, never a wrong query);
* the rows go through the compiler's own converters (JSON, datetimes on SQLite, ...) and, for model
  instances, ``Model.from_db`` and ``select_related``'s populators, as ``ModelIterable`` does.

Written here rather than taken from a library: no maintained package caches Django's compiled SQL with
rebindable parameters; the pieces used (``get_compiler``, ``as_sql``, ``get_converters``,
``apply_converters``, ``get_related_populators``) are the ones Django's own iterables use.

Only exact-value parameters are supported (``field=value``); a list (``__in``) or a pattern (``__contains``)
changes the SQL or the value and is refused at compile time.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connections
from django.db.models.query import (  # type: ignore[attr-defined]
    FlatValuesListIterable,
    ModelIterable,
    QuerySet,
    ValuesIterable,
    ValuesListIterable,
    get_related_populators,
)
from django.db.transaction import TransactionManagementError


class Param:
    """The kind of a parameter: its sentinel must have the type the field prepares it as."""

    TEXT = "text"
    INT = "int"
    UUID = "uuid"  # a UUIDField: passed as the engine takes it (a UUID on PostgreSQL, its hex on SQLite)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    constants: tuple[Any, ...]
    slots: tuple[tuple[int, str, bool], ...]  # (position in params, parameter name, as a UUID's hex)
    for_update: bool
    converters: dict[int, Any]
    connection: Any
    shape: str  # "model" | "values" | "values_list" | "flat"
    names: tuple[str, ...]
    model_info: tuple[Any, ...]  # (model, start, end, init_list, populators) for "model"


class PreparedRead:
    """``PreparedRead(build, name=Param.TEXT, ...)``: ``build(**params)`` returns the QuerySet (a slice such as
    ``[:1]`` included); ``rows(**params)`` runs it with the given values and returns what iterating the
    QuerySet would."""

    def __init__(self, build: Callable[..., QuerySet[Any, Any]], **params: str) -> None:
        self._build = build
        self._params = params
        self._local = threading.local()
        self._alias: str | None = None

    def _sentinels(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for i, (name, kind) in enumerate(sorted(self._params.items())):
            if kind == Param.INT:
                values[name] = -7_340_000_000_000 - i
            elif kind == Param.TEXT:
                values[name] = f"\u27e8prepared:{name}:{i}\u27e9"
            elif kind == Param.UUID:
                values[name] = uuid.UUID(int=0x7E57_0000_0000_0000_0000_0000_0000_0000 + i)
            else:
                raise ImproperlyConfigured(f"unknown parameter kind {kind!r}")
        return values

    def _compile(self, alias: str) -> _Compiled:
        sentinels = self._sentinels()
        queryset = self._build(**sentinels)
        if queryset._prefetch_related_lookups or queryset._known_related_objects:  # type: ignore[attr-defined]
            raise ImproperlyConfigured("a prepared read takes no prefetch_related or known related objects")
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        slots: list[tuple[int, str, bool]] = []
        for name, sentinel in sentinels.items():
            found = [(i, False) for i, p in enumerate(params) if type(p) is type(sentinel) and p == sentinel]
            if isinstance(sentinel, uuid.UUID):
                found += [(i, True) for i, p in enumerate(params) if p == sentinel.hex]
            if len(found) != 1:
                raise ImproperlyConfigured(f"parameter {name!r} is not one plain value of the compiled SQL")
            slots.append((found[0][0], name, found[0][1]))
        select = compiler.select
        converters = compiler.get_converters([s[0] for s in select])
        iterable = queryset._iterable_class
        names: tuple[str, ...] = ()
        model_info: tuple[Any, ...] = ()
        if iterable is ModelIterable:
            shape = "model"
            klass_info = compiler.klass_info
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            init_list = [f[0].target.attname for f in select[start:end]]
            populators = get_related_populators(klass_info, select, alias)
            model_info = (klass_info["model"], start, end, init_list, populators)
            if compiler.annotation_col_map:
                raise ImproperlyConfigured("a prepared read of model instances takes no annotations")
        elif iterable is ValuesIterable:
            shape = "values"
            query = queryset.query
            names = tuple(
                query.selected or [*query.extra_select, *query.values_select, *query.annotation_select]
            )
        elif iterable is FlatValuesListIterable:
            shape = "flat"
        elif iterable is ValuesListIterable:
            shape = "values_list"
        else:
            raise ImproperlyConfigured(f"a prepared read cannot return {iterable.__name__}")
        return _Compiled(
            sql=sql,
            constants=tuple(params),
            slots=tuple(slots),
            for_update=bool(
                queryset.query.select_for_update and compiler.connection.features.has_select_for_update
            ),
            converters=converters,
            connection=compiler.connection,
            shape=shape,
            names=names,
            model_info=model_info,
        )

    def _compiled(self, alias: str) -> _Compiled:
        cache: dict[str, _Compiled] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        connection = connections[alias]
        compiled = cache.get(alias)
        # Compiled for this thread's connection object: a new one (tests swap them) compiles again.
        if compiled is None or compiled.connection is not connection:
            compiled = cache[alias] = self._compile(alias)
        return compiled

    def rows(self, using: str | None = None, **values: Any) -> list[Any]:
        if values.keys() != self._params.keys():
            raise TypeError(f"expected parameters {sorted(self._params)}, got {sorted(values)}")
        if using is None:
            if self._alias is None:  # the database the routers pick for the QuerySet, once
                self._alias = self._build(**self._sentinels()).db
            using = self._alias
        compiled = self._compiled(using)
        params = list(compiled.constants)
        for position, name, as_hex in compiled.slots:
            value = values[name]
            if self._params[name] == Param.UUID:
                value = _uuid(value)
                value = value.hex if as_hex else value
            params[position] = value
        connection = connections[using]
        if compiled.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        if compiled.converters:
            fetched = _convert(compiled, fetched, connection)
        if compiled.shape == "flat":
            return [row[0] for row in fetched]
        if compiled.shape == "values_list":
            return [tuple(row) for row in fetched]
        if compiled.shape == "values":
            return [dict(zip(compiled.names, row, strict=True)) for row in fetched]
        model, start, end, init_list, populators = compiled.model_info
        objects = []
        for row in fetched:
            obj = model.from_db(using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            objects.append(obj)
        return objects

    def first(self, using: str | None = None, **values: Any) -> Any:
        found = self.rows(using, **values)
        return found[0] if found else None


def _uuid(value: Any) -> uuid.UUID:
    """What ``UUIDField.to_python`` makes of a value, with its error (a ValidationError, as ``get()`` raises)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(int=value) if isinstance(value, int) else uuid.UUID(str(value))
    except (AttributeError, ValueError):
        raise ValidationError(
            "“%(value)s” is not a valid UUID.", code="invalid", params={"value": value}
        ) from None


def _convert(compiled: _Compiled, rows: list[Any], connection: Any) -> list[Any]:
    converters = compiled.converters
    out = []
    for row in rows:
        row = list(row)
        for pos, (convs, expression) in converters.items():
            value = row[pos]
            for converter in convs:
                value = converter(value, expression, connection)
            row[pos] = value
        out.append(row)
    return out
