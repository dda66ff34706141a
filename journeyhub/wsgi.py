import json
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "journeyhub.settings")
API_PREFIX = "/api/"
BAD_PATH = "The path is not valid percent-encoded UTF-8."


def refuse_undecodable_api_paths(app):
    """A path under /api/ whose percent-encoding is not UTF-8 ("%FF", an encoded surrogate)
    is a 400 in the API's error shape. Django keeps such bytes percent-encoded, so "%FF" would
    read as the text "%FF", which "%25FF" also names; only the server's raw path still tells
    them apart, so the check runs before Django reads it."""

    def application(environ, start_response):
        path = environ.get("PATH_INFO", "")  # PEP 3333: the path's bytes, decoded as latin-1
        if path.startswith(API_PREFIX) and not _is_utf8(path):
            body = json.dumps({"detail": BAD_PATH, "code": "bad_path",
                               "errors": {"path": [BAD_PATH]}}).encode()
            start_response("400 Bad Request", [("Content-Type", "application/json"),
                                               ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return application


def _is_utf8(wsgi_text: str) -> bool:
    try:
        wsgi_text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return True


application = refuse_undecodable_api_paths(get_wsgi_application())
