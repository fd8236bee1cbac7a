"""`fedmock credentials | roles | configure-profile`: argparse, and the one-line refusals.

Only the standard library is imported at the top: a cached `fedmock credentials` (what
`credential_process` runs before every AWS CLI call) reads one file and prints it. The
sign-on (requests, lxml) and STS (boto3) are imported when there is something to fetch.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from . import awsconfig, cache, console_url
from .errors import CliError

FORMATS = ("credential-process", "env", "json")
ACCOUNT = re.compile(r"[0-9]{12}")
ROLE_ARN = re.compile(r"arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)
SIGN_IN_HINT = (
    "set FEDMOCK_PASSWORD, pass --password-stdin, run it in a terminal to be prompted, "
    "or set FEDMOCK_TOKEN to an API token with the sign-on scope"
)


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like every other refusal."""

    def error(self, message: str):
        raise CliError("usage", message, f"see `{self.prog} --help`", status=2)


def _add_idp_and_user(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--idp",
        metavar="URL",
        help="fedmock's base URL, e.g. http://127.0.0.1:8000 (default: $FEDMOCK_IDP)",
    )
    parser.add_argument("--user", required=True, help="the directory user, e.g. alice")


def _add_role(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", metavar="ARN", help="the role ARN to assume")
    parser.add_argument("--account", metavar="ID", help="with --role-name: the role's account")
    parser.add_argument("--role-name", metavar="NAME", help="with --account: the role's name")
    parser.add_argument(
        "--sts-endpoint",
        metavar="URL",
        help="STS to call (default: AWS's regional endpoint; fedmock's own: {idp}/aws/)",
    )
    parser.add_argument(
        "--region", help="the region for STS (default: the AWS CLI's, or us-east-1)"
    )
    parser.add_argument(
        "--duration", type=int, metavar="S", help="DurationSeconds (900 up to the role's maximum)"
    )


def build_parser() -> Parser:
    parser = Parser(
        prog="fedmock",
        description="AWS credentials for a fedmock directory user: SAML sign-on without a "
        "browser (ECP with a password, or the API with FEDMOCK_TOKEN), then STS "
        "AssumeRoleWithSAML.",
    )
    commands = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")

    credentials = commands.add_parser(
        "credentials",
        help="print credentials (cached until 5 minutes before they expire)",
        description="Sign in, call AssumeRoleWithSAML and print the credentials. The password "
        "comes from FEDMOCK_PASSWORD, --password-stdin or a prompt; FEDMOCK_TOKEN (an API "
        "token) is the alternative.",
    )
    _add_idp_and_user(credentials)
    _add_role(credentials)
    credentials.add_argument("--format", choices=FORMATS, default="json")
    credentials.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    credentials.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the cache"
    )

    roles = commands.add_parser("roles", help="list the role ARNs the user can choose")
    _add_idp_and_user(roles)
    roles.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    profile = commands.add_parser(
        "configure-profile",
        help="write a credential_process profile into ~/.aws/config ($AWS_CONFIG_FILE)",
    )
    profile.add_argument("name", help="the profile's name (aws --profile NAME)")
    _add_idp_and_user(profile)
    _add_role(profile)
    profile.add_argument(
        "--command",
        metavar="PATH",
        help="the fedmock executable the profile runs (default: this one's absolute path)",
    )
    console_url.add_parser(commands, _add_role)
    return parser


def _idp(args, environ) -> str:
    idp = (args.idp or environ.get("FEDMOCK_IDP", "")).strip()
    if not idp:
        raise CliError(
            "no IdP",
            "which fedmock to sign in at is not given",
            "pass --idp URL (e.g. http://127.0.0.1:8000) or set FEDMOCK_IDP",
            status=2,
        )
    if not idp.startswith(("http://", "https://")):
        raise CliError(
            "usage", f"--idp {idp!r} is not an http(s) URL", "pass --idp http://HOST:PORT", 2
        )
    return idp.rstrip("/")


