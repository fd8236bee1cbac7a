from django.urls import include, path
from oauth2_provider import views as dot

from . import views

# DOT's views under DOT's URL names (namespace oauth2_provider), so that DOT's own
# reverse() calls and discovery (ConnectDiscoveryInfoView) agree with ours.
protocol = (
    [
        path("authorize/", views.Authorize.as_view(), name="authorize"),
        path("token/", views.Token.as_view(), name="token"),
        path("userinfo/", dot.UserInfoView.as_view(), name="user-info"),
        path("revoke/", dot.RevokeTokenView.as_view(), name="revoke-token"),
        # The JWKS below under DOT's name, for DOT's discovery view only (never matched).
        path("jwks", views.key_set, name="jwks-info"),
    ],
    "oauth2_provider",
)

urlpatterns = [
    path(".well-known/openid-configuration", views.configuration, name="oidc-configuration"),
    path("jwks", views.key_set, name="oidc-jwks"),
    path("", include(protocol)),
]
