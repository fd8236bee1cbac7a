// The SAML POST binding: send the signed response on to the service provider's ACS.
document.forms[0].submit();
