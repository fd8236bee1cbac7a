"""gunicorn's logger with a cheap access line (gunicorn.conf.py's logger_class).

gunicorn's own access() builds a dict of some thirty atoms plus every request header,
response header and environ variable, for each request, then %-formats its format
string over it: a few percent of a sign-on's time under load. This logger writes the
line of gunicorn's default format (Apache's combined log) from the few values it holds,
with the request's duration in seconds added at the end:

    127.0.0.1 - - [21/Nov/2026:20:43:50 +0000] "GET /saml/init/?sp=... HTTP/1.1" 200 9105 "-"
    "wrk" 0.004127    (one line)

(address, user of HTTP Basic if any, time, request line, status, bytes sent, referrer,
user agent, seconds).
A deployment that sets its own access_log_format gets gunicorn's way, unchanged.
No Django here: gunicorn's master loads this class before any worker starts.
"""

import logging
import time

from gunicorn import glogging
from gunicorn.config import AccessLogFormat


class AccessLogger(glogging.Logger):
    _stamp_second = -1
    _stamp = ""

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        if self.cfg.access_log_format != AccessLogFormat.default:
            return super().access(resp, req, environ, request_time)
        try:
            line = self.line(resp, environ, request_time)
            if not self._write_plain(line):
                self.access_log.info(line)
        except Exception:
            # As gunicorn does: a bad value never fails the request, the error log says why.
            self.exception("writing the access log failed")

    def line(self, resp, environ, request_time) -> str:
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        user = self._get_user(environ) if "HTTP_AUTHORIZATION" in environ else None
        return (
            f"{environ.get('REMOTE_ADDR', '-')} - {user or '-'} {self.now()} "
            f'"{environ["REQUEST_METHOD"]} {environ["RAW_URI"]} {environ["SERVER_PROTOCOL"]}" '
            f"{status} {'-' if sent is None else sent} "
            f'"{environ.get("HTTP_REFERER", "-")}" "{environ.get("HTTP_USER_AGENT", "-")}" '
            f"{request_time.seconds}.{request_time.microseconds:06d}"
        )

    def _write_plain(self, line: str) -> bool:
        """Write the line straight to gunicorn's own file or stdout handler, as its "%(message)s"
        formatter would, skipping the LogRecord (half this method's cost). Anything else (a
        logconfig's handlers, syslog, filters) goes through logging: False."""
        log = self.access_log
        handlers = log.handlers
        if (
            len(handlers) != 1
            or log.filters
            or not log.isEnabledFor(logging.INFO)
            or type(handlers[0]) not in (logging.StreamHandler, logging.FileHandler)
        ):
            return False
        handler = handlers[0]
        formatter = handler.formatter
        if handler.filters or formatter is None or formatter._fmt != self.access_fmt:
            return False
        if handler.level > logging.INFO or handler.stream is None:
            return False  # a closed file: emit() opens it again
        with handler.lock:  # the lock gunicorn's reopen_files (SIGUSR1) takes too
            handler.stream.write(line + handler.terminator)
            handler.stream.flush()
        return True

    def now(self) -> str:
        """The Common Log Format time, formatted once a second rather than once a request."""
        second = int(time.time())
        if second != self._stamp_second:
            self._stamp = time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second))
            self._stamp_second = second
        return self._stamp
