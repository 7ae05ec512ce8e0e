"""``fewgan report`` (being built: issue "Show the work")."""


def register(sub) -> None:
    pass
