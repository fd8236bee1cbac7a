"""IDP_LOGIN_MODE=picker: sign in by clicking a directory user, with no password.

This is what test rigs built on SimpleSAMLphp's test IdP or mock-saml expect. A picked
login is an ordinary Django login (the same session, SESSION_INDEX and AuthnInstant, so a
pending SP request resumes through `next` as after a password), with two limits:

- staff and superusers cannot be picked: an operator proves who they are with a password;
- the session is marked as picked, and the admin treats a picked session as signed out,
  so a user made staff after being picked still meets the admin's password form.
  Turning the picker off ends every picked session at its next request.
"""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import LoginView
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from users.models import User

from . import authn_context, mfa_views
from .conf import idp_settings
from .saml.errors import SamlError
from .signals import AUTHN_CLASS_ATTRIBUTE, PICKED_LOGIN
from .views import shows_saml_errors

# The page stays small with 10,000 users: a search narrows it, never a longer list.
SHOWN = 50
QUERY_MAX = 150  # a user name's maximum length


def picker_on() -> bool:
    return idp_settings.IDP_LOGIN_MODE == "picker"


@dataclass(frozen=True)
class Choices:
    query: str
    users: tuple[User, ...]
    more: bool  # more users match than are shown


def choices(query: str, shown: int = SHOWN) -> Choices:
    """Active non-staff users whose name or e-mail contains the query, by user name."""
    query = query.strip()[:QUERY_MAX]
    if not query.isprintable():
        # No name holds a control character, and PostgreSQL refuses a NUL in a query.
        return Choices(query, (), more=False)
    users = User.objects.filter(is_active=True, is_staff=False, is_superuser=False)
    if query:
        users = users.filter(
            Q(username__icontains=query)
            | Q(email__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
        )
    found = list(
        users.order_by("username").only("username", "first_name", "last_name", "email")[: shown + 1]
    )
    return Choices(query, tuple(found[:shown]), more=len(found) > shown)


def pickable(username: str) -> User:
    """The user a click names, or a refusal that says why this one cannot be picked."""
    if not username or len(username) > QUERY_MAX or not username.isprintable():
        raise SamlError(
            "Which user?",
            "The form named no user, or not a valid user name.",
            "Go back to the sign-in page and click a user in the list.",
            status=400,
        )
    user = User.objects.filter(username=username).first()
    if user is None or not user.is_active:
        raise SamlError(
            "No such user",
            f"There is no active directory user named {username!r}.",
            "Pick a user from the list on the sign-in page; inactive users are not listed.",
            status=404,
        )
    if user.is_staff or user.is_superuser:
        raise SamlError(
            "Staff users sign in with a password",
            f"{username!r} is staff, and the picker signs nobody into the admin.",
            "Use the password form on the sign-in page.",
            status=403,
        )
    return user


class LoginPage(LoginView):
    """Django's login view; in picker mode the page lists users to click above the form."""

    def get_template_names(self):
        return ["registration/picker.html"] if picker_on() else super().get_template_names()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if picker_on():
            context["choices"] = choices(self.request.GET.get("q", ""))
        # Why a sign-on sent the user here again (RequestedAuthnContext, require_mfa).
        context["step_up"] = mfa_views.step_up_notice(self.request, context.get("next") or "")
        return context

    def form_valid(self, form):
        """A right password: a user with a TOTP device is asked for a code first."""
        asks_code = mfa_views.after_password(self.request, form.get_user(), self.get_success_url())
        return asks_code or super().form_valid(form)


@never_cache
@require_POST
@shows_saml_errors
def pick(request: HttpRequest) -> HttpResponse:
    if not picker_on():
        raise SamlError(
            "Picker login is off",
            "This IdP signs users in with a password.",
            "Sign in at /accounts/login/. Test rigs can start fedmock with IDP_LOGIN_MODE=picker.",
            status=404,
        )
    user = pickable(request.POST.get("username", ""))
    setattr(request, AUTHN_CLASS_ATTRIBUTE, authn_context.UNSPECIFIED)  # a click proves nothing
    login(request, user, backend="idp.auth.CachedModelBackend")
    request.session[PICKED_LOGIN] = True  # after login(): its signal clears the mark
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = resolve_url(settings.LOGIN_REDIRECT_URL)
    return redirect(next_url)


def login_mode(request: HttpRequest) -> dict:
    """Template context: every page of ours shows the picker's warning while it is on."""
    return {"picker_mode": picker_on()}


class PickedSessionMiddleware:
    """After RevokedSessionMiddleware: a picked session is nobody in the admin, and ends
    when the picker is turned off."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.admin_prefix = None

    def __call__(self, request):
        if request.session.get(PICKED_LOGIN):
            if not picker_on():
                request.session.flush()
                request.user = AnonymousUser()
            else:
                if self.admin_prefix is None:
                    self.admin_prefix = reverse("admin:index")
                if request.path.startswith(self.admin_prefix):
                    request.user = AnonymousUser()
        return self.get_response(request)
