"""The trust-policy evaluator (idp/sts/policy.py), as a table of AWS's rules and surprises.

Each row is a trust policy, a request and AWS's documented answer. The context is what
an AssumeRoleWithSAML request gives a trust policy (R8's keys, the multivalued eduPerson
attributes, the session tags); the rows change one thing at a time.
"""

import json

import pytest

from idp.sts import policy as p
from idp.sts.errors import StsError

ACCOUNT = "111122223333"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/fedmock"
OTHER_PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/Other"
SAML = "sts:AssumeRoleWithSAML"
TAG = "sts:TagSession"
SOURCE = "sts:SetSourceIdentity"

CONTEXT = {
    "saml:aud": "https://signin.aws.amazon.com/saml",
    "saml:sub": "alice@example.com",
    "saml:sub_type": "persistent",
    "saml:iss": "http://127.0.0.1:8000/saml/metadata/",
    "saml:namequalifier": "kZzBrOZsCXkQ7Ny7AMd5P0Zr3fQ=",
    "saml:doc": f"{ACCOUNT}/fedmock",
    "saml:edupersonaffiliation": ["staff", "member"],
    "saml:edupersonprincipalname": ["alice@example.com"],
}
TAGS = {
    "aws:RequestTag/Project": "blue",
    "aws:RequestTag/CostCenter": "42",
    "aws:TagKeys": ["Project", "CostCenter"],
}


def stmt(condition=None, *, effect="Allow", action=SAML, sid=None, principal=None, **extra):
    statement = {
        "Effect": effect,
        "Principal": principal if principal is not None else {"Federated": PROVIDER},
    }
    if action is not None:
        statement["Action"] = action
    if sid:
        statement["Sid"] = sid
    if condition is not None:
        statement["Condition"] = condition
    statement.update(extra)
    return statement


def doc(*statements, version="2012-10-17"):
    document = {"Statement": list(statements)}
    if version:
        document["Version"] = version
    return document


def request(actions=(SAML,), context=None, principal=None, **more):
    merged = {**CONTEXT, **(context or {})}
    for key, value in more.items():
        merged[key.replace("__", ":")] = value
    return p.PolicyRequest(
        principal=principal or {"Federated": [PROVIDER]}, actions=tuple(actions), context=merged
    )


def without(*keys):
    return {k: v for k, v in CONTEXT.items() if k not in keys}


def bare_request(context, actions=(SAML,)):
    return p.PolicyRequest(principal={"Federated": [PROVIDER]}, actions=actions, context=context)


