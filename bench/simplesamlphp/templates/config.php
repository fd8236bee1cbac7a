<?php
// SimpleSAMLphp 1.19 for fedmock's `make bench` peer run, written per run by
// bench/simplesamlphp/server.py (the placeholders become PHP literals). Everything not
// set here keeps SimpleSAMLphp's default, as an installation from the package would.
$config = [
    'baseurlpath' => 'simplesaml/',
    'certdir' => @@CERT_DIR@@,
    'loggingdir' => @@LOG_DIR@@,
    'datadir' => @@DATA_DIR@@,
    'tempdir' => @@TEMP_DIR@@,
    'metadata.sources' => [['type' => 'flatfile', 'directory' => @@METADATA_DIR@@]],
    'secretsalt' => @@SECRET_SALT@@,
    'auth.adminpassword' => @@ADMIN_PASSWORD@@,
    'technicalcontact_name' => 'fedmock bench',
    'technicalcontact_email' => 'bench@example.org',
    'timezone' => 'UTC',

    'production' => true,
    'showerrors' => false,
    'errorreporting' => false,
    'admin.checkforupdates' => false,
    'debug' => ['saml' => false, 'backtraces' => false, 'validatexml' => false],

    // As the package's config.php: NOTICE to a log, and the statistics line of every
    // sign-on (core:StatisticsWithAttribute below) at notice, like fedmock's audit row.
    'logging.level' => SimpleSAML\Logger::NOTICE,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'statistics.out' => [['class' => 'core:Log', 'level' => 'notice']],

    'enable.saml20-idp' => true,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],

    // PHP's own sessions (files), SimpleSAMLphp's default store. PHP locks a session's
    // file for the length of a request, so the bench signs in one session per wrk
    // connection slot rather than sending 16 connections through one lock.
    'store.type' => 'phpsession',
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.phpsession.savepath' => @@SESSION_DIR@@,
    'session.phpsession.httponly' => true,
    'session.authtoken.cookiename' => 'SimpleSAMLAuthToken',
    'session.cookie.secure' => false, // plain http on 127.0.0.1
    'session.duration' => 8 * 60 * 60,

    // The package's config.php's filters, less its consent and URN-prefix examples.
    'authproc.idp' => [
        30 => 'core:LanguageAdaptor',
        45 => [
            'class' => 'core:StatisticsWithAttribute',
            'attributename' => 'realm',
            'type' => 'saml20-idp-SSO',
        ],
        50 => 'core:AttributeLimit',
        99 => 'core:LanguageAdaptor',
    ],
];
