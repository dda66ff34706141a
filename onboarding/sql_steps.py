"""What the merges (onboarding.merge, onboarding.merge_events) share: statements written with
``{NAME}`` for table names, run on the current connection inside the caller's transaction, and
the few spellings where PostgreSQL and SQLite differ."""

from django.db import connection


class SqlSteps:
    names: dict[str, str] = {}  # {NAME} in a statement -> its table

    def __init__(self, *, now):
        self.now = now
        self.pg = connection.vendor == "postgresql"

    def sql(self, statement: str, params=()) -> int:
        """Run one statement; how many rows it touched."""
        with connection.cursor() as cursor:
            cursor.execute(statement.format(**self.names), params)
            return cursor.rowcount

    def rows(self, statement: str, params=()) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(statement.format(**self.names), params)
            return cursor.fetchall()

    def elements(self, column: str) -> str:
        """A table of a JSON array's text elements, as ``j.value``."""
        function = "jsonb_array_elements_text" if self.pg else "json_each"
        return f"{function}({column}) AS j"

    def differs(self, a: str, b: str) -> str:
        return f"{a} IS DISTINCT FROM {b}" if self.pg else f"{a} IS NOT {b}"
