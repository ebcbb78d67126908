"""Writes on the hot paths, compiled by the ORM once per thread and database alias and then run with each
object's values: ``PreparedInsert`` (``save(force_insert=True)``) and ``PreparedUpdate``
(``save(update_fields=...)``). Why, and what is kept of the ORM's work: ``audit.prepared``."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.models import Model, Q


@dataclass(frozen=True)
class _CompiledInsert:
    sql: str
    fields: tuple[Any, ...]
    returning: tuple[Any, ...]
    returning_params: tuple[Any, ...]
    compiler: Any
    connection: Any


class PreparedInsert:
    """``obj.save(force_insert=True)`` for one new row of ``model``, its INSERT compiled once per thread and
    database alias. Each call still runs each field's ``pre_save`` and ``get_db_prep_save`` (defaults,
    ``auto_now``, JSON adaptation), and reads back what the database returns (an auto id) through the
    field's converters; what is skipped is building and compiling the statement. A model with ``pre_save``
    or ``post_save`` receivers or a ``save()`` of its own, with parents, or a value that is an expression
    takes ``save()`` itself."""

    def __init__(self, model: type[Any]) -> None:
        self.model = model
        self._local = threading.local()
        meta = model._meta
        if meta.parents or meta.order_with_respect_to:
            raise ImproperlyConfigured(f"{model.__name__}: a prepared insert takes a model without parents")

    def _compile(self, obj: Any, alias: str, pk_set: bool) -> _CompiledInsert | None:
        from django.db.models.sql import InsertQuery

        meta = self.model._meta
        fields = [
            f for f in meta.local_concrete_fields if not f.generated and (pk_set or f is not meta.auto_field)
        ]
        returning = list(meta.db_returning_fields)
        query = InsertQuery(self.model)
        query.insert_values(fields, [obj])
        compiler = query.get_compiler(using=alias)
        compiler.returning_fields = returning
        value_rows = [[compiler.prepare_value(f, compiler.pre_save_val(f, obj)) for f in fields]]
        placeholders, _ = compiler.assemble_as_sql(fields, value_rows)
        if any(p != "%s" for p in placeholders[0]):
            return None  # a field with a placeholder of its own: save() compiles it every time
        (sql, params), *more = compiler.as_sql()
        returning_params = tuple(getattr(compiler, "returning_params", ()) or ())
        if more or len(params) != len(fields) + len(returning_params):
            return None
        if returning and not compiler.connection.features.can_return_columns_from_insert:
            return None
        return _CompiledInsert(
            sql=sql,
            fields=tuple(fields),
            returning=tuple(returning),
            returning_params=returning_params,
            compiler=compiler,
            connection=compiler.connection,
        )

    def insert(self, obj: Any, using: str | None = None) -> Any:
        from django.db import router
        from django.db.models.signals import post_save, pre_save

        model = self.model
        if type(obj) is not model:
            raise TypeError(f"expected a {model.__name__}, got {type(obj).__name__}")
        alias = using or router.db_for_write(model, instance=obj)
        if pre_save.has_listeners(model) or post_save.has_listeners(model) or model.save is not Model.save:
            obj.save(force_insert=True, using=alias)  # receivers, or a save() of the model's own, run
            return obj
        obj._prepare_related_fields_for_save(operation_name="save")
        meta = model._meta
        if not obj._is_pk_set(meta):
            setattr(obj, meta.pk.attname, meta.pk.get_pk_value_on_save(obj))
        pk_set = obj._is_pk_set(meta)
        cache: dict[tuple[str, bool], _CompiledInsert | None] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        connection = connections[alias]
        key = (alias, pk_set)
        if key not in cache or (cache[key] is not None and cache[key].connection is not connection):  # type: ignore[union-attr]
            cache[key] = self._compile(obj, alias, pk_set)
        compiled = cache[key]
        if compiled is None:
            obj.save(force_insert=True, using=alias)
            return obj
        compiler = compiled.compiler
        values = [compiler.prepare_value(f, compiler.pre_save_val(f, obj)) for f in compiled.fields]
        if any(hasattr(v, "as_sql") for v in values):
            obj.save(force_insert=True, using=alias)  # an expression: its SQL is its own
            return obj
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, [*values, *compiled.returning_params])
            if compiled.returning:
                row = connection.ops.fetch_returned_insert_columns(cursor, compiled.returning_params)
                converted = _convert_insert(compiled, row, connection)
                for value, field in zip(converted, compiled.returning, strict=True):
                    setattr(obj, field.attname, value)
        obj._state.adding = False
        obj._state.db = alias
        return obj


def _convert_insert(compiled: _CompiledInsert, row: Any, connection: Any) -> list[Any]:
    table = compiled.fields[0].model._meta.db_table
    cols = [field.get_col(table) for field in compiled.returning]
    converters = compiled.compiler.get_converters(cols)
    values = list(row)
    for pos, (convs, expression) in converters.items():
        for converter in convs:
            values[pos] = converter(values[pos], expression, connection)
    return values


@dataclass(frozen=True)
class _CompiledUpdate:
    sql: str
    fields: tuple[Any, ...]
    connection: Any


class PreparedUpdate:
    """``obj.save(update_fields=...)`` of an existing row of ``model``, its UPDATE compiled once per thread,
    alias and set of fields: each field's ``pre_save`` (``auto_now``) and ``get_db_prep_save`` still run,
    and a row that is gone raises ``DatabaseError`` as ``save()`` does. A model with ``pre_save`` or
    ``post_save`` receivers or a ``save()`` of its own, or a value that is an expression, takes ``save()``
    itself."""

    def __init__(self, model: type[Any]) -> None:
        self.model = model
        self._local = threading.local()
        if model._meta.parents:
            raise ImproperlyConfigured(f"{model.__name__}: a prepared update takes a model without parents")

    def _compile(
        self, obj: Any, alias: str, fields: tuple[Any, ...], values: list[Any], bound: int
    ) -> _CompiledUpdate | None:
        from django.db.models.sql import UpdateQuery

        if any(not f.concrete or f.primary_key or f.generated for f in fields):
            return None
        query = UpdateQuery(self.model)
        query.add_update_fields([(f, None, v) for f, v in zip(fields, values, strict=True)])
        query.add_q(Q(pk=obj.pk))
        compiler = query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        if sql.count("%s") != bound or len(params) != bound:
            return None  # a field with a placeholder of its own
        return _CompiledUpdate(sql=sql, fields=fields, connection=compiler.connection)

    def save(self, obj: Any, update_fields: list[str] | tuple[str, ...], using: str | None = None) -> None:
        from django.db import DatabaseError, router
        from django.db.models.signals import post_save, pre_save

        model = self.model
        if type(obj) is not model:
            raise TypeError(f"expected a {model.__name__}, got {type(obj).__name__}")
        meta = model._meta
        fields = tuple(dict.fromkeys(meta.get_field(n) for n in update_fields))
        names = [f.name for f in fields]
        obj._prepare_related_fields_for_save(operation_name="save")
        alias = using or obj._state.db or router.db_for_write(model, instance=obj)
        if (
            pre_save.has_listeners(model)
            or post_save.has_listeners(model)
            or model.save is not Model.save  # a save() of the model's own runs
            or obj.pk is None
        ):
            obj.save(update_fields=names, using=alias)
            return
        values = [f.pre_save(obj, False) for f in fields]
        if any(hasattr(v, "resolve_expression") for v in values):
            obj.save(update_fields=names, using=alias)  # an expression: its SQL is its own
            return
        cache: dict[tuple[Any, ...], _CompiledUpdate | None] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        connection = connections[alias]
        # The compiler writes a value that is None once prepared as NULL in the statement: one per pattern.
        prepared = [f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)]
        key = (alias, tuple(names), tuple(p is None for p in prepared))
        if key not in cache or (cache[key] is not None and cache[key].connection is not connection):  # type: ignore[union-attr]
            cache[key] = self._compile(obj, alias, fields, values, sum(p is not None for p in prepared) + 1)
        compiled = cache[key]
        if compiled is None:
            obj.save(update_fields=names, using=alias)
            return
        params = [p for p in prepared if p is not None]
        params.append(meta.pk.get_db_prep_value(obj.pk, connection))
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            if cursor.rowcount != 1:
                raise DatabaseError("Save with update_fields did not affect any rows.")
        obj._state.adding = False
        obj._state.db = alias
