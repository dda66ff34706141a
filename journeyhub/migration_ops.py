"""Migration operations the built-in ones do at too high a cost on big tables."""

from django.db import migrations


class AlterForeignKeyNullable(migrations.AlterField):
    """``AlterField`` of a foreign key to ``null=True`` and nothing else.

    On PostgreSQL Django would drop the foreign key constraint, drop NOT NULL and add the
    constraint back, and adding it re-checks every row under a lock that blocks writes to both
    tables: minutes on a delivery log of 100M rows. Dropping NOT NULL alone only changes the
    catalogue. Elsewhere (SQLite rebuilds the table anyway) it is the plain AlterField."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        self._set_null(schema_editor, to_state.apps.get_model(app_label, self.model_name), "DROP")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        self._set_null(schema_editor, to_state.apps.get_model(app_label, self.model_name), "SET")

    def _set_null(self, schema_editor, model, verb: str) -> None:
        table = schema_editor.quote_name(model._meta.db_table)
        column = schema_editor.quote_name(model._meta.get_field(self.name).column)
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} {verb} NOT NULL")
