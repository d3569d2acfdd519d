"""The command line end to end, on LDR photos made from a real HDR panorama (bpy studio light)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from ldr2hdr.inference import batch as batch_steps
from ldr2hdr.inference import cli, crf, io


def _downsample(img, f):
    h, w = img.shape[0] // f * f, img.shape[1] // f * f
    return img[:h, :w].reshape(h // f, f, w // f, f, 3).mean(axis=(1, 3))


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Two small LDR photos from the 'sunrise' studio light: a JPEG and a PNG, ~5% clipped."""
    from tests.conftest import studio_light_path

    hdr = _downsample(io.read_image(studio_light_path("sunrise")).pixels, 4)  # 256x128
    scale = 1.0 / np.quantile(hdr.max(axis=-1), 0.95)
    ldr = crf.apply_crf(hdr * scale, crf.srgb_inverse())
    d = tmp_path_factory.mktemp("photos")
    io.write_jpeg(d / "pano.jpg", ldr, quality=95)
    io.write_png(d / "flat.png", ldr[:, :200])
    return d, hdr * scale


def test_help_explains_the_tool(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for word in ("estimate-crf", "linearize", "restore", "reconstruct", "eval", "Examples"):
        assert word in text


def test_reconstruct_file_and_folder(photo_dir, tmp_path, capsys):
    d, truth = photo_dir
    out = tmp_path / "out"
    rc = cli.main(["reconstruct", str(d / "pano.jpg"), str(d), "-o", str(out), "--crf-json", "--preview"])
    # pano.jpg given twice (file + folder): the second is refused by name collision, not overwritten
    assert rc == 1
    assert "same output name" in capsys.readouterr().err
    rc = cli.main(["reconstruct", str(d), "-o", str(tmp_path / "out2"), "--crf-json", "--preview"])
    assert rc == 0
    out2 = tmp_path / "out2"
    for stem in ("pano", "flat"):
        assert (out2 / f"{stem}.exr").is_file()
        assert (out2 / f"{stem}.preview.png").is_file()
        data = json.loads((out2 / f"{stem}.crf.json").read_text())
        assert len(data["inverse_crf"]) == 1024 and data["method"]
    hdr = io.read_image(out2 / "pano.exr")
    assert hdr.is_hdr
    clipped = truth.max(axis=-1) >= 1.0
    assert clipped.any()
    # values above 1 exist exactly where the input was clipped
    assert hdr.pixels[clipped].max(axis=-1).mean() > 1.5
    assert hdr.pixels[~clipped].max() <= 1.0 + 1e-2 or hdr.pixels[~clipped].max(axis=-1).mean() < 0.6
    meta = io.read_exr_metadata(out2 / "pano.exr")
    assert "pano.jpg" in meta["source_file"] and meta["crf_method"] and "exposure_scale" in meta


def test_existing_outputs_are_not_overwritten(photo_dir, tmp_path):
    d, _ = photo_dir
    out = tmp_path / "out"
    assert cli.main(["linearize", str(d / "flat.png"), "-o", str(out), "-q"]) == 0
    before = (out / "flat.exr").read_bytes()
    assert cli.main(["linearize", str(d / "flat.png"), "-o", str(out), "-q", "--exposure", "2"]) == 1
    assert (out / "flat.exr").read_bytes() == before
    assert cli.main(["linearize", str(d / "flat.png"), "-o", str(out), "-q", "--exposure", "2", "--overwrite"]) == 0
    assert (out / "flat.exr").read_bytes() != before


def test_estimate_crf_writes_json_only(photo_dir, tmp_path):
    d, _ = photo_dir
    out = tmp_path / "out"
    assert cli.main(["estimate-crf", str(d / "pano.jpg"), "-o", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["pano.crf.json"]
    data = json.loads((out / "pano.crf.json").read_text())
    assert np.all(np.diff(data["inverse_crf"]) >= 0)


def test_linearize_then_restore_equals_reconstruct(photo_dir, tmp_path):
    d, _ = photo_dir
    lin_dir, res_dir, rec_dir = tmp_path / "lin", tmp_path / "res", tmp_path / "rec"
    assert cli.main(["linearize", str(d / "pano.jpg"), "-o", str(lin_dir), "-q", "--float"]) == 0
    lin = io.read_image(lin_dir / "pano.exr").pixels
    assert lin.max() <= 1.0 + 1e-6
    assert cli.main(["restore", str(lin_dir / "pano.exr"), "-o", str(res_dir), "-q", "--float"]) == 0
    assert cli.main(["reconstruct", str(d / "pano.jpg"), "-o", str(rec_dir), "-q", "--float"]) == 0
    a = io.read_image(res_dir / "pano.exr").pixels
    b = io.read_image(rec_dir / "pano.exr").pixels
    assert a.max() > 1.5
    # restore re-encodes the dequantized linear image and rounds it to 8-bit codes, so it sees
    # the same clipped pixels as reconstruct: the results agree up to float rounding.
    close = np.isclose(a, b, rtol=0.01, atol=0.001).all(axis=-1)
    assert close.mean() > 0.999
    assert a.sum() == pytest.approx(b.sum(), rel=1e-3)


def test_crf_options(photo_dir, tmp_path):
    d, _ = photo_dir
    out = tmp_path / "out"
    assert cli.main(["estimate-crf", str(d / "flat.png"), "-o", str(out), "-q", "--crf", "gamma2.2"]) == 0
    data = json.loads((out / "flat.crf.json").read_text())
    assert crf.crf_rmse(np.array(data["inverse_crf"]), crf.gamma_inverse(2.2)) < 1e-4
    # a curve file from an earlier run is accepted
    assert cli.main(["linearize", str(d / "flat.png"), "-o", str(out), "-q", "--crf", str(out / "flat.crf.json")]) == 0
    assert cli.main(["linearize", str(d / "flat.png"), "-o", str(out), "-q", "--crf", "vivid"]) == 2


def test_hdr_input_passes_through_with_warning(tmp_path, capfd, caplog):
    src = tmp_path / "already.exr"
    pix = np.full((8, 16, 3), 5.0, np.float32)
    io.write_exr(src, pix)
    assert cli.main(["reconstruct", str(src), "-o", str(tmp_path / "out"), "-q"]) == 0
    assert "already HDR" in capfd.readouterr().err + caplog.text
    np.testing.assert_allclose(io.read_image(tmp_path / "out" / "already.exr").pixels, pix)


BAD_CASES = {
    "empty.jpg": b"",
    "text.png": b"this is not an image\n" * 10,
    "truncated.jpg": None,  # filled from a real JPEG below
}


def test_batch_goes_on_past_bad_files(photo_dir, tmp_path, capfd):
    d, _ = photo_dir
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "good.jpg").write_bytes((d / "pano.jpg").read_bytes())
    (batch / "empty.jpg").write_bytes(b"")
    (batch / "text.png").write_text("this is not an image\n" * 10)
    (batch / "truncated.jpg").write_bytes((d / "pano.jpg").read_bytes()[:3000])
    (batch / "z_also_good.png").write_bytes((d / "flat.png").read_bytes())
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    rc = cli.main(["reconstruct", str(batch), "-o", str(out), "--report", str(report), "-q"])
    err = capfd.readouterr().err
    assert rc == 1
    lines = [l for l in err.splitlines() if l.startswith("ldr2hdr: error:")]
    assert len(lines) == 3
    for name in ("empty.jpg", "text.png", "truncated.jpg"):
        assert any(name in l for l in lines)
        assert not (out / name.replace(".jpg", ".exr").replace(".png", ".exr")).exists()
    assert "Traceback" not in err
    assert "2 ok, 3 failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["good.exr", "z_also_good.exr"]
    rows = json.loads(report.read_text())["inputs"]
    assert [r["status"] for r in rows].count("error") == 3


def test_missing_input_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ldr2hdr.inference.cli", "reconstruct", str(tmp_path / "nope.jpg"),
                           "-o", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "nope.jpg" in proc.stderr and "no such file" in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _small_batch(tmp_path, photo_dir, n_good=12, n_bad=3):
    d, _ = photo_dir
    batch = tmp_path / "batch"
    batch.mkdir()
    src = (d / "flat.png").read_bytes()
    for i in range(n_good):
        (batch / f"img{i:03d}.png").write_bytes(src)
    for i in range(n_bad):
        (batch / f"bad{i:03d}.png").write_bytes(src[: 100 + 37 * i])
    return batch


def test_resume_skips_complete_outputs_and_redoes_nothing(photo_dir, tmp_path):
    batch = _small_batch(tmp_path, photo_dir)
    out, report = tmp_path / "out", tmp_path / "r.json"
    assert cli.main(["linearize", str(batch), "-o", str(out), "-q", "--crf-json", "--report", str(report)]) == 1
    first = json.loads(report.read_text())
    assert first["ok"] == 12 and first["failed"] == 3
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert cli.main(["linearize", str(batch), "-o", str(out), "-q", "--crf-json", "--resume", "--report", str(report)]) == 1
    second = json.loads(report.read_text())
    assert second["ok"] == 0 and second["skipped"] == 12 and second["failed"] == 3
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_resume_does_not_trust_a_damaged_output(photo_dir, tmp_path):
    batch = _small_batch(tmp_path, photo_dir, n_good=2, n_bad=0)
    out = tmp_path / "out"
    assert cli.main(["linearize", str(batch), "-o", str(out), "-q"]) == 0
    exr = out / "img000.exr"
    exr.write_bytes(exr.read_bytes()[:200])  # e.g. copied over by another tool and cut short
    args = cli.build_parser().parse_args(["linearize", str(batch), "-o", str(out), "--resume"])
    assert not batch_steps.outputs_complete(batch / "img000.png", "linearize", args)
    assert batch_steps.outputs_complete(batch / "img001.png", "linearize", args)


def test_ctrl_c_stops_after_the_current_file(photo_dir, tmp_path, monkeypatch, capfd):
    import os
    import signal

    batch = _small_batch(tmp_path, photo_dir, n_good=5, n_bad=0)
    real = batch_steps.process_one
    calls = []

    def interrupting(path, *a, **k):
        calls.append(path.name)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C during file 2
        return real(path, *a, **k)

    monkeypatch.setattr(batch_steps, "process_one", interrupting)
    out = tmp_path / "out"
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs as a background job
    rc = cli.main(["linearize", str(batch), "-o", str(out), "-q"])
    assert rc == 130
    assert len(calls) == 2
    assert sorted(p.name for p in out.iterdir()) == ["img000.exr", "img001.exr"]  # file 2 was finished
    assert "not started (interrupted)" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back


def test_max_memory_refuses_before_decoding_and_shrinks_tiles(photo_dir, tmp_path, capfd):
    from ldr2hdr.inference import pipeline

    d, _ = photo_dir
    out = tmp_path / "out"
    assert cli.main(["reconstruct", str(d / "pano.jpg"), "-o", str(out), "-q", "--max-memory", "0.01"]) == 1
    err = capfd.readouterr().err
    assert "memory limit" in err and "pano.jpg" in err and not out.joinpath("pano.exr").exists()
    s = pipeline.Settings(tile_size=1024)
    limit = pipeline.estimate_peak_bytes(4000, 8000, s.with_(tile_size=256)) + 1
    assert pipeline.fit_tile_size(4000, 8000, s, limit).tile_size == 256
    assert pipeline.estimate_peak_bytes(2048, 4096, pipeline.Settings()) < 3 * 2 ** 30


def test_precision_option_reaches_the_network(photo_dir, tmp_path, monkeypatch):
    from ldr2hdr.inference import pipeline
    from ldr2hdr.inference.highlights import learned

    seen = []
    original = learned.network_dtype
    monkeypatch.setattr(learned, "network_dtype", lambda p, d: seen.append(p) or original(p, d))
    d, _ = photo_dir
    out = tmp_path / "out"
    assert cli.main(["restore", str(d / "pano.jpg"), "-o", str(out), "-q", "--precision", "bfloat16"]) == 0
    assert seen == ["bfloat16"] and out.joinpath("pano.exr").is_file()
    with pytest.raises(Exception, match="precision"):
        pipeline.Settings(precision="float64")


def test_weights_dir_replaces_bundled_weights_and_is_verified(photo_dir, tmp_path, capfd, monkeypatch):
    import shutil

    from ldr2hdr.inference.highlights import learned, network

    d, _ = photo_dir
    wdir = tmp_path / "my_weights"
    wdir.mkdir()
    shutil.copy(network.WEIGHTS_FILE, wdir / "highlight_net.safetensors")
    shutil.copy(network.WEIGHTS_FILE.parent / "manifest.json", wdir / "manifest.json")
    loaded = []
    original = network.load_model
    monkeypatch.setattr(learned, "load_model", lambda w=None, device="cpu": loaded.append(w) or original(w, device))
    out = tmp_path / "out"
    assert cli.main(["restore", str(d / "pano.jpg"), "-o", str(out), "-q", "--weights-dir", str(wdir)]) == 0
    assert loaded == [str(wdir / "highlight_net.safetensors")] and (out / "pano.exr").is_file()

    with open(wdir / "highlight_net.safetensors", "ab") as f:  # tampered: the manifest check refuses it
        f.write(b"\0")
    out2 = tmp_path / "out2"
    assert cli.main(["restore", str(d / "pano.jpg"), "-o", str(out2), "-q", "--weights-dir", str(wdir)]) == 1
    err = capfd.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ldr2hdr: error:")]
    assert len(errors) == 1 and "sha256" in errors[0] and "my_weights" in errors[0]
    assert not (out2 / "pano.exr").exists()

    assert cli.main(["restore", str(d / "pano.jpg"), "-o", str(out2), "-q", "--weights-dir", str(tmp_path / "nope")]) != 0
    assert "weights folder not found" in capfd.readouterr().err
