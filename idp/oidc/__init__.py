"""OpenID Connect, just enough for web-identity federation: discovery, JWKS, token minting.

The issuer is `{IDP_BASE_URL}/oidc`; its keys are the `jwt` signing keys (idp/keys.py), on
the same stage/activate/retire lifecycle as the SAML keys.
"""
