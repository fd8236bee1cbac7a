"""The API over real HTTP: staff users with chosen permissions, their tokens, and a client."""

import requests
from django.contrib.auth.models import Permission

from idp.api.models import ApiToken
from users.models import User


def staff(username: str, *permissions: str, superuser: bool = False) -> User:
    """A staff user holding exactly these permissions ("app_label.codename")."""
    user = User.objects.create_user(
        username, password=username, is_staff=True, is_superuser=superuser
    )
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def token_for(user: User, scopes: list[str] | None = None, **fields) -> str:
    return ApiToken.issue(user, scopes=scopes, **fields)[1]


class Api:
    """requests, with the base URL and a bearer token (or none)."""

    def __init__(self, base_url: str, token: str | None = None, **headers: str):
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        self.headers.update(headers)

    def request(self, method: str, path: str, headers=None, **kwargs) -> requests.Response:
        # A connection per request, closed by us once answered: a kept-alive one would hold
        # a live-server thread (and its database connection) past the end of the test.
        return requests.request(
            method,
            self.base_url + path,
            headers={**self.headers, **(headers or {})},
            timeout=30,
            **kwargs,
        )

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json=None, **kwargs) -> requests.Response:
        return self.request("POST", path, json=json, **kwargs)


def assert_refusal(response: requests.Response, status: int, *words: str) -> dict:
    """The API's one error shape, as JSON, with this status and these words in the message."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    body = response.json()
    assert {"title", "message", "hint", "status"} <= body.keys(), body
    assert body["status"] == status and body["title"] and body["message"]
    for word in words:
        assert word in body["message"], body
    return body
