"""Train the highlight network (inference/highlights/network.py) on the TRAIN split HDRs.

One command, a time budget, resumable::

    python training/train_highlights.py --minutes 90 --threads 2

* Stage 1 (the first ``--stage1-fraction`` of the budget): inpainting with random soft
  masks on log images (Santos et al. pre-training).
* Stage 2: synthetic LDR photos of the TRAIN split (training/highlight_data.py): crops
  and whole downsampled panoramas (panorama batches run in wrap mode); optionally
  (``--light-sources``, off by default) with synthetic suns, lamps and windows added, and
  (``--renders DIR --render-fraction P``, off by default) with a share P of the panoramas
  taken from scenes rendered by training/render_scenes.py.
* Losses, all on the final blended output ``(1 - M) * linear + M * exp(y)`` inside the
  clipped region (``M > 0``): L1 of log radiance; the energy of each connected clipped
  region and of all clipped pixels of a sample (``|log sum pred - log sum true|`` of
  solid-angle weighted luminance), which is what lighting needs; L1 of log gradients.
* Checkpoints (``runs/highlights/checkpoint.pt``) every few minutes and at the deadline;
  a rerun with the same command continues from it (the time already spent counts).
  The result is ``runs/highlights/highlight_net.safetensors``; training/eval_highlights.py
  evaluates it and installs it into weights/ with its manifest entry.

Seeded; uses CUDA when present. Never reads an evaluation file (training/split.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import highlight_data as data  # noqa: E402
from ldr2hdr.inference.highlights.network import LOG_EPS, HighlightNet, count_parameters, save_weights  # noqa: E402

logger = logging.getLogger("train_highlights")

ROOT = Path(__file__).resolve().parents[1]
LUMA = torch.tensor([0.2126, 0.7152, 0.0722])
MIN_REGION_PIXELS = 4


def _stops_error(d: torch.Tensor, under_weight: float) -> torch.Tensor:
    """``|d|`` for a log energy ratio ``d``, with too little energy (``d < 0``) costing
    ``under_weight`` times more: above 1 the optimum moves from the median of the plausible
    energies towards an upper quantile (``under_weight / (1 + under_weight)``)."""
    return torch.where(d < 0, -under_weight * d, d)


def compute_losses(model: HighlightNet, batch: dict[str, torch.Tensor], wrap: bool,
                   energy_weight: float = 1.0, under_weight: float = 1.0) -> dict[str, torch.Tensor]:
    lin, mask, tgt, wt, labels = (batch[k] for k in ("linear", "mask", "target", "weight", "labels"))
    ctx = model.context(lin, mask, wrap)
    y = model(lin, mask, ctx, wrap)
    out = (1.0 - mask) * lin + mask * torch.exp(y)
    sel = (mask > 0).float()
    n_sel = sel.sum().clamp_min(1.0)
    lo, lt = torch.log(out + LOG_EPS), torch.log(tgt + LOG_EPS)
    l1 = ((lo - lt).abs() * sel).sum() / (3 * n_sel)

    gx = ((lo[..., 1:] - lo[..., :-1]) - (lt[..., 1:] - lt[..., :-1])).abs() * (sel[..., 1:] * sel[..., :-1])
    gy = ((lo[..., 1:, :] - lo[..., :-1, :]) - (lt[..., 1:, :] - lt[..., :-1, :])).abs() * (sel[..., 1:, :] * sel[..., :-1, :])
    grad = (gx.sum() + gy.sum()) / (6 * n_sel)

    luma = LUMA.to(lin.device).view(1, 3, 1, 1)
    e_out = ((out * luma).sum(1, keepdim=True) * wt * sel).flatten(1)
    e_tgt = ((tgt * luma).sum(1, keepdim=True) * wt * sel).flatten(1)
    # per connected region
    b = lin.shape[0]
    n_lab = int(labels.max()) + 1
    ids = (labels.flatten(1) + torch.arange(b, device=lin.device)[:, None] * n_lab).flatten()
    size = torch.zeros(b * n_lab, device=lin.device).index_add_(0, ids, sel.flatten())
    r_out = torch.zeros(b * n_lab, device=lin.device).index_add_(0, ids, e_out.flatten())
    r_tgt = torch.zeros(b * n_lab, device=lin.device).index_add_(0, ids, e_tgt.flatten())
    keep = (size >= MIN_REGION_PIXELS) & (torch.arange(b * n_lab, device=lin.device) % n_lab != 0) & (r_tgt > 0)
    if bool(keep.any()):
        region = _stops_error(torch.log(r_out[keep] + 1e-12) - torch.log(r_tgt[keep]), under_weight).mean()
    else:
        region = lin.new_zeros(())
    tot_out, tot_tgt = e_out.sum(1), e_tgt.sum(1)
    ok = tot_tgt > 0
    total = (_stops_error(torch.log(tot_out[ok] + 1e-12) - torch.log(tot_tgt[ok]), under_weight).mean()
             if bool(ok.any()) else lin.new_zeros(()))
    energy = 0.5 * (region + total)
    return {"l1": l1, "energy": energy, "grad": grad, "loss": l1 + energy_weight * energy + 0.5 * grad}


def to_device(batch: dict, device: str) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=80.0, help="training time budget (wall clock, all runs)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "highlights")
    ap.add_argument("--stage1-fraction", type=float, default=0.08)
    ap.add_argument("--batch", type=int, default=16, help="crops per batch (128x128)")
    ap.add_argument("--pano-batch", type=int, default=2, help="whole panoramas per batch (512x256)")
    ap.add_argument("--under-weight", type=float, default=1.0,
                    help="energy term: cost of too little energy relative to too much (1: symmetric, "
                         "as for the committed weights)")
    ap.add_argument("--energy-weight", type=float, default=2.0,
                    help="weight of the region/total energy term against the log L1 (lighting needs the energy)")
    ap.add_argument("--pano-every", type=int, default=4, help="every Nth step is a panorama batch")
    ap.add_argument("--pano-sizes", default="512",
                    help="comma-separated widths of the whole-panorama samples (2:1), used in turn; a width w gets "
                         "--pano-batch * (512 / w)^2 panoramas per batch (the committed recipe: 512)")
    ap.add_argument("--pool", type=int, default=512, help="crop samples kept in memory")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: time only; smoke tests)")
    ap.add_argument("--checkpoint-seconds", type=float, default=180.0)
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--init", type=Path, default=None,
                    help="start a fresh run from these weights (safetensors, checked against their manifest) "
                         "instead of random ones: fine-tuning; ignored when a checkpoint is resumed")
    ap.add_argument("--light-sources", type=float, default=0.0,
                    help="fraction of stage-2 samples with synthetic suns/lamps/windows added (0: off, as for the "
                         "committed weights; 0.35 was tried: better clipped energy, worse texture, docs/experiments.md)")
    ap.add_argument("--renders", type=Path, default=None,
                    help="folder of synthetic panoramas from training/render_scenes.py (coherent suns and lamps)")
    ap.add_argument("--render-fraction", type=float, default=0.0,
                    help="share of the panorama draws (whole panoramas and perspective crops) taken from --renders")
    args = ap.parse_args(argv)
    try:
        pano_widths = [int(v) for v in args.pano_sizes.split(",") if v.strip()]
    except ValueError:
        ap.error(f"--pano-sizes: not a list of integers: {args.pano_sizes!r}")
    if not pano_widths or any(w < 32 or w % 32 for w in pano_widths):
        ap.error("--pano-sizes: widths must be multiples of 32 (the network needs both sides a multiple of 16)")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(max(1, args.threads))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.out / "checkpoint.pt"
    budget = args.minutes * 60.0

    torch.manual_seed(args.seed)
    model = HighlightNet().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, spent = 0, 0.0
    resumed = ckpt_path.is_file() and not args.fresh
    if args.init is not None and not resumed:
        from ldr2hdr.inference.highlights.network import load_model

        model.load_state_dict(load_model(args.init, device).state_dict())
        logger.info("initialized from %s", args.init)
    if resumed:
        ck = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        step, spent = int(ck["step"]), float(ck["spent"])
        logger.info("resumed from %s at step %d (%.1f min spent)", ckpt_path, step, spent / 60)
    rng = np.random.default_rng([args.seed, step])
    logger.info("model: %d parameters; device %s; threads %d", count_parameters(model), device, args.threads)

    refs = data.load_references()
    logger.info("loaded %d TRAIN references (%d panoramas)", len(refs), sum(r.panorama for r in refs))
    if args.renders is not None and args.render_fraction > 0:
        renders = data.load_renders(args.renders)
        if not renders:
            raise SystemExit(f"no renders (render_*.exr) in {args.renders}")
        logger.info("loaded %d rendered panoramas from %s (%.0f %% of panorama draws)", len(renders), args.renders,
                    100 * args.render_fraction)
        refs = refs + renders

    def save_checkpoint():
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optim": opt.state_dict(), "step": step, "spent": spent}, tmp)
        tmp.replace(ckpt_path)

    stage1_end = args.stage1_fraction * budget
    pools: dict[str, data.SamplePool] = {}
    current_stage = 0
    t_last = time.monotonic()
    last_ckpt = t_last
    history = []
    running: dict[str, float] = {}
    while spent < budget and not (args.max_steps and step >= args.max_steps):
        stage = 1 if spent < stage1_end else 2
        if stage != current_stage:
            t0 = time.monotonic()
            # (stage-1 inpainting samples never add light sources: SamplePool only uses them in stage 2)
            pools = {"crop": data.SamplePool(refs, rng, kind="crop", size=args.pool // (3 if stage == 1 else 1), stage=stage,
                                             light_sources=args.light_sources, render_fraction=args.render_fraction),
                     **{f"pano{w}": data.SamplePool(refs, rng, kind="pano", size=96, stage=stage,
                                                    light_sources=args.light_sources,
                                                    render_fraction=args.render_fraction, pano_size=(w // 2, w))
                        for w in pano_widths}}
            current_stage = stage
            logger.info("stage %d: pools ready in %.0f s", stage, time.monotonic() - t0)
        kind = "pano" if args.pano_every and step % args.pano_every == args.pano_every - 1 else "crop"
        if kind == "pano":
            width = pano_widths[(step // args.pano_every) % len(pano_widths)]
            pool, n = pools[f"pano{width}"], max(1, round(args.pano_batch * (512 / width) ** 2))
        else:
            pool, n = pools["crop"], args.batch
        batch = to_device(pool.batch(n), device)
        frac = min(1.0, spent / budget)
        lr = args.lr * min(1.0, (step + 1) / 100) * max(0.03, 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        losses = compute_losses(model, batch, wrap=(kind == "pano"), energy_weight=args.energy_weight,
                                under_weight=args.under_weight)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        pool.refresh(1)
        step += 1
        for k, v in losses.items():
            running[k] = 0.98 * running.get(k, float(v.detach())) + 0.02 * float(v.detach())
        now = time.monotonic()
        spent += now - t_last
        t_last = now
        if step % 50 == 0:
            logger.info("step %d stage %d %.1f/%.0f min lr %.2e loss %.3f l1 %.3f energy %.3f grad %.3f",
                        step, stage, spent / 60, args.minutes, lr, running["loss"], running["l1"],
                        running["energy"], running["grad"])
            history.append({"step": step, "minutes": round(spent / 60, 2), **{k: round(v, 4) for k, v in running.items()}})
        if now - last_ckpt > args.checkpoint_seconds:
            save_checkpoint()
            save_weights(model, args.out / "highlight_net.safetensors", {"step": step})
            last_ckpt = now
    save_checkpoint()
    save_weights(model, args.out / "highlight_net.safetensors", {"step": step, "minutes": round(spent / 60, 2)})
    summary = {"steps": step, "minutes": round(spent / 60, 2), "device": device, "threads": args.threads,
               "seed": args.seed, "parameters": count_parameters(model),
               "train_files": [r.name for r in refs if not r.rendered],
               "renders": sum(r.rendered for r in refs), "renders_folder": str(args.renders) if args.renders else None,
               "render_fraction": args.render_fraction, "pano_sizes": pano_widths, "init": str(args.init) if args.init else None,
               "history_tail": history[-20:],
               "command": "python training/train_highlights.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    (args.out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    logger.info("done: %d steps in %.1f min -> %s", step, spent / 60, args.out / "highlight_net.safetensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
