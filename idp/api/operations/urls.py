from django.urls import path

from . import views

urlpatterns = [
    path("sign-ons", views.SignOns.as_view(), name="sign-ons"),
    path("web-identity-tokens", views.WebIdentityTokens.as_view(), name="web-identity-tokens"),
    path("checks", views.Checks.as_view(), name="checks"),
    path("scenarios", views.Scenarios.as_view(), name="scenarios"),
    path("reset", views.Reset.as_view(), name="reset"),
    path("signing-keys", views.SigningKeys.as_view(), name="signing-keys"),
    path(
        "signing-keys/<str:fingerprint>/activate",
        views.ActivateKey.as_view(),
        name="signing-key-activate",
    ),
    path(
        "signing-keys/<str:fingerprint>/retire",
        views.RetireKey.as_view(),
        name="signing-key-retire",
    ),
]
