"""The command's one refusal: what failed (AWS's error code or the IdP's title), and the fix."""


class CliError(Exception):
    """Rendered as one line on stderr; `status` is the exit code (2: the command line)."""

    def __init__(self, what: str, message: str, fix: str = "", status: int = 1):
        super().__init__(message)
        self.what = what
        self.message = message
        self.fix = fix
        self.status = status

    def line(self) -> str:
        text = f"fedmock: {self.what}: {self.message.rstrip('. ')}."
        if self.fix:
            text += f" Fix: {self.fix}"
        # One line whatever the server put in its message: a newline would split it.
        return " ".join(text.split())
