from django.contrib import admin
from django.urls import include, path

from . import ecp, mfa_views, picker, slo_views, views
from .broker import views as broker

urlpatterns = [
    path("", views.portal_page, name="portal"),
    path("broker/console/", broker.console, name="broker-console"),
    path("broker/credentials/", broker.credentials, name="broker-credentials"),
    path("saml/metadata/", views.metadata, name="metadata"),
    path("saml/sso/", views.single_sign_on, name="sso"),
    path("saml/sso/resume/<str:token>/", views.resume_sign_on, name="sso-resume"),
    path("saml/init/", views.idp_initiated, name="idp-initiated"),
    path("saml/slo/", slo_views.single_logout, name="slo"),
    path("saml/slo/resume/<str:token>/", slo_views.resume_logout, name="slo-resume"),
    path("saml/slo/continue/<str:round_id>/", slo_views.continue_logout, name="slo-continue"),
    path("saml/ecp/", ecp.single_sign_on, name="ecp"),
    path("accounts/login/", picker.LoginPage.as_view(), name="login"),
    path("accounts/pick/", picker.pick, name="login-pick"),
    path("accounts/login/code/", mfa_views.code, name="login-code"),
    path("accounts/mfa/", mfa_views.enrol, name="mfa"),
    path("accounts/logout/", slo_views.sign_out, name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("idp.api.urls")),
    path("aws/", include("idp.sts.urls")),
    path("oidc/", include("idp.oidc.urls")),
]

handler400 = "idp.errors.bad_request"
handler403 = "idp.errors.forbidden"
handler404 = "idp.errors.not_found"
handler500 = "idp.errors.server_error"
