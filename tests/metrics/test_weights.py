"""Weights lookup, import (hash check), fetch from a localhost server, ``fewgan weights``, golden values."""

import hashlib
import http.server
import os
import threading
import warnings
from functools import partial

import numpy as np
import pytest
import torch

from fewgan.cli import main
from fewgan.errors import FewganError
from fewgan.metrics import features
from fewgan.metrics.features import WEIGHTS_NAMES, WEIGHTS_SHA256, WeightsMissing

from .fixtures.random_inception import save_random_weights


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub folder and no environment variable."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(features.ENV_VAR, raising=False)
    return tmp_path / "hub" / "checkpoints"


def test_lookup_order(hub, tmp_path, monkeypatch):
    hub.mkdir(parents=True)
    in_hub = hub / WEIGHTS_NAMES[1]  # torch-fidelity's name is found too
    in_hub.write_bytes(b"hub")
    assert features.find_weights() == in_hub
    (hub / WEIGHTS_NAMES[0]).write_bytes(b"hub0")
    assert features.find_weights() == hub / WEIGHTS_NAMES[0]  # pytorch-fid's name first
    env = tmp_path / "env.pth"
    env.write_bytes(b"env")
    monkeypatch.setenv(features.ENV_VAR, str(env))
    assert features.find_weights() == env
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"x")
    assert features.find_weights(explicit) == explicit


def test_missing_weights_message_says_what_where_and_how(hub, tmp_path, monkeypatch):
    with pytest.raises(WeightsMissing) as err:
        features.find_weights()
    msg = str(err.value)
    assert "\n" not in msg and WEIGHTS_NAMES[0] in msg and str(hub) in msg
    assert "fewgan weights import FILE" in msg and "fewgan weights fetch" in msg and features.ENV_VAR in msg
    assert isinstance(err.value, FewganError)
    monkeypatch.setenv(features.ENV_VAR, str(tmp_path / "typo.pth"))
    with pytest.raises(WeightsMissing, match="typo.pth"):
        features.find_weights()  # a wrong variable does not fall through to another file
    with pytest.raises(WeightsMissing, match="nothere.pth"):
        features.find_weights(tmp_path / "nothere.pth")


def test_not_a_state_dict_is_a_one_line_error(hub, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(FewganError, match="cannot be read"):
        features.load_inception(bad)
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3)}, wrong)
    with pytest.raises(FewganError, match="not the FID Inception-v3 state dict"):
        features.load_inception(wrong)


