"""The custom identity broker: AWS access for users whose identity speaks neither SAML nor OIDC.

A user signed in at the portal picks one of the roles their claim rules give them (the
same Role values a SAML sign-on would carry). fedmock, with its own AWS credentials from
boto3's standard chain, calls AssumeRole for that role, then either shows the
credentials once ("Get CLI credentials") or exchanges them at the federation endpoint for
a console sign-in URL ("Open the AWS console"), as AWS documents for a custom broker.

  roles.py   which roles a user may broker (claim rules, as for SAML)
  sts.py     AssumeRole with the broker's own credentials (boto3)
  signin.py  the federation endpoint's protocol: getSigninToken, then the login URL
             (no Django: `fedmock console-url` uses it too)
  views.py   the portal's two POST actions
"""


class Refusal(Exception):
    """A refusal of the broker or the local federation endpoint: title, detail, hint, status."""

    default_status = 502  # the broker's own refusals: an upstream (STS, federation) said no

    def __init__(self, title: str, detail: str, hint: str, status: int | None = None):
        super().__init__(f"{title}: {detail}")
        self.title, self.detail, self.hint = title, detail, hint
        self.status = self.default_status if status is None else status
