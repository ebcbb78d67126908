"""The bare RQ job: does nothing. Imported by plain ``rq worker`` processes (no Django)."""


def noop() -> None:
    return None