def _role_choice(args) -> tuple[str, str | None, str | None]:
    """("role", ARN) or ("account", ID, NAME): exactly one way of naming the role."""
    if args.role and (args.account or args.role_name):
        raise CliError(
            "usage", "--role and --account/--role-name name the role twice", "use one", 2
        )
    if args.role:
        if not ROLE_ARN.fullmatch(args.role):
            raise CliError(
                "usage",
                f"--role {args.role!r} is not a role ARN",
                "pass arn:aws:iam::ACCOUNT:role/NAME (see `fedmock roles`)",
                2,
            )
        return args.role, None, None
    if not (args.account and args.role_name):
        raise CliError(
            "usage", "no role given", "pass --role ARN, or --account ID and --role-name NAME", 2
        )
    if not ACCOUNT.fullmatch(args.account):
        raise CliError("usage", f"--account {args.account!r} is not 12 digits", "", 2)
    return "", args.account, args.role_name


def _secret(args, environ, stdin) -> tuple[str | None, str | None]:
    """(password, token): the password if one is given, else the token, else a prompt."""
    if getattr(args, "password_stdin", False):
        line = stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if not password:
            raise CliError("no password", "stdin was empty", SIGN_IN_HINT, 2)
        return password, None
    if environ.get("FEDMOCK_PASSWORD"):
        return environ["FEDMOCK_PASSWORD"], None
    if environ.get("FEDMOCK_TOKEN"):
        return None, environ["FEDMOCK_TOKEN"]
    if stdin.isatty():
        import getpass

        return getpass.getpass(f"Password for {args.user}: "), None
    raise CliError("no password", "no password or API token was given", SIGN_IN_HINT, 2)


def _pick(assertion, user: str, role_arn: str, account: str | None, name: str | None):
    for pair in assertion.roles:
        if (role_arn and pair.role_arn == role_arn) or (
            not role_arn and pair.account == account and pair.role_name == name
        ):
            return pair
    wanted = role_arn or f"role {name} in account {account}"
    offered = ", ".join(p.role_arn for p in assertion.roles) or "none"
    raise CliError(
        "Unknown role",
        f"{user}'s assertion offers no {wanted} (it offers: {offered})",
        "choose one of those (`fedmock roles`); STS would refuse this one with AccessDenied",
    )


def _cache_path(args, idp: str, role_arn: str, environ):
    from .sts import default_endpoint_label

    name = cache.key(
        idp=idp,
        user=args.user,
        role=role_arn or f"{args.account}/{args.role_name}",
        sts=args.sts_endpoint or default_endpoint_label(args.region),
        duration=args.duration,
    )
    return cache.directory(environ) / f"{name}.json"


def render(credentials: dict, fmt: str) -> str:
    if fmt == "credential-process":
        fields = {"Version": 1, **{k: credentials[k] for k in cache.FIELDS}}
        return json.dumps(fields)
    if fmt == "env":
        names = (
            ("AWS_ACCESS_KEY_ID", "AccessKeyId"),
            ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
            ("AWS_SESSION_TOKEN", "SessionToken"),
            ("AWS_CREDENTIAL_EXPIRATION", "Expiration"),
        )
        return "\n".join(f"export {var}={shlex.quote(credentials[k])}" for var, k in names)
    return json.dumps({k: credentials[k] for k in cache.FIELDS}, indent=2)


def credentials_command(args, environ, stdin, stdout, now: datetime) -> int:
    print(render(obtain_credentials(args, environ, stdin, now), args.format), file=stdout)
    return 0


