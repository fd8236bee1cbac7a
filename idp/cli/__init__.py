"""The `fedmock` command: a directory user's AWS credentials on the command line.

A client of fedmock and of STS, nothing more: it imports requests, lxml and boto3 (each
only on the path that needs it), never Django, because `credential_process` runs it
before every AWS CLI call and a cached answer must come back in a blink.
"""
