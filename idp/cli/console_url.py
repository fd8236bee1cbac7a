"""`fedmock console-url`: a console sign-in URL from temporary credentials, as a broker makes one.

The credentials are either a directory user's role session, exactly as `fedmock
credentials` gets it (its cache first, else sign-on and AssumeRoleWithSAML), or whatever
boto3's standard chain finds (environment, --profile, ~/.aws, …). They go to the
federation endpoint's getSigninToken, and the login URL with the SigninToken is printed.
AWS's endpoint is the default; fedmock's own is {IDP}/aws/federation, for credentials
from fedmock's local STS. The URL signs in once, within 15 minutes.
"""

from datetime import datetime
from urllib.parse import urlsplit

from idp.broker import signin

from .errors import CliError


def add_parser(commands, add_role) -> None:
    parser = commands.add_parser(
        "console-url",
        help="print an AWS console sign-in URL for temporary credentials",
        description="Exchange temporary credentials at the federation endpoint "
        "(getSigninToken) and print the console sign-in URL. With --user (and a role), the "
        "credentials are that user's role session, as `fedmock credentials` gets them; "
        "otherwise boto3's standard credential chain (or --profile) provides them.",
    )
    parser.add_argument(
        "--idp",
        metavar="URL",
        help="fedmock's base URL, with --user (default: $FEDMOCK_IDP); also the default Issuer",
    )
    parser.add_argument("--user", help="a directory user: use their role session")
    add_role(parser)
    parser.add_argument(
        "--password-stdin", action="store_true", help="with --user: read the password from stdin"
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="with --user: neither read nor write the cache"
    )
    parser.add_argument(
        "--profile", help="without --user: the AWS profile whose credentials to use"
    )
    parser.add_argument(
        "--federation-url",
        metavar="URL",
        default=signin.AWS_FEDERATION_URL,
        help=f"the federation endpoint (default: {signin.AWS_FEDERATION_URL}; fedmock's own: "
        "{idp}/aws/federation)",
    )
    parser.add_argument(
        "--destination",
        metavar="URL",
        default=signin.AWS_CONSOLE_URL,
        help=f"the console page to open (default: {signin.AWS_CONSOLE_URL})",
    )
    parser.add_argument(
        "--issuer", metavar="URL", help="where AWS sends the user back (default: --idp, if given)"
    )
    parser.add_argument(
        "--session-duration",
        type=int,
        metavar="S",
        help="the console session, 900-43200 seconds (not for GetFederationToken credentials)",
    )


def _url(option: str, value: str) -> str:
    try:
        parts = urlsplit(value)
        well_formed = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. "http://[::1": an unclosed IPv6 bracket
        well_formed = False
    if not well_formed or not value.isprintable():
        raise CliError("usage", f"{option} {value[:200]!r} is not an http(s) URL", "", 2)
    return value


def _chain_credentials(profile: str | None) -> signin.Credentials:
    import boto3
    import botocore.exceptions

    try:
        found = boto3.session.Session(profile_name=profile).get_credentials()
    except botocore.exceptions.ProfileNotFound:
        raise CliError(
            "usage", f"no AWS profile {profile!r}", "see `aws configure list-profiles`", 2
        ) from None
    except botocore.exceptions.BotoCoreError as error:
        raise CliError("AWS credentials", f"{type(error).__name__}: {error}", "") from None
    if found is None:
        raise CliError(
            "No credentials",
            "boto3's credential chain found no AWS credentials",
            "pass --user (a fedmock user's role session), --profile, or set "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN",
        )
    frozen = found.get_frozen_credentials()
    if not frozen.token:
        raise CliError(
            "Not temporary credentials",
            "the credentials found have no session token; the federation endpoint takes "
            "only temporary credentials",
            "assume a role first (aws sts assume-role), or pass --user",
        )
    return signin.Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def command(args, environ, stdin, stdout, now: datetime) -> int:
    federation_url = _url("--federation-url", args.federation_url.rstrip("?"))
    destination = _url("--destination", args.destination)
    if args.session_duration is not None and not 900 <= args.session_duration <= 43200:
        raise CliError(
            "usage",
            f"--session-duration {args.session_duration} is outside 900-43200",
            "pass seconds from 900 (15 minutes) to 43200 (12 hours), or leave it out",
            2,
        )
    if args.user:
        if args.profile:
            raise CliError(
                "usage", "--user and --profile name two sources of credentials", "use one", 2
            )
        from .main import _idp, obtain_credentials

        issuer = args.issuer or _idp(args, environ)
        issued = obtain_credentials(args, environ, stdin, now)
        credentials = signin.Credentials(
            issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"]
        )
    else:
        if args.role or args.account or args.role_name:
            raise CliError(
                "usage",
                "a role is named without --user",
                "pass --user too (the role session of a fedmock user), or leave the role "
                "out to use the credentials boto3 finds",
                2,
            )
        # Options of the --user path would otherwise be ignored without a word.
        user_only = [
            option
            for option, given in (
                ("--sts-endpoint", args.sts_endpoint),
                ("--region", args.region),
                ("--duration", args.duration is not None),
                ("--password-stdin", args.password_stdin),
                ("--no-cache", args.no_cache),
            )
            if given
        ]
        if user_only:
            raise CliError(
                "usage",
                f"{', '.join(user_only)} only work with --user",
                "pass --user (a fedmock user's role session), or leave them out to use the "
                "credentials boto3 finds",
                2,
            )
        issuer = args.issuer or (args.idp or environ.get("FEDMOCK_IDP", "")).rstrip("/")
        credentials = _chain_credentials(args.profile)
    if issuer:
        _url("--issuer", issuer)
    try:
        token = signin.get_signin_token(federation_url, credentials, args.session_duration)
    except signin.SigninError as error:
        raise CliError(error.title, error.detail, error.hint) from None
    url = signin.login_url(federation_url, token, issuer=issuer, destination=destination)
    print(url, file=stdout)
    return 0
