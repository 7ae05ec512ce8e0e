"""``fewgan eval`` (being built: issue "Evaluation")."""


def register(sub) -> None:
    pass
