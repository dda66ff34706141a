"""Small, loud readers of environment variables for settings.py."""

import json
import os
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false).")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(url: str) -> dict:
    """Turn postgres://user:pass@host:port/name or sqlite:///path into a DATABASES entry."""
    parsed = urlparse(url)
    options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    if parsed.scheme in ("postgres", "postgresql", "pgsql"):
        name = unquote(parsed.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no database.")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": int(options.pop("conn_max_age", 60)),
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        # sqlite:///relative.db -> "/relative.db"; sqlite:////abs.db -> "//abs.db"
        path = path[1:] if path.startswith("//") else path.lstrip("/") or ":memory:"
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            "OPTIONS": {
                # Web, worker and beat share one file: wait for the lock instead of failing,
                # and take the write lock at BEGIN so read-then-write cannot deadlock.
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {parsed.scheme!r} is not supported (use postgres:// or sqlite:///)."
    )


def push_apps_from_env() -> dict[str, dict[str, dict]]:
    """Provider credentials by kind and application id.

    {"fcm": {"default": {"credentials_file": ..., "project_id": ..., "endpoint": ...}},
     "apns": {"default": {"key_file": ..., "key_id": ..., "team_id": ..., "topic": ...,
                          "use_sandbox": false}},
     "webpush": {"default": {"vapid_private_key": ..., "vapid_public_key": ...,
                             "vapid_subject": "mailto:..."}}}
    """
    apps: dict[str, dict[str, dict]] = {"fcm": {}, "apns": {}, "webpush": {}}
    path = os.environ.get("PUSH_APPS_FILE")
    if path:
        try:
            with open(path) as handle:
                loaded = json.load(handle)
        except (OSError, ValueError) as error:
            raise ImproperlyConfigured(f"PUSH_APPS_FILE={path!r} is unreadable: {error}")
        if not isinstance(loaded, dict) or not set(loaded) <= set(apps):
            raise ImproperlyConfigured("PUSH_APPS_FILE must map fcm/apns/webpush to app configs.")
        apps.update(loaded)
    single = {
        "fcm": {"credentials_file": "FCM_CREDENTIALS_FILE", "project_id": "FCM_PROJECT_ID",
                "endpoint": "FCM_ENDPOINT"},
        "apns": {"key_file": "APNS_KEY_FILE", "key_id": "APNS_KEY_ID", "team_id": "APNS_TEAM_ID",
                 "topic": "APNS_TOPIC", "use_sandbox": "APNS_USE_SANDBOX"},
        "webpush": {"vapid_private_key": "WEBPUSH_VAPID_PRIVATE_KEY",
                    "vapid_public_key": "WEBPUSH_VAPID_PUBLIC_KEY",
                    "vapid_subject": "WEBPUSH_VAPID_SUBJECT"},
    }
    for kind, variables in single.items():
        values = {key: os.environ[var] for key, var in variables.items() if os.environ.get(var)}
        if values:
            apps[kind].setdefault("default", {}).update(values)
    if "use_sandbox" in apps["apns"].get("default", {}):
        flag = apps["apns"]["default"]["use_sandbox"]
        apps["apns"]["default"]["use_sandbox"] = str(flag).lower() in TRUE_WORDS
    return apps
