"""The relighting scene's geometry and measurements (numpy only: run without Blender)."""

import math

import numpy as np
import pytest

from ldr2hdr.render import stage


def test_camera_axes_are_a_rotation():
    axes = stage.camera_axes()
    np.testing.assert_allclose(axes.T @ axes, np.eye(3), atol=1e-12)
    assert np.linalg.det(axes) == pytest.approx(1.0)
    assert axes[2, 0] == pytest.approx(0.0, abs=1e-12)  # no roll: the camera's X axis is level


def test_traced_points_project_back_to_their_pixels():
    height, width = stage.panel_shape(64)
    rows, cols = np.mgrid[0:height, 0:width]
    xy = np.stack([cols + 0.5, rows + 0.5], axis=-1).astype(float)
    normals = stage.sphere_normals(stage.DIFFUSE, height, width)
    hit = ~np.isnan(normals[..., 0])
    assert 50 < hit.sum() < height * width / 4
    points = stage.DIFFUSE_CENTRE + stage.RADIUS * normals[hit]
    back, in_front = stage.project(points, height, width)
    assert in_front.all()
    np.testing.assert_allclose(back, xy[hit], atol=1e-6)
    # the visible side faces the camera; the interior mask lies inside the traced silhouette
    assert (((stage.CAMERA_LOCATION - points) * normals[hit]).sum(-1) > 0).all()
    interior = stage.interior_mask(stage.DIFFUSE, height, width)
    assert interior.sum() > 0.5 * hit.sum() and not (interior & ~hit).any()


def test_fit_step_recovers_the_width_of_a_noisy_step():
    rng = np.random.default_rng(0)
    s = np.arange(0.0, 40.0, 0.25)
    k = 1.5
    p = 0.2 + 0.8 / (1.0 + np.exp(-(s - 17.3) / k)) + rng.normal(0.0, 0.03, s.size)
    s0, k_fit, lo, hi = stage.fit_step(s, p)
    assert s0 == pytest.approx(17.3, abs=0.2)
    assert stage.LOGISTIC_10_90 * k_fit == pytest.approx(stage.LOGISTIC_10_90 * k, rel=0.1)
    assert (lo, hi) == pytest.approx((0.2, 1.0), abs=0.03)


def _soft_shadow_image(sun, angle_deg, width=240, rays=96):
    """Ground luminance 1 where a disc sun of ``angle_deg`` is fully visible, down to 0.1 in the
    diffuse sphere's umbra (the fraction of ``rays`` directions over the disc that reach it);
    1 on everything else. Only the diffuse sphere casts a shadow."""
    height, width = stage.panel_shape(width)
    rows, cols = np.mgrid[0:height, 0:width]
    xy = np.stack([cols + 0.5, rows + 0.5], axis=-1).astype(float)
    cam = stage.camera_rays(xy, height, width)
    ground = stage.CAMERA_LOCATION + (-stage.CAMERA_LOCATION[2] / np.minimum(cam[..., 2], -1e-9))[..., None] * cam
    d = np.asarray(sun, float) / np.linalg.norm(sun)
    a = np.cross(d, [0.0, 0.0, 1.0])
    a /= np.linalg.norm(a)
    b = np.cross(d, a)
    k = np.arange(rays) + 0.5
    r = math.radians(angle_deg) / 2 * np.sqrt(k / rays)  # even over the disc's area (small angles)
    phi = k * math.pi * (3.0 - math.sqrt(5.0))
    seen = np.zeros((height, width))
    for ri, pi in zip(r, phi):
        towards = d + ri * (math.cos(pi) * a + math.sin(pi) * b)
        seen += stage._blocked(ground.reshape(-1, 3), towards / np.linalg.norm(towards), stage.DIFFUSE_CENTRE,
                               stage.RADIUS).reshape(height, width)
    lum = 1.0 - 0.9 * seen / rays
    lum[stage.trace(xy, height, width) != stage.GROUND] = 1.0
    return np.repeat(lum[..., None], 3, axis=-1)


def test_shadow_edge_grows_with_the_size_of_the_sun():
    # sun behind the spheres and to the right (Blender axes): the shadow falls to the front left
    sun = (0.38, 0.66, 0.64)
    widths = [stage.shadow_edge(_soft_shadow_image(sun, angle), sun) for angle in (4.0, 8.0)]
    assert [w.sphere for w in widths] == ["diffuse", "diffuse"]
    assert widths[0].width_px > 1.0
    assert widths[1].width_px / widths[0].width_px == pytest.approx(2.0, rel=0.2)
    assert widths[0].contrast == pytest.approx(0.9, abs=0.05)


def test_no_shadow_to_measure_for_a_low_or_overhead_light():
    image = np.ones((*stage.panel_shape(64), 3), np.float32)
    assert stage.shadow_edge(image, (1.0, 0.0, 0.05)).width_px is None
    assert stage.shadow_edge(image, (0.0, 0.0, 1.0)).width_px is None
    assert "no distinct shadow" in stage.shadow_edge(image, (0.38, 0.66, 0.64)).note
