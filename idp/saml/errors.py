class SamlError(Exception):
    """Something a caller sent that we refuse; carries what went wrong and how to fix it."""

    def __init__(self, title: str, detail: str = "", hint: str = "", status: int = 400):
        super().__init__(f"{title}: {detail}" if detail else title)
        self.title = title
        self.detail = detail
        self.hint = hint
        self.status = status
