"""``fewgan weights`` (being built: issue "Evaluation")."""


def register(sub) -> None:
    pass