def obtain_credentials(args, environ, stdin, now: datetime) -> dict:
    """The user's role credentials: from the cache, else sign-on and AssumeRoleWithSAML."""
    idp = _idp(args, environ)
    role_arn, account, name = _role_choice(args)
    if args.duration is not None and not 900 <= args.duration <= 43200:
        raise CliError(
            "ValidationError",
            f"DurationSeconds {args.duration} is outside 900-43200",
            "pass --duration between 900 and the role's maximum session duration",
            2,
        )
    path = None if args.no_cache else _cache_path(args, idp, role_arn, environ)
    cached = cache.load(path, now) if path else None
    if cached:
        return cached

    from . import signon, sts

    password, token = _secret(args, environ, stdin)
    assertion = signon.get_assertion(
        idp, args.user, password=password, token=token, role_arn=role_arn or None, now=now
    )
    pair = _pick(assertion, args.user, role_arn, account, name)
    issued = sts.assume_role_with_saml(
        assertion.saml_response,
        pair.role_arn,
        pair.provider_arn,
        endpoint=args.sts_endpoint,
        region=args.region,
        duration=args.duration,
    )
    credentials = issued["Credentials"]
    if path:
        cache.store(path, credentials)
    return credentials


def roles_command(args, environ, stdin, stdout, now: datetime) -> int:
    from . import signon

    idp = _idp(args, environ)
    password, token = _secret(args, environ, stdin)
    assertion = signon.get_assertion(
        idp, args.user, password=password, token=token, role_arn=None, now=now
    )
    if not assertion.roles:
        raise CliError(
            "No roles",
            f"{args.user}'s assertion for urn:amazon:webservices carries no Role pair",
            "give the user an AWS group (AWS-ACCOUNT-ROLE) or a Role claim rule",
        )
    for pair in assertion.roles:
        print(pair.role_arn, file=stdout)
    return 0


def _this_executable() -> str:
    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) == "fedmock" and os.path.isfile(script):
        return os.path.abspath(script)
    return shutil.which("fedmock") or "fedmock"


def configure_profile_command(args, environ, stdin, stdout, now: datetime) -> int:
    idp = _idp(args, environ)
    role_arn, account, name = _role_choice(args)
    if not re.fullmatch(r"[A-Za-z0-9_.@+-]{1,64}", args.name):
        raise CliError(
            "usage", f"profile name {args.name!r} has characters AWS's config does not take", "", 2
        )
    command = [args.command or _this_executable(), "credentials", "--idp", idp, "--user", args.user]
    command += ["--role", role_arn] if role_arn else ["--account", account, "--role-name", name]
    if args.sts_endpoint:
        command += ["--sts-endpoint", args.sts_endpoint]
    if args.region:
        command += ["--region", args.region]
    if args.duration is not None:
        command += ["--duration", str(args.duration)]
    command += ["--format", "credential-process"]
    # The AWS CLI splits credential_process as a POSIX shell would, without running one.
    settings = [("credential_process", shlex.join(command))]
    if args.region:
        settings.append(("region", args.region))
    path = awsconfig.config_path(environ)
    replaced = awsconfig.write_profile(path, args.name, settings)
    verb = "Replaced" if replaced else "Added"
    try_it = f"aws sts get-caller-identity --profile {args.name}"
    print(f"{verb} profile {args.name} in {path}; try: {try_it}", file=stdout)
    return 0


COMMANDS = {
    "credentials": credentials_command,
    "roles": roles_command,
    "configure-profile": configure_profile_command,
    "console-url": console_url.command,
}


def main(
    argv: list[str] | None = None,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    environ=None,
    stdin=None,
    stdout=None,
    stderr=None,
) -> int:
    environ = os.environ if environ is None else environ
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.subcommand](args, environ, stdin, stdout, now())
    except CliError as error:
        print(error.line(), file=stderr)
        return error.status
    except KeyboardInterrupt:
        print("fedmock: interrupted", file=stderr)
        return 130
    except SystemExit as exit_:  # --help
        return exit_.code if isinstance(exit_.code, int) else 0
    except Exception as error:  # noqa: BLE001 - the promise is one line, never a traceback
        if environ.get("FEDMOCK_DEBUG"):
            raise
        print(
            f"fedmock: internal error: {type(error).__name__}: {' '.join(str(error).split())}."
            " Fix: run again with FEDMOCK_DEBUG=1 for the traceback, and report it",
            file=stderr,
        )
        return 1
