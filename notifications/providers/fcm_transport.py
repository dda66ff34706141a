"""The HTTP client under firebase-admin's ``send_each_async``: aiohttp's HTTP/1.1 keep-alive pool.

firebase-admin encodes each message, calls ``request()`` on its messaging service's async
client for each one, and turns every answer (or httpx error) into a ``SendResponse``. Its own
client, ``HttpxAsyncClient``, costs about 2.5 ms of CPU per request in our profiles: httpcore's
pool re-checks every pooled socket on each request, and httpx parses the URL, runs an auth
flow that builds a requests.Session, and handles cookies for every call. This class keeps that
client's contract (same arguments, an ``httpx.Response`` back, ``raise_for_status()`` errors,
timeouts and connection failures as the httpx exceptions firebase-admin maps to
DEADLINE_EXCEEDED and UNAVAILABLE, a 401 refreshes the OAuth2 token and tries again) at about a
quarter of the cost. FCM HTTP v1 has no multi-message request, so a million messages are a
million requests: this per-request cost is what limits a send worker.

FCM accepts HTTP/1.1; each worker process keeps at most ``limit`` connections open to it."""

import asyncio
import json
import ssl

import aiohttp
import certifi
import httpx
from google.auth.transport import requests as google_auth_requests

MAX_TOKEN_REFRESHES = 2  # after a 401, as firebase-admin's GoogleAuthCredentialFlow does


class FcmHttpClient:
    def __init__(self, *, credential, headers: dict[str, str], timeout: float, limit: int):
        self._credential = credential
        self._headers = {**headers, "Content-Type": "application/json; charset=UTF-8"}
        self._timeout = aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout)
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._token_request = google_auth_requests.Request()
        self._requests: dict[tuple[str, str], httpx.Request] = {}

    async def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        """firebase-admin's ``HttpxAsyncClient.request`` for its two uses: ``headers``, ``json``."""
        body = json.dumps(kwargs.get("json"), separators=(",", ":")).encode()
        for refreshes in range(MAX_TOKEN_REFRESHES + 1):
            if not self._credential.valid:
                self._credential.refresh(self._token_request)
            headers = {**self._headers, **(kwargs.get("headers") or {}),
                       "Authorization": f"Bearer {self._credential.token}"}
            response = await self._post(method, url, headers, body)
            if response.status_code != 401 or refreshes == MAX_TOKEN_REFRESHES:
                return response.raise_for_status()
            self._credential.refresh(self._token_request)  # revoked early: fetch a new token
        raise AssertionError("unreachable")

    async def _post(self, method: str, url: str, headers: dict, body: bytes) -> httpx.Response:
        request = self._requests.get((method, url))  # named in firebase-admin's errors
        if request is None:  # built once: parsing the URL costs as much as sending
            request = self._requests[method, url] = httpx.Request(method, url)
        try:
            async with self._session_for_this_loop().request(
                method, url, headers=headers, data=body, timeout=self._timeout
            ) as answer:
                content = await answer.read()
        except TimeoutError as error:
            raise httpx.ReadTimeout(f"FCM did not answer in time: {error!r}",
                                    request=request) from error
        except aiohttp.ClientConnectorError as error:
            raise httpx.ConnectError(str(error), request=request) from error
        except (aiohttp.ClientError, OSError) as error:
            raise httpx.ReadError(f"{type(error).__name__}: {error}", request=request) from error
        return httpx.Response(answer.status, headers=answer.raw_headers, content=content,
                              request=request)

    def _session_for_this_loop(self) -> aiohttp.ClientSession:
        # Created on first use inside the provider loop (aioloop.py): aiohttp binds it there.
        if self._session is None or self._session.closed:
            self._loop = asyncio.get_running_loop()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limit, limit_per_host=self._limit,
                    ssl=ssl.create_default_context(cafile=certifi.where()),  # as httpx does
                ),
                auto_decompress=False,  # httpx.Response decodes Content-Encoding itself
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def __del__(self) -> None:
        # A backend rebuilt for new settings drops its clients: close their connections on the
        # loop that owns them rather than leave aiohttp to complain of an unclosed session.
        session, loop = self._session, self._loop
        if session is None or session.closed or loop is None or loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(session.close(), loop)
        except RuntimeError:  # the loop is shutting down with the process
            pass
