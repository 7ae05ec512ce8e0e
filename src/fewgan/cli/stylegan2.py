"""``fewgan stylegan2 train|generate`` (being built: issue "Data-efficient StyleGAN2")."""


def register(sub) -> None:
    from fewgan.cli import add_group

    add_group(sub, "stylegan2", "data-efficient StyleGAN2 on a folder of images: train, generate")
