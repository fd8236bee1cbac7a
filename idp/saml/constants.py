SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XS = "http://www.w3.org/2001/XMLSchema"

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_SOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
BINDING_PAOS = "urn:oasis:names:tc:SAML:2.0:bindings:PAOS"

# The ECP profile (SAML profiles §4.2): a SOAP 1.1 envelope, its ecp: and paos: header blocks.
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ACTOR_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"
ECP = "urn:oasis:names:tc:SAML:2.0:profiles:SSO:ecp"
PAOS = "urn:liberty:paos:2003-08"

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS_NO_PASSIVE = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
STATUS_INVALID_NAMEID_POLICY = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"
STATUS_NO_AUTHN_CONTEXT = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext"

NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_FORMATS = (NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_EMAIL, NAMEID_UNSPECIFIED)

ATTRNAME_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
ATTRNAME_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
ATTRNAME_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"

AUTHN_CONTEXT_PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105
CONFIRMATION_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"

SIG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SIG_RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
SIG_RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
SIG_RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
DIGEST_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
DIGEST_SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
DIGEST_SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"

XENC = "http://www.w3.org/2001/04/xmlenc#"
ENC_AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
ENC_AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
KEY_TRANSPORT_RSA_OAEP = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