# (id, policy, request, allowed, denied_action, words the explanation must hold)
ALLOW, DENY = True, False
CASES = [
    # --- Principal and Action -----------------------------------------------------
    ("plain-allow", doc(stmt()), request(), ALLOW, None, ["allows sts:AssumeRoleWithSAML"]),
    (
        "statement-as-object",
        {"Version": "2012-10-17", "Statement": stmt()},
        request(),
        ALLOW,
        None,
        [],
    ),
    ("version-2008", doc(stmt(), version="2008-10-17"), request(), ALLOW, None, []),
    ("version-absent", doc(stmt(), version=None), request(), ALLOW, None, []),
    (
        "no-statement-is-implicit-deny",
        doc(stmt(effect="Deny", action="sts:AssumeRole")),
        request(),
        DENY,
        SAML,
        ["No statement allows sts:AssumeRoleWithSAML", "no Allow statement"],
    ),
    (
        "principal-other-provider",
        doc(stmt(principal={"Federated": OTHER_PROVIDER})),
        request(),
        DENY,
        SAML,
        ["does not match the request's", "saml-provider/Other"],
    ),
    (
        "principal-list-holds-ours",
        doc(stmt(principal={"Federated": [OTHER_PROVIDER, PROVIDER]})),
        request(),
        ALLOW,
        None,
        [],
    ),
    ("principal-star", doc(stmt(principal="*")), request(), ALLOW, None, []),
    (
        "principal-aws-star-is-everyone",
        doc(stmt(principal={"AWS": "*"})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "principal-aws-account-is-not-federated",
        doc(stmt(principal={"AWS": ACCOUNT})),
        request(),
        DENY,
        SAML,
        ['Principal {"AWS": ["111122223333"]}'],
    ),
    (
        "principal-aws-account-covers-role",
        doc(stmt(principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, action="sts:AssumeRole")),
        request(
            actions=("sts:AssumeRole",), principal={"AWS": [f"arn:aws:iam::{ACCOUNT}:role/Admin"]}
        ),
        ALLOW,
        None,
        [],
    ),
    (
        "principal-arn-is-case-sensitive",
        doc(stmt(principal={"Federated": PROVIDER.upper()})),
        request(),
        DENY,
        SAML,
        ["does not match"],
    ),
    (
        "not-principal-excludes-us",
        doc(stmt(), {"Effect": "Deny", "NotPrincipal": {"Federated": PROVIDER}, "Action": "sts:*"}),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "not-principal-denies-others",
        doc(
            stmt(principal="*"),
            {"Effect": "Deny", "NotPrincipal": {"Federated": OTHER_PROVIDER}, "Action": "sts:*"},
        ),
        request(),
        DENY,
        SAML,
        ["explicit Deny of sts:AssumeRoleWithSAML"],
    ),
    (
        "action-case-insensitive",
        doc(stmt(action="STS:assumerolewithsaml")),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "action-wildcard-service",
        doc(stmt(action="sts:*")),
        request(actions=(SAML, TAG, SOURCE)),
        ALLOW,
        None,
        ["allows sts:TagSession", "allows sts:SetSourceIdentity"],
    ),
    ("action-wildcard-prefix", doc(stmt(action="sts:AssumeRole*")), request(), ALLOW, None, []),
    (
        "action-question-mark",
        doc(stmt(action="sts:?ssumeRoleWithSAML")),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "action-star-everything",
        doc(stmt(action="*")),
        request(actions=(SAML, TAG)),
        ALLOW,
        None,
        [],
    ),
    (
        "action-other-only",
        doc(stmt(action="sts:AssumeRoleWithWebIdentity")),
        request(),
        DENY,
        SAML,
        ["does not cover sts:AssumeRoleWithSAML"],
    ),
    (
        "not-action-covers-the-rest",
        doc(stmt(NotAction="sts:TagSession", action=None)),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "not-action-excludes",
        doc(stmt(NotAction="sts:TagSession", action=None)),
        request(actions=(SAML, TAG)),
        DENY,
        TAG,
        ["NotAction", "does not cover sts:TagSession"],
    ),
    (
        "tags-need-tag-session",
        doc(stmt(sid="Fed"), stmt(sid="Web", action="sts:AssumeRoleWithWebIdentity")),
        request(actions=(SAML, TAG), context=TAGS),
        DENY,
        TAG,
        [
            'No statement allows sts:TagSession (statements "Fed", "Web" allow only '
            "sts:AssumeRoleWithSAML, sts:AssumeRoleWithWebIdentity)"
        ],
    ),
    (
        "tags-allowed",
        doc(stmt(action=[SAML, TAG])),
        request(actions=(SAML, TAG), context=TAGS),
        ALLOW,
        None,
        ["allows sts:TagSession"],
    ),
    (
        "source-identity-needs-permission",
        doc(stmt(action=[SAML, TAG])),
        request(actions=(SAML, SOURCE)),
        DENY,
        SOURCE,
        ["No statement allows sts:SetSourceIdentity"],
    ),
    (
        "explicit-deny-wins",
        doc(stmt(action="sts:*"), stmt(effect="Deny", action=TAG)),
        request(actions=(SAML, TAG)),
        DENY,
        TAG,
        ["Statement 1 (Deny) matched: explicit Deny of sts:TagSession"],
    ),
    (
        "explicit-deny-beats-earlier-missing-allow",
        doc(stmt(action=TAG), stmt(effect="Deny", action=TAG, sid="NoTags")),
        request(actions=(SAML, TAG)),
        DENY,
        TAG,
        ['Statement "NoTags" (Deny)'],
    ),
    (
        "deny-with-unmet-condition-is-inert",
        doc(
            stmt(action="sts:*"),
            stmt({"StringEquals": {"saml:sub": "mallory@example.com"}}, effect="Deny"),
        ),
        request(),
        ALLOW,
        None,
        [],
    ),
    # --- String operators and case -------------------------------------------------
    (
        "sub-equals",
        doc(stmt({"StringEquals": {"SAML:sub": "alice@example.com"}})),
        request(),
        ALLOW,
        None,
        ['StringEquals SAML:sub = ["alice@example.com"] matched'],
    ),
    (
        "sub-other-user",
        doc(stmt({"StringEquals": {"SAML:sub": "alice@example.com"}}, sid="AllowAlice")),
        request(saml__sub="bob@example.com"),
        DENY,
        SAML,
        [
            'Statement "AllowAlice" (Allow): condition StringEquals SAML:sub = '
            '["alice@example.com"] did not match the request\'s ["bob@example.com"]'
        ],
    ),
    (
        "key-name-case-insensitive",
        doc(stmt({"StringEquals": {"SaMl:SuB": "alice@example.com"}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "value-case-sensitive",
        doc(stmt({"StringEquals": {"saml:sub": "Alice@Example.com"}})),
        request(),
        DENY,
        SAML,
        ["did not match"],
    ),
    (
        "ignore-case-value",
        doc(stmt({"StringEqualsIgnoreCase": {"saml:sub": "ALICE@EXAMPLE.COM"}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "not-equals-ignore-case",
        doc(stmt({"StringNotEqualsIgnoreCase": {"saml:sub": "ALICE@example.com"}})),
        request(),
        DENY,
        SAML,
        ["StringNotEqualsIgnoreCase"],
    ),
    (
        "values-are-ored",
        doc(stmt({"StringEquals": {"saml:sub": ["bob@example.com", "alice@example.com"]}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "keys-are-anded",
        doc(
            stmt({"StringEquals": {"saml:sub": "alice@example.com", "saml:sub_type": "transient"}})
        ),
        request(),
        DENY,
        SAML,
        ['saml:sub_type = ["transient"] did not match the request\'s ["persistent"]'],
    ),
    (
        "blocks-are-anded",
        doc(
            stmt(
                {
                    "StringEquals": {"saml:sub": "alice@example.com"},
                    "StringLike": {"saml:iss": "https://*"},
                }
            )
        ),
        request(),
        DENY,
        SAML,
        ["StringLike saml:iss"],
    ),
    (
        "aud-equals",
        doc(stmt({"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "aud-regional-differs",
        doc(stmt({"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}})),
        request(saml__aud="https://eu-west-1.signin.aws.amazon.com/saml"),
        DENY,
        SAML,
        ["eu-west-1"],
    ),
    (
        "aud-like-any-region",
        doc(stmt({"StringLike": {"SAML:aud": "https://*signin.aws.amazon.com/saml"}})),
        request(saml__aud="https://eu-west-1.signin.aws.amazon.com/saml"),
        ALLOW,
        None,
        [],
    ),
    (
        "iss-like",
        doc(stmt({"StringLike": {"saml:iss": "http://127.0.0.1:*/saml/metadata/"}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "like-question-mark-is-one-char",
        doc(stmt({"StringLike": {"saml:sub_type": "persisten?"}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "like-question-mark-not-zero",
        doc(stmt({"StringLike": {"saml:sub_type": "persistent?"}})),
        request(),
        DENY,
        SAML,
        ["did not match"],
    ),
    (
        "like-is-case-sensitive",
        doc(stmt({"StringLike": {"saml:sub": "ALICE@*"}})),
        request(),
        DENY,
        SAML,
        [],
    ),
    (
        "like-star-is-literal-in-equals",
        doc(stmt({"StringEquals": {"saml:sub": "*"}})),
        request(),
        DENY,
        SAML,
        [],
    ),
    (
        "not-like",
        doc(stmt({"StringNotLike": {"saml:sub": "*@evil.example"}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "not-equals-nor-of-values",
        doc(stmt({"StringNotEquals": {"saml:sub": ["bob@example.com", "alice@example.com"]}})),
        request(),
        DENY,
        SAML,
        [],
    ),
    (
        "namequalifier",
        doc(stmt({"StringEquals": {"saml:namequalifier": "kZzBrOZsCXkQ7Ny7AMd5P0Zr3fQ="}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "doc",
        doc(stmt({"StringEquals": {"saml:doc": f"{ACCOUNT}/Other"}})),
        request(),
        DENY,
        SAML,
        ["111122223333/fedmock"],
    ),
    (
        "sub-type",
        doc(stmt({"StringEquals": {"saml:sub_type": "persistent"}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    # --- Absent keys ----------------------------------------------------------------
    (
        "absent-key-equals-false",
        doc(stmt({"StringEquals": {"saml:sub": "alice@example.com"}})),
        bare_request(without("saml:sub")),
        DENY,
        SAML,
        ["the request has no saml:sub"],
    ),
    (
        "absent-key-negated-true",
        doc(stmt({"StringNotEquals": {"saml:sub": "bob@example.com"}})),
        bare_request(without("saml:sub")),
        ALLOW,
        None,
        ["negated operator holds"],
    ),
    (
        "absent-key-not-like-true",
        doc(stmt({"StringNotLike": {"aws:RequestTag/Project": "red*"}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "if-exists-absent-true",
        doc(stmt({"StringEqualsIfExists": {"aws:RequestTag/Project": "blue"}})),
        request(),
        ALLOW,
        None,
        ["IfExists passes"],
    ),
    (
        "if-exists-present-checked",
        doc(stmt({"StringEqualsIfExists": {"aws:RequestTag/Project": "blue"}}, action=[SAML, TAG])),
        request(actions=(SAML, TAG), context={"aws:RequestTag/Project": "red"}),
        DENY,
        SAML,
        ['did not match the request\'s ["red"]'],
    ),
    (
        "null-true-absent",
        doc(stmt({"Null": {"aws:RequestTag/Project": "true"}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "null-true-present",
        doc(stmt({"Null": {"saml:sub": "true"}})),
        request(),
        DENY,
        SAML,
        ["Null saml:sub"],
    ),
    ("null-false-present", doc(stmt({"Null": {"saml:sub": False}})), request(), ALLOW, None, []),
    (
        "null-empty-list-is-absent",
        doc(stmt({"Null": {"aws:TagKeys": "false"}})),
        request(aws__TagKeys=[]),
        DENY,
        SAML,
        ["has no aws:TagKeys"],
    ),
    # --- Set operators and multivalued keys -----------------------------------------
    (
        "for-all-values-subset",
        doc(
            stmt(
                {
                    "ForAllValues:StringEquals": {
                        "saml:edupersonaffiliation": ["staff", "member", "faculty"]
                    }
                }
            )
        ),
        request(),
        ALLOW,
        None,
        ["every value"],
    ),
    (
        "for-all-values-extra-value",
        doc(stmt({"ForAllValues:StringEquals": {"saml:edupersonaffiliation": ["staff"]}})),
        request(),
        DENY,
        SAML,
        ['the request\'s ["member"] did not match (of ["staff", "member"])'],
    ),
    (
        "for-all-values-absent-is-true",
        doc(stmt({"ForAllValues:StringEquals": {"saml:edupersonaffiliation": ["staff"]}})),
        bare_request(without("saml:edupersonaffiliation")),
        ALLOW,
        None,
        ["add a Null condition"],
    ),
    (
        "for-all-values-empty-is-true",
        doc(stmt({"ForAllValues:StringLike": {"aws:TagKeys": ["Project"]}})),
        request(aws__TagKeys=[]),
        ALLOW,
        None,
        [],
    ),
    (
        "for-all-values-with-null-guard",
        doc(
            stmt(
                {
                    "ForAllValues:StringEquals": {"saml:edupersonaffiliation": ["staff"]},
                    "Null": {"saml:edupersonaffiliation": "false"},
                }
            )
        ),
        bare_request(without("saml:edupersonaffiliation")),
        DENY,
        SAML,
        ["Null saml:edupersonaffiliation"],
    ),
    (
        "for-any-value-one-matches",
        doc(stmt({"ForAnyValue:StringEquals": {"saml:edupersonaffiliation": "staff"}})),
        request(),
        ALLOW,
        None,
        ['["staff"] matched'],
    ),
    (
        "for-any-value-none",
        doc(stmt({"ForAnyValue:StringEquals": {"saml:edupersonaffiliation": "student"}})),
        request(),
        DENY,
        SAML,
        ["none of the request's"],
    ),
    (
        "for-any-value-absent-is-false",
        doc(stmt({"ForAnyValue:StringEquals": {"saml:edupersonaffiliation": "staff"}})),
        bare_request(without("saml:edupersonaffiliation")),
        DENY,
        SAML,
        ["has no saml:edupersonaffiliation"],
    ),
    (
        "for-any-value-if-exists-absent",
        doc(stmt({"ForAnyValue:StringEqualsIfExists": {"saml:edupersonaffiliation": "staff"}})),
        bare_request(without("saml:edupersonaffiliation")),
        ALLOW,
        None,
        [],
    ),
    (
        "for-all-values-not-equals",
        doc(stmt({"ForAllValues:StringNotEquals": {"saml:edupersonaffiliation": "student"}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "for-any-value-not-equals",
        doc(
            stmt(
                {"ForAnyValue:StringNotEquals": {"saml:edupersonaffiliation": ["staff", "member"]}}
            )
        ),
        request(),
        DENY,
        SAML,
        [],
    ),
    (
        "plain-op-on-multivalued-any",
        doc(stmt({"StringEquals": {"saml:edupersonaffiliation": "staff"}})),
        request(),
        ALLOW,
        None,
        ["requires ForAnyValue: or ForAllValues:"],
    ),
    (
        "plain-negated-on-multivalued-is-complement",
        doc(stmt({"StringNotEquals": {"saml:edupersonaffiliation": "staff"}})),
        request(),
        DENY,
        SAML,
        ["has several values"],
    ),
    (
        "one-value-list-is-the-value",
        doc(stmt({"StringEquals": {"saml:edupersonprincipalname": "alice@example.com"}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "tag-keys-for-all-values",
        doc(
            stmt(
                {"ForAllValues:StringEquals": {"aws:TagKeys": ["Project", "CostCenter"]}},
                action=[SAML, TAG],
            )
        ),
        request(actions=(SAML, TAG), context=TAGS),
        ALLOW,
        None,
        [],
    ),
    (
        "tag-keys-unlisted-key",
        doc(stmt({"ForAllValues:StringEquals": {"aws:TagKeys": ["Project"]}}, action=[SAML, TAG])),
        request(actions=(SAML, TAG), context=TAGS),
        DENY,
        SAML,
        ['["CostCenter"] did not match'],
    ),
    (
        "request-tag-value",
        doc(stmt({"StringEquals": {"aws:RequestTag/Project": "blue"}}, action=[SAML, TAG])),
        request(actions=(SAML, TAG), context=TAGS),
        ALLOW,
        None,
        [],
    ),
    (
        "request-tag-key-name-case",
        doc(stmt({"StringEquals": {"aws:requesttag/project": "blue"}}, action=[SAML, TAG])),
        request(actions=(SAML, TAG), context=TAGS),
        ALLOW,
        None,
        [],
    ),
    (
        "tag-session-only-with-tag-condition",
        doc(
            stmt(action=SAML),
            stmt(
                {"StringLike": {"aws:RequestTag/Project": ["blue", "green"]}},
                action=TAG,
                sid="Tags",
            ),
        ),
        request(actions=(SAML, TAG), context={**TAGS, "aws:RequestTag/Project": "red"}),
        DENY,
        TAG,
        ['Statement "Tags" (Allow): condition StringLike aws:RequestTag/Project'],
    ),
    # --- Policy variables (2012-10-17) ---------------------------------------------
    (
        "variable-tag-equals-sub",
        doc(stmt({"StringEquals": {"aws:RequestTag/Email": "${saml:sub}"}}, action=[SAML, TAG])),
        request(actions=(SAML, TAG), context={"aws:RequestTag/Email": "alice@example.com"}),
        ALLOW,
        None,
        ['variables resolved: ["alice@example.com"]'],
    ),
    (
        "variable-tag-other-user",
        doc(stmt({"StringEquals": {"aws:RequestTag/Email": "${SAML:SUB}"}}, action=[SAML, TAG])),
        request(actions=(SAML, TAG), context={"aws:RequestTag/Email": "bob@example.com"}),
        DENY,
        SAML,
        ["did not match"],
    ),
    (
        "variable-value-is-literal-in-like",
        doc(stmt({"StringLike": {"saml:sub": "${aws:RequestTag/Pattern}"}}, action=[SAML, TAG])),
        request(actions=(SAML, TAG), context={"aws:RequestTag/Pattern": "*"}),
        DENY,
        SAML,
        [],
    ),
    (
        "variable-literal-star",
        doc(stmt({"StringLike": {"aws:RequestTag/Note": "a${*}b*"}}, action=[SAML, TAG])),
        request(actions=(SAML, TAG), context={"aws:RequestTag/Note": "a*bc"}),
        ALLOW,
        None,
        [],
    ),
    (
        "variable-literal-star-not-wildcard",
        doc(stmt({"StringLike": {"aws:RequestTag/Note": "a${*}b"}}, action=[SAML, TAG])),
        request(actions=(SAML, TAG), context={"aws:RequestTag/Note": "axb"}),
        DENY,
        SAML,
        [],
    ),
    (
        "variable-absent-fails-even-negated",
        doc(stmt({"StringNotEquals": {"saml:sub": "${aws:RequestTag/Boss}"}})),
        request(),
        DENY,
        SAML,
        ["no single value"],
    ),
    (
        "variable-multivalued-has-no-value",
        doc(stmt({"StringEquals": {"saml:sub": "${saml:edupersonaffiliation}"}})),
        request(),
        DENY,
        SAML,
        ["no single value"],
    ),
    (
        "variable-default",
        doc(stmt({"StringEquals": {"saml:sub_type": "${aws:RequestTag/Type, 'persistent'}"}})),
        request(),
        ALLOW,
        None,
        [],
    ),
    (
        "variable-default-quote",
        doc(
            stmt(
                {"StringEquals": {"aws:RequestTag/Q": "${aws:RequestTag/None, 'it''s'}"}},
                action=[SAML, TAG],
            )
        ),
        request(actions=(SAML, TAG), context={"aws:RequestTag/Q": "it's"}),
        ALLOW,
        None,
        [],
    ),
    (
        "variable-in-arn",
        doc(
            stmt(
                {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:role/*"}},
                principal="*",
                action="sts:AssumeRole",
            )
        ),
        request(
            actions=("sts:AssumeRole",),
            aws__PrincipalArn=f"arn:aws:iam::{ACCOUNT}:role/Admin",
            aws__PrincipalAccount=ACCOUNT,
        ),
        ALLOW,
        None,
        [],
    ),
    (
        "variable-2008-is-plain-text",
        doc(stmt({"StringEquals": {"saml:sub": "${saml:sub}"}}), version="2008-10-17"),
        request(),
        DENY,
        SAML,
        ['["${saml:sub}"] did not match'],
    ),
    # --- Bool, numbers, dates, ARNs, IP addresses -----------------------------------
    (
        "bool-true",
        doc(stmt({"Bool": {"aws:SecureTransport": "true"}})),
        request(aws__SecureTransport=True),
        ALLOW,
        None,
        [],
    ),
    (
        "bool-json-false-vs-true",
        doc(stmt({"Bool": {"aws:SecureTransport": False}})),
        request(aws__SecureTransport=True),
        DENY,
        SAML,
        ['Bool aws:SecureTransport = ["false"]'],
    ),
    (
        "numeric-less-than",
        doc(stmt({"NumericLessThan": {"aws:RequestTag/CostCenter": 100}}, action=[SAML, TAG])),
        request(actions=(SAML, TAG), context=TAGS),
        ALLOW,
        None,
        [],
    ),
    (
        "numeric-greater-than-fails",
        doc(stmt({"NumericGreaterThan": {"aws:RequestTag/CostCenter": "42"}}, action=[SAML, TAG])),
        request(actions=(SAML, TAG), context=TAGS),
        DENY,
        SAML,
        [],
    ),
    (
        "numeric-equals-decimal",
        doc(stmt({"NumericEquals": {"aws:RequestTag/CostCenter": "42.0"}}, action=[SAML, TAG])),
        request(actions=(SAML, TAG), context=TAGS),
        ALLOW,
        None,
        [],
    ),
    (
        "numeric-not-a-number-in-request",
        doc(stmt({"NumericEquals": {"saml:sub": "1"}})),
        request(),
        DENY,
        SAML,
        [],
    ),
    (
        "date-less-than",
        doc(stmt({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})),
        request(aws__CurrentTime="2026-05-01T12:00:00Z"),
        ALLOW,
        None,
        [],
    ),
    (
        "date-greater-than-epoch",
        doc(stmt({"DateGreaterThan": {"aws:CurrentTime": "1893456000"}})),
        request(aws__CurrentTime="2026-05-01T12:00:00Z"),
        DENY,
        SAML,
        [],
    ),
    (
        "arn-like-parts",
        doc(
            stmt(
                {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/Admin*"}},
                principal="*",
                action="sts:AssumeRole",
            )
        ),
        request(
            actions=("sts:AssumeRole",), aws__PrincipalArn=f"arn:aws:iam::{ACCOUNT}:role/AdminRole"
        ),
        ALLOW,
        None,
        [],
    ),
    (
        "arn-star-does-not-cross-colon",
        doc(
            stmt(
                {"ArnLike": {"aws:PrincipalArn": "arn:aws:*"}},
                principal="*",
                action="sts:AssumeRole",
            )
        ),
        request(
            actions=("sts:AssumeRole",), aws__PrincipalArn=f"arn:aws:iam::{ACCOUNT}:role/Admin"
        ),
        DENY,
        "sts:AssumeRole",
        [],
    ),
    (
        "arn-not-equals",
        doc(
            stmt(
                {"ArnNotEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/Admin"}},
                principal="*",
                action="sts:AssumeRole",
            )
        ),
        request(
            actions=("sts:AssumeRole",), aws__PrincipalArn=f"arn:aws:iam::{ACCOUNT}:role/Admin"
        ),
        DENY,
        "sts:AssumeRole",
        [],
    ),
    (
        "ip-address",
        doc(stmt({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
        request(aws__SourceIp="10.1.2.3"),
        ALLOW,
        None,
        [],
    ),
    (
        "not-ip-address",
        doc(stmt({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}})),
        request(aws__SourceIp="192.168.1.1"),
        DENY,
        SAML,
        [],
    ),
]


@pytest.mark.parametrize(
    ("policy", "req", "allowed", "denied_action", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_evaluate(policy, req, allowed, denied_action, words):
    for form in (policy, json.dumps(policy, indent=2)):  # a dict and the text IAM stores
        decision = p.evaluate(form, req)
        assert decision.allowed is allowed, decision.explanation
        assert decision.denied_action == denied_action
        text = "\n".join(decision.explanation)
        assert decision.explanation, "every decision says why"
        for word in words:
            assert word in text, text


def test_the_table_is_large_and_ids_unique():
    assert len(CASES) >= 60
    assert len({case[0] for case in CASES}) == len(CASES)


# --- Malformed policies -------------------------------------------------------------

MALFORMED = [
    ("not-json", '{"Statement": [', "Syntax errors in policy.", "not valid JSON"),
    ("not-an-object", "[]", "Syntax errors in policy.", "not a JSON object"),
    (
        "duplicate-name",
        '{"Statement": {"Effect": "Allow", "Effect": "Deny"}}',
        "Syntax errors in policy.",
        "appears twice",
    ),
    ("bad-version", doc(stmt(), version="2020-01-01"), "Syntax errors in policy.", "Version"),
    ("no-statement", {"Version": "2012-10-17"}, "Syntax errors in policy.", "no Statement"),
    ("empty-statement-list", {"Statement": []}, "Syntax errors in policy.", "empty"),
    ("unknown-effect", doc(stmt(effect="Alow")), "Syntax errors in policy.", '"Alow"'),
    (
        "missing-action",
        doc({"Effect": "Allow", "Principal": {"Federated": PROVIDER}}),
        "Policy statement must contain actions.",
        "Action",
    ),
    (
        "action-without-vendor",
        doc(stmt(action="AssumeRole")),
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        "AssumeRole",
    ),
    (
        "action-not-string",
        doc(stmt(action=["sts:AssumeRole", 5])),
        "Syntax errors in policy.",
        "Action",
    ),
    ("resource-prohibited", doc(stmt(Resource="*")), "Has prohibited field Resource", "Resource"),
    (
        "missing-principal",
        doc({"Effect": "Allow", "Action": SAML}),
        "Missing required field Principal",
        "Principal",
    ),
    (
        "unknown-principal-type",
        doc(stmt(principal={"Federate": PROVIDER})),
        'Invalid principal in policy: {"Federate": "' + PROVIDER + '"}',
        "Federate",
    ),
    (
        "unknown-operator",
        doc(stmt({"StringEqual": {"saml:sub": "a"}})),
        "Syntax errors in policy.",
        "StringEqual",
    ),
    (
        "unknown-set-operator",
        doc(stmt({"ForSomeValues:StringEquals": {"saml:sub": "a"}})),
        "Syntax errors in policy.",
        "ForSomeValues",
    ),
    (
        "null-if-exists",
        doc(stmt({"NullIfExists": {"saml:sub": "true"}})),
        "Syntax errors in policy.",
        "NullIfExists",
    ),
    (
        "operator-case",
        doc(stmt({"stringequals": {"saml:sub": "a"}})),
        "Syntax errors in policy.",
        "stringequals",
    ),
    (
        "condition-value-object",
        doc(stmt({"StringEquals": {"saml:sub": {"a": 1}}})),
        "Syntax errors in policy.",
        "condition value",
    ),
    (
        "condition-value-null",
        doc(stmt({"StringEquals": {"saml:sub": None}})),
        "Syntax errors in policy.",
        "null",
    ),
    (
        "condition-nested-list",
        doc(stmt({"StringEquals": {"saml:sub": [["a"]]}})),
        "Syntax errors in policy.",
        "condition value",
    ),
    (
        "numeric-not-a-number",
        doc(stmt({"NumericLessThan": {"aws:MultiFactorAuthAge": "soon"}})),
        "Syntax errors in policy.",
        "not a number",
    ),
    (
        "bool-not-boolean",
        doc(stmt({"Bool": {"aws:SecureTransport": "yes"}})),
        "Syntax errors in policy.",
        "neither true nor false",
    ),
    ("unknown-element", doc(stmt(Condtion={})), "Syntax errors in policy.", "Condtion"),
    (
        "duplicate-sid",
        doc(stmt(sid="A"), stmt(sid="A")),
        "Statement IDs (SID) in a single policy must be unique.",
        "",
    ),
    (
        "deep-nesting",
        '{"Statement": ' + "[" * 1500 + "]" * 1500 + "}",
        "Syntax errors in policy.",
        "",
    ),
]


@pytest.mark.parametrize(
    ("policy", "message", "detail"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_policy(policy, message, detail):
    with pytest.raises(StsError) as caught:
        p.evaluate(policy, request())
    assert caught.value.code == "MalformedPolicyDocument"
    assert caught.value.message == message
    assert caught.value.status == 400
    assert detail in "\n".join(caught.value.explanation)


def test_policy_size_is_capped_without_counting_white_space():
    def with_sub(sub):
        return json.dumps(doc(stmt({"StringEquals": {"saml:sub": sub}})))

    overhead = p.policy_size(with_sub(""))
    at_cap = with_sub("a" * (p.TRUST_POLICY_HARD_MAX - overhead))
    assert p.policy_size(at_cap) == p.TRUST_POLICY_HARD_MAX
    padding = " " * 50_000  # white space is free, as IAM counts it
    assert not p.evaluate(padding + at_cap + padding, request()).allowed  # parsed, evaluated
    with pytest.raises(StsError) as caught:
        p.evaluate(with_sub("a" * (p.TRUST_POLICY_HARD_MAX - overhead + 1)), request())
    assert caught.value.code == "LimitExceeded"
    assert caught.value.message == "Cannot exceed quota for ACLSizePerRole: 4096"
    assert "4097 characters" in caught.value.explanation[0]
    with pytest.raises(StsError) as caught:
        p.evaluate(" " * (p.POLICY_DOCUMENT_MAX_TEXT + 1), request())
    assert caught.value.code == "MalformedPolicyDocument"


def test_parse_once_evaluate_many():
    parsed = p.parse_policy(
        json.dumps(doc(stmt({"StringEquals": {"saml:sub": "alice@example.com"}})))
    )
    assert p.evaluate(parsed, request()).allowed
    assert not p.evaluate(parsed, request(saml__sub="bob@example.com")).allowed


def test_a_request_with_no_action_is_a_programming_error():
    with pytest.raises(ValueError):
        p.evaluate(doc(stmt()), request(actions=()))


# --- Wildcards: linear by construction ----------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("", "", True),
        ("", "a", False),
        ("*", "", True),
        ("*", "anything", True),
        ("a*", "a", True),
        ("*a", "ba", True),
        ("*a", "ab", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a**b", "ab", True),
        ("*.example.com", "x.example.com", True),
        ("*.example.com", "example.com", False),
        ("a*b*c", "aXbYbZc", True),
        ("a*b*c", "aXbYbZ", False),
        ("[ab]", "a", False),  # no character classes: brackets are literal
        ("[ab]", "[ab]", True),
        ("\\*", "\\anything", True),  # no escapes either
    ],
)
def test_glob(pattern, value, expected):
    assert p.GlobSet([pattern]).match(value) is expected


def test_globset_matches_any_of_its_patterns():
    patterns = p.GlobSet(["staff", "fac*", "?tudent"])
    assert [patterns.match(v) for v in ("staff", "faculty", "student", "alum")] == [
        True,
        True,
        True,
        False,
    ]


def test_pathological_pattern_costs_one_step_per_character():
    # A backtracking matcher (or a regex with nested stars) takes time exponential or
    # polynomial in these sizes; the automaton takes exactly one step per character.
    pattern = "*a" * 200 + "*b"
    value = "a" * 100_000
    glob = p.GlobSet([pattern] * 10)
    assert glob.match(value) is False
    assert glob.steps == len(value)
    assert glob.match(value + "b") is True
    assert glob.steps == len(value) + 1


def test_a_dead_automaton_stops_early():
    glob = p.GlobSet(["abc*"])
    assert glob.match("x" + "y" * 10_000) is False
    assert glob.steps == 1
