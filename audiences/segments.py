"""Segment rules (JSON) compiled into one ORM query. See the grammar in the module docs below."""
