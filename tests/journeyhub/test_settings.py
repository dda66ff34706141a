"""Settings come from the environment and fail loudly on bad values; production passes
``check --deploy`` with the variables the README documents."""

import json
import os
import secrets
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from journeyhub.env import database_from_url, env_bool

BASE_DIR = Path(settings.BASE_DIR)
MANAGE_TIMEOUT_SECONDS = 120

# Prints the environment variables that settings.py (and the env.py readers it calls) read.
ENV_SPY = """
import json, os, sys
import journeyhub  # the Celery app reads variables of its own: not ours to document
read = set()
OURS = ("journeyhub/settings.py", "journeyhub/env.py")

class Spy(dict):
    def _note(self, name):
        if sys._getframe(2).f_code.co_filename.endswith(OURS):
            read.add(name)
    def __getitem__(self, name):
        self._note(name)
        return super().__getitem__(name)
    def get(self, name, default=None):
        self._note(name)
        return super().get(name, default)
    def __contains__(self, name):
        self._note(name)
        return super().__contains__(name)

os.environ = Spy(os.environ)
import journeyhub.settings
print(json.dumps(sorted(read)))
"""


@cache
def settings_variables() -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", ENV_SPY], cwd=BASE_DIR, capture_output=True, text=True,
        timeout=MANAGE_TIMEOUT_SECONDS, check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def production_env(tmp_path: Path) -> dict[str, str]:
    """The production variables of the README's checklist (the services are not contacted)."""
    return {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "journeyhub.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://journeyhub.example.com",
        "DATABASE_URL": "postgres://journeyhub:secret@db.example.com:5432/journeyhub",
        "CELERY_BROKER_URL": "redis://cache.example.com:6379/0",
        "CACHE_URL": "redis://cache.example.com:6379/1",
        "SECURE_PROXY_SSL_HEADER_NAME": "HTTP_X_FORWARDED_PROTO",
        "JOURNEYHUB_VAR_DIR": str(tmp_path),
    }


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run manage.py with exactly the given configuration: none of ours leaks in from outside."""
    clean = {k: v for k, v in os.environ.items() if k not in settings_variables()}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env={**clean, **env},
        capture_output=True, text=True, timeout=MANAGE_TIMEOUT_SECONDS,
    )


def test_check_deploy_passes_with_the_documented_production_variables(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_debug_off_without_secret_key_refuses_to_start(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_unsupported_database_url_scheme_is_named_in_the_error(tmp_path):
    env = {"DATABASE_URL": "mysql://journeyhub@db.example.com/journeyhub",
           "JOURNEYHUB_VAR_DIR": str(tmp_path)}

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DATABASE_URL scheme 'mysql' is not supported" in result.stderr


def test_a_boolean_that_is_not_one_is_named_in_the_error(tmp_path):
    result = manage("check", env={"DEBUG": "maybe", "JOURNEYHUB_VAR_DIR": str(tmp_path)})

    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_env_bool_reads_the_usual_words(monkeypatch):
    for word, expected in [("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False)]:
        monkeypatch.setenv("JH_FLAG", word)
        assert env_bool("JH_FLAG", not expected) is expected
    monkeypatch.delenv("JH_FLAG")
    assert env_bool("JH_FLAG", True) is True


def test_postgres_url_gives_every_connection_detail():
    url = "postgres://jh:p%40ss%2Fword@db.example.com:6432/journeyhub?sslmode=require&conn_max_age=0"

    db = database_from_url(url)

    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("journeyhub", "jh", "p@ss/word")
    assert (db["HOST"], db["PORT"]) == ("db.example.com", "6432")
    assert db["CONN_MAX_AGE"] == 0
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_postgresql_scheme_without_port_or_password_keeps_defaults():
    db = database_from_url("postgresql://postgres@127.0.0.1/journeyhub_ci")

    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("journeyhub_ci", "postgres", "")
    assert (db["HOST"], db["PORT"]) == ("127.0.0.1", "")
    assert db["CONN_MAX_AGE"] == 60


def test_postgres_url_without_database_name_is_refused():
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        database_from_url("postgres://postgres@127.0.0.1:5432/")


def test_sqlite_urls_give_absolute_relative_and_memory_paths():
    assert database_from_url("sqlite:////srv/jh/db.sqlite3")["NAME"] == "/srv/jh/db.sqlite3"
    assert database_from_url("sqlite:///var/db.sqlite3")["NAME"] == "var/db.sqlite3"
    assert database_from_url("sqlite://")["NAME"] == ":memory:"
    assert database_from_url("sqlite:///x.db")["ENGINE"] == "django.db.backends.sqlite3"


def test_unknown_scheme_is_refused_by_name():
    with pytest.raises(ImproperlyConfigured, match="scheme 'mysql' is not supported"):
        database_from_url("mysql://root@127.0.0.1/journeyhub")


def test_readme_documents_every_environment_variable_settings_read():
    readme = (BASE_DIR / "README.md").read_text()
    variables = settings_variables()

    assert "DATABASE_URL" in variables  # the spy works
    undocumented = [name for name in variables if f"`{name}`" not in readme]
    assert not undocumented, f"add these to the configuration table in README.md: {undocumented}"
