"""SQL for segment rules that the ORM does not write: EXISTS over a grouped query, and tests on
one key of a JSON column for PostgreSQL (jsonb) and SQLite (JSON1). Used by audiences.segments."""

import json

from django.db import NotSupportedError
from django.db.models import BooleanField, Expression, F

# --- SQL the ORM does not write ---------------------------------------------------------------

class ExistsAmong(Expression):
    """EXISTS (SELECT 1 FROM (<queryset>) AS among WHERE among.<column> = <customer's pk>).

    For a grouped queryset (GROUP BY customer HAVING ...). Correlating the grouped query itself
    makes PostgreSQL run it once per customer (a million index probes); over a derived table it
    plans a hash semi-join (anti-join under NOT) that groups the events once."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, queryset, column: str):
        super().__init__()
        self.query, self.column, self.outer = queryset.query, column, F("pk")

    def get_source_expressions(self):
        return [self.outer]

    def set_source_expressions(self, exprs):
        (self.outer,) = exprs

    def as_sql(self, compiler, connection):
        inner_sql, inner_params = self.query.get_compiler(connection=connection).as_sql()
        outer_sql, outer_params = compiler.compile(self.outer)
        column = connection.ops.quote_name(self.column)
        sql = f"EXISTS (SELECT 1 FROM ({inner_sql}) AS among WHERE among.{column} = {outer_sql})"
        return sql, (*inner_params, *outer_params)


# --- JSON key tests in SQL ----------------------------------------------------------------------

class JSONKeyTest(Expression):
    """A test on one top-level key of a JSON column that is never SQL NULL, for PostgreSQL
    (jsonb) and SQLite (JSON1). A comparison matches only a stored value of the same JSON type
    as ``value``: numbers compare as numbers (9 < 10), "10" is not a number, true is not 1.

    ops: has, eq, lt, gt, lte, gte, text_has (case-insensitive substring of a string),
    list_has (a list holding an element equal to ``value``)."""

    output_field = BooleanField()
    conditional = True
    COMPARE = {"eq": "=", "lt": "<", "gt": ">", "lte": "<=", "gte": ">="}
    PG_TYPES = {"number": "number", "string": "string", "boolean": "boolean"}
    SQLITE_TYPES = {"number": "'integer', 'real'", "string": "'text'", "boolean": "'true', 'false'"}

    def __init__(self, column: str, key: str, op: str, value=None):
        super().__init__()
        self.source, self.key, self.op, self.value = F(column), key, op, value

    def get_source_expressions(self):
        return [self.source]

    def set_source_expressions(self, exprs):
        (self.source,) = exprs

    @property
    def value_type(self) -> str:
        if isinstance(self.value, bool):
            return "boolean"
        return "string" if isinstance(self.value, str) else "number"

    def _column(self, compiler) -> str:
        sql, params = compiler.compile(self.source)
        if params:  # always a plain column here; its SQL is repeated below
            raise NotSupportedError("JSONKeyTest takes a column, not an expression.")
        return sql

    def as_sql(self, compiler, connection):
        raise NotSupportedError("Segment rules on JSON run on PostgreSQL and SQLite only.")

    def as_postgresql(self, compiler, connection):
        col, key = self._column(compiler), self.key
        typed = f"COALESCE(jsonb_typeof({col} -> %s), '') = %s"
        if self.op == "has":
            return f"({col} ? %s)", [key]
        if self.op == "text_has":
            return f"({typed} AND ({col} ->> %s) ILIKE %s)", [key, "string", key, _like(self.value)]
        if self.op == "list_has":
            return f"({typed} AND ({col} -> %s) @> %s::jsonb)", [key, "array", key,
                                                                  json.dumps([self.value])]
        sql = f"({typed} AND ({col} -> %s) {self.COMPARE[self.op]} %s::jsonb)"
        return sql, [key, self.PG_TYPES[self.value_type], key, json.dumps(self.value)]

    def as_sqlite(self, compiler, connection):
        col, path = self._column(compiler), "$." + json.dumps(self.key)
        if self.op == "has":
            return f"(json_type({col}, %s) IS NOT NULL)", [path]
        typed = f"COALESCE(json_type({col}, %s), '')"
        if self.op == "text_has":
            sql = f"({typed} = 'text' AND json_extract({col}, %s) LIKE %s ESCAPE '\\')"
            return sql, [path, path, _like(self.value)]
        types = self.SQLITE_TYPES[self.value_type]
        if self.op == "list_has":
            item = f"SELECT 1 FROM json_each({col}, %s) AS item WHERE item.type IN ({types})"
            return f"({typed} = 'array' AND EXISTS ({item} AND item.value = %s))", [
                path, path, self.value]
        sql = f"({typed} IN ({types}) AND json_extract({col}, %s) {self.COMPARE[self.op]} %s)"
        return sql, [path, path, self.value]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
