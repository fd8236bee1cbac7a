from django.urls import path

from . import views

urlpatterns = [
    path(".well-known/openid-configuration", views.configuration, name="oidc-configuration"),
    path("jwks", views.key_set, name="oidc-jwks"),
]