def test_random_weights_through_the_environment_variable(hub, tmp_path, monkeypatch):
    path = save_random_weights(tmp_path)
    monkeypatch.setenv(features.ENV_VAR, str(path))
    with pytest.warns(UserWarning, match="not the FID Inception weights"):
        model, info = features.load_inception()
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and info["reference"] is False
    assert not model.training
    torch.testing.assert_close(model.Mixed_7c.branch_pool.bn.running_var,
                               torch.load(path, weights_only=True)["Mixed_7c.branch_pool.bn.running_var"])
    imgs = torch.rand(2, 1, 24, 24) * 2 - 1
    f = features.extract_features(imgs, progress=False)
    assert f.shape == (2, 2048) and f.dtype == np.float32 and np.isfinite(f).all()
    info = features.feature_info(resize="clean", n=2)
    assert info["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["resize"] == "clean" and info["n"] == 2 and info["layer"] == "2048"


def test_model_is_cached_per_process_and_extraction_without_weights_stops(hub, tmp_path):
    path = save_random_weights(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not the reference weights (warned once per process)
        a, _ = features.load_inception(path)
        b, _ = features.load_inception(path)
    assert a is b
    with pytest.raises(WeightsMissing, match="fewgan weights fetch"):
        features.extract_features(torch.zeros(2, 1, 8, 8), progress=False)
    status = features.weights_status(path)
    assert status["found"] == str(path) and status["reference"] is False and status["error"] is None
    assert [c["source"] for c in status["candidates"]][:2] == ["argument", f"${features.ENV_VAR}"]
    assert "fewgan weights import" in features.weights_status()["error"]


def test_import_checks_the_hash(hub, tmp_path):
    src = tmp_path / "download.pth"
    src.write_bytes(b"some bytes that are not the weights")
    with pytest.raises(FewganError, match="sha256 is .* expected " + WEIGHTS_SHA256):
        features.import_weights(src)
    assert not hub.exists() or not any(hub.iterdir())  # nothing written
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = features.import_weights(src, expected_sha256=sha)
    assert dest == hub / WEIGHTS_NAMES[0] and dest.read_bytes() == src.read_bytes()
    assert features.find_weights() == dest
    assert [p.name for p in hub.iterdir()] == [WEIGHTS_NAMES[0]]  # no temporary left


@pytest.fixture
def server(tmp_path):
    """A localhost HTTP server in a thread, serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    handler = partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_fetch_from_localhost(server, tmp_path):
    www, url = server
    payload = os.urandom(300_000)
    (www / "w.pth").write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    dest_dir = tmp_path / "dest"
    got = features.fetch_weights(f"{url}/w.pth", dest_dir, expected_sha256=sha, progress=False)
    assert got == dest_dir / WEIGHTS_NAMES[0] and got.read_bytes() == payload
    # a wrong hash is refused and leaves nothing behind
    other = tmp_path / "dest2"
    with pytest.raises(FewganError, match="refused"):
        features.fetch_weights(f"{url}/w.pth", other, progress=False)
    assert list(other.iterdir()) == []
    with pytest.raises(FewganError, match="could not download"):
        features.fetch_weights(f"{url}/missing.pth", other, expected_sha256=sha, progress=False)
    assert list(other.iterdir()) == []


def test_cli_weights(hub, server, tmp_path, capsys, monkeypatch):
    assert main(["weights", "where"]) == 1
    assert "pt_inception" in capsys.readouterr().out
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"x")
    assert main(["weights", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sha256" in err
    www, url = server
    (www / "w.pth").write_bytes(b"not the weights")
    assert main(["weights", "fetch", "--url", f"{url}/w.pth", "--to", str(tmp_path / "d")]) == 2
    assert "refused" in capsys.readouterr().err
    monkeypatch.setenv(features.ENV_VAR, str(bad))
    assert main(["weights", "where"]) == 0
    out = capsys.readouterr().out
    assert hashlib.sha256(b"x").hexdigest() in out and "NOT the FID reference" in out


def _real_weights():
    try:
        path = features.find_weights()
    except WeightsMissing:
        return None
    return path if features.file_sha256(path) == WEIGHTS_SHA256 else None


@pytest.mark.skipif(_real_weights() is None,
                    reason="needs the real FID Inception weights (sha256 6726825d...) in the hub cache or "
                           "$FEWGAN_INCEPTION_WEIGHTS; they cannot be downloaded in CI")
def test_golden_real_weights_classify_natural_images():
    """With the real weights the network is a working ImageNet classifier (random or broken weights are not).

    No published feature values could be pinned here (the weights cannot be downloaded); the exact
    architecture is proven by tools/inception_parity.py against pytorch-fid and torch-fidelity.
    """
    from skimage import data

    model, info = features.load_inception()
    assert info["reference"] and info["sha256"] == WEIGHTS_SHA256
    cat = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float() / 127.5 - 1
    coffee = torch.from_numpy(data.coffee()).permute(2, 0, 1).float() / 127.5 - 1
    x = features.preprocess([cat, cat.flip(-1), coffee], resize="tf1")
    with torch.no_grad():
        p = torch.softmax(model(x, taps=("logits",))["logits"], dim=1)
    top5 = [set(row.topk(5).indices.tolist()) for row in p]
    mass5 = [float(row.topk(5).values.sum()) for row in p]
    # a trained classifier is confident (a random or broken network spreads ~1/1008 per class),
    # sees a mirrored cat as the same animal, and a cup of coffee as something else
    assert min(mass5) > 0.5, mass5
    assert int(p[0].argmax()) in top5[1] and len(top5[0] & top5[1]) >= 3
    assert not top5[0] & top5[2]
    feats = features.extract_features([cat, coffee], resize="tf1", progress=False)
    assert feats.shape == (2, 2048) and (feats >= 0).all() and not np.allclose(feats[0], feats[1])
