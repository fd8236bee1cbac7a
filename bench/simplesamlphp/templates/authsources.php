<?php
// The bench's one user, with the attributes fedmock sends the AWS SP for them (copied from
// fedmock's own sample response at the start of the run).
$config = [
    'admin' => ['core:AdminPassword'],
    'bench-userpass' => [
        'exampleauth:UserPass',
        @@USER_PASSWORD@@ => @@USER_ATTRIBUTES@@,
    ],
];
