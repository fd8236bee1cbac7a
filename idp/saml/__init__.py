"""The SAML protocol core: pure functions over bytes, lxml and dataclasses.

Nothing in this package imports Django, touches the ORM or sees a request.
"""
