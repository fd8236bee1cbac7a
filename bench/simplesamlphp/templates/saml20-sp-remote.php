<?php
// AWS sign-in, as fedmock's AWS preset: a persistent NameID (SimpleSAMLphp hashes the
// user's uid with its salt; fedmock derives its own), only the AWS attributes released.
$metadata[@@SP_ENTITY_ID@@] = [
    'AssertionConsumerService' => @@SP_ACS@@,
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    'attributes' => @@RELEASED_ATTRIBUTES@@,
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'saml20.sign.response' => true,
    'saml20.sign.assertion' => true,
];
