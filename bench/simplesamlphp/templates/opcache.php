<?php
// The bench's probe: is the opcode cache on in this Apache's PHP, and is it being used?
header('Content-Type: application/json');
$status = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
echo json_encode([
    'enabled' => is_array($status) && $status['opcache_enabled'],
    'hits' => is_array($status) ? $status['opcache_statistics']['hits'] : 0,
    'misses' => is_array($status) ? $status['opcache_statistics']['misses'] : 0,
    'cached_scripts' => is_array($status) ? $status['opcache_statistics']['num_cached_scripts'] : 0,
    'php' => PHP_VERSION,
    'sapi' => PHP_SAPI,
]);
