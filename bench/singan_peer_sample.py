"""Sample a trained peer (kligvasser/SinGAN) run: its own --evaluation rule (every BatchNorm in train
mode, one image per batch: each sample its own statistics) and BatchNorm eval mode (running averages).
Runs the peer's own classes (imported from its work tree); writes an .npy [n, 3, H, W] in [-1, 1] per rule
and the reconstruction. SEED is the run's training seed: seeding with it before the pyramid is built draws the same fixed
noises as training did (the peer does not save them), so the reconstruction is the run's own.
Usage: singan_peer_sample.py PEER_TREE RUN_DIR IMAGE MIN MAX N SEED OUT_PREFIX"""
import sys, types, copy
peer, run, image, mn, mx, n, seed, out = sys.argv[1:9]
sys.path.insert(0, f"{peer}/generation")
import numpy as np, torch
torch.set_num_threads(1)
from trainer import Trainer
from data import get_loader
args = types.SimpleNamespace(root=image, batch_size=1, crop_size=0, min_size=int(mn), max_size=int(mx),
                             scale_factor_init=0.75, device="cpu", gen_model="g_multivanilla", max_features=32,
                             min_features=32, num_blocks=5, kernel_size=3, padding=0, use_tb=False,
                             model_to_load=f"{run}/g_multivanilla.pt", amps_to_load=f"{run}/amps.pt", num_steps=int(n))
torch.manual_seed(int(seed))    # the training seed, as the peer's main.py: its fixed noises are drawn again
t = Trainer(args)
loader = get_loader(args)
t._init_global(loader)
loader = t._init_eval(loader)   # fresh modules: every scale in train mode, as the peer's eval() samples
reals = {k: v.clone().unsqueeze(0) for k, v in loader.dataset.reals.items()}
amps = loader.dataset.amps
noises = {k: v.clone().unsqueeze(0) for k, v in loader.dataset.noises.items()}
res = {}
for rule in ("train", "eval"):
    g = copy.deepcopy(t.g_model)
    if rule == "eval":
        for m in g.modules():
            m.training = False
    torch.manual_seed(int(seed) + 1000)
    outs = []
    with torch.no_grad():
        for i in range(int(n)):
            outs.append(g(reals, amps))
    res[rule] = torch.cat(outs).clamp(-1, 1).numpy()
    np.save(f"{out}_{rule}.npy", res[rule])
g = copy.deepcopy(t.g_model)
for m in g.modules():
    m.training = False
with torch.no_grad():
    rec = g(reals, amps, noises)   # the fixed-noise reconstruction, BatchNorm eval (as the peer saves s<N>_fixed)
np.save(f"{out}_recon.npy", rec.clamp(-1, 1).numpy())
np.save(f"{out}_real.npy", reals[list(reals)[-1]].numpy())
print("ok", {k: v.shape for k, v in res.items()})
