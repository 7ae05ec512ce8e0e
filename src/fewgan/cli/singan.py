"""``fewgan singan train|sample`` (being built: issue "SinGAN on one image")."""


def register(sub) -> None:
    from fewgan.cli import add_group

    add_group(sub, "singan", "SinGAN on one image: train, sample")
