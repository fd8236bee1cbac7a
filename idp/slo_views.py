"""Thin single logout views: each hands plain fields to slo.py and renders what comes back."""

from django.contrib import messages
from django.contrib.auth import logout as end_cookie_session
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import participants, slo
from .saml import bindings
from .signals import SESSION_INDEX
from .views import shows_saml_errors


def _see_other(url: str) -> HttpResponse:
    # 303: the browser follows a POST with a GET, which carries the SameSite=Lax cookie.
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def _continue(round_id: str) -> HttpResponse:
    return _see_other(reverse("slo-continue", args=[round_id]))


@csrf_exempt
@require_http_methods(["GET", "POST"])
@shows_saml_errors
def single_logout(request: HttpRequest) -> HttpResponse:
    """/saml/slo/: an SP's LogoutRequest, or its LogoutResponse to one the IdP sent."""
    if request.method == "GET":
        raw_query = request.META.get("QUERY_STRING", "")
        fields, _ = bindings.redirect_parameters(raw_query)
        if slo.kind_of(fields) == "request":
            return _start(request, slo.receive_request_redirect(raw_query))
        return _continue(slo.receive_response_redirect(raw_query))
    fields = request.POST.dict()
    if slo.kind_of(fields) == "request":
        received = slo.receive_request_post(fields)
        # A cross-site POST carries no Lax cookie: the IdP session is seen on the GET.
        return _see_other(reverse("slo-resume", args=[received.to_token()]))
    return _continue(slo.receive_response_post(fields))


@require_GET
@shows_saml_errors
def resume_logout(request: HttpRequest, token: str) -> HttpResponse:
    return _start(request, slo.ReceivedLogout.from_token(token))


def _start(request: HttpRequest, received: slo.ReceivedLogout) -> HttpResponse:
    signed_in = request.user.is_authenticated
    username = request.user.get_username() if signed_in else ""
    index = request.session.get(SESSION_INDEX, "") if signed_in else ""
    cookie = participants.from_cookie(request.session, username) if signed_in else []
    started = slo.start_from_sp(received, index, cookie, username)
    if index and started.ended_session_index == index:
        end_cookie_session(request)
    return _continue(started.round_id)


@require_GET
@shows_saml_errors
def continue_logout(request: HttpRequest, round_id: str) -> HttpResponse:
    """The round's next move: a LogoutRequest to an SP, the answer, or the results."""
    step = slo.step(round_id)
    if step.redirect_url:
        response = HttpResponseRedirect(step.redirect_url)
    elif step.form is not None:
        response = render(request, "saml/slo_post_form.html", {"form": step.form})
    elif step.return_url:
        level = messages.WARNING if step.partial else messages.SUCCESS
        messages.add_message(request, level, _results_line(step))
        response = redirect(step.return_url)
    else:
        response = render(
            request,
            "saml/slo_done.html",
            {"step": step, "aws_note": slo.AWS_TAKES_NO_SLO},
        )
    response["Cache-Control"] = "no-store"
    return response


def _results_line(step: slo.Step) -> str:
    head = "Partial logout" if step.partial else "Signed out everywhere"
    parts = [
        f"{r.sp_name}: {r.state}" + (f" ({r.detail})" if r.detail else "") for r in step.results
    ]
    return f"{head}. " + ("; ".join(parts) or "No service provider had a session.")


@require_POST
@shows_saml_errors
def sign_out(request: HttpRequest) -> HttpResponse:
    """The portal's sign-out (POST, CSRF-checked): end the IdP session, then log out of
    every SP that got an assertion in it, through this browser."""
    if not request.user.is_authenticated or not request.session.get(SESSION_INDEX):
        end_cookie_session(request)
        return render(request, "saml/slo_done.html", {"step": None})
    username = request.user.get_username()
    cookie = participants.from_cookie(request.session, username)
    round_ = slo.end_session(request.session[SESSION_INDEX], username, cookie)
    end_cookie_session(request)  # signals.revoke_session runs, as with Django's LogoutView
    return redirect("slo-continue", round_.id)
