"""Ray generation: pinhole, principal point, pixel centres, OpenGL convention, NDC."""

import math

import pytest
import torch

from spiknerf.errors import InputError
from spiknerf.nerf.data import load_scene
from spiknerf.nerf.distortion import distort, undistort
from spiknerf.nerf.rays import camera_rays, focal_from_fov, look_at, pixel_rays, to_ndc


def test_pixel_ray_matches_hand_computation():
    c2w = torch.eye(4)
    c2w[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    intrinsics = torch.tensor([10.0, 20.0, 4.0, 3.0])  # fx, fy, cx, cy
    o, d = pixel_rays(c2w, intrinsics, torch.tensor([3]), torch.tensor([2]))
    # pixel (3, 2) has its centre at (3.5, 2.5): ((3.5 - 4) / 10, -(2.5 - 3) / 20, -1)
    expected = torch.tensor([-0.05, 0.025, -1.0])
    assert torch.allclose(o, torch.tensor([[1.0, 2.0, 3.0]]))
    assert torch.allclose(d, (expected / expected.norm())[None], atol=1e-6)


def test_opengl_axes_for_a_camera_looking_along_x():
    c2w = look_at(torch.zeros(3), torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]))
    intrinsics = torch.tensor([8.0, 8.0, 8.0, 8.0])  # 16 x 16 image, principal point at its centre
    # fractional indices 7.5 put the ray exactly through the principal point
    _, centre = pixel_rays(c2w, intrinsics, torch.tensor([7.5]), torch.tensor([7.5]))
    _, right = pixel_rays(c2w, intrinsics, torch.tensor([15]), torch.tensor([7.5]))
    _, top = pixel_rays(c2w, intrinsics, torch.tensor([7.5]), torch.tensor([0]))
    assert torch.allclose(centre, torch.tensor([[1.0, 0.0, 0.0]]), atol=1e-6)
    assert right[0, 1] < 0 and abs(right[0, 2]) < 1e-6  # image right is world -y for this camera
    assert top[0, 2] > 0  # image top is world up


def test_ray_through_a_projected_point_passes_through_it():
    gen = torch.Generator().manual_seed(0)
    n = 64
    eyes = torch.randn(n, 3, generator=gen) * 3
    c2w = torch.stack([look_at(e, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])) for e in eyes])
    intrinsics = torch.tensor([50.0, 40.0, 31.0, 22.0]).expand(n, 4)
    points = torch.randn(n, 3, generator=gen) * 0.3
    cam = torch.einsum("nji,nj->ni", c2w[:, :3, :3], points - c2w[:, :3, 3])  # R^T (p - t)
    fx, fy, cx, cy = intrinsics.unbind(-1)
    u = fx * cam[:, 0] / -cam[:, 2] + cx
    v = -fy * cam[:, 1] / -cam[:, 2] + cy
    o, d = pixel_rays(c2w, intrinsics, u - 0.5, v - 0.5)
    miss = torch.linalg.cross(points - o, d).norm(dim=-1)
    assert miss.max() < 1e-4
    assert torch.allclose(d.norm(dim=-1), torch.ones(n), atol=1e-6)


def test_one_camera_broadcasts_like_per_ray_cameras():
    c2w = look_at(torch.tensor([1.0, 2.0, 3.0]), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    intrinsics = torch.tensor([10.0, 10.0, 5.0, 5.0])
    xs, ys = torch.arange(10), torch.arange(10).flip(0)
    o1, d1 = pixel_rays(c2w, intrinsics, xs, ys)
    o2, d2 = pixel_rays(c2w.expand(10, 4, 4), intrinsics.expand(10, 4), xs, ys)
    assert torch.equal(o1, o2) and torch.allclose(d1, d2)


def test_look_at_is_a_rigid_transform_looking_down_minus_z():
    eye, target = torch.tensor([2.0, -1.0, 3.0]), torch.tensor([0.5, 0.0, 0.0])
    c2w = look_at(eye, target, torch.tensor([0.0, 0.0, 1.0]))
    r = c2w[:3, :3]
    assert torch.allclose(r.T @ r, torch.eye(3), atol=1e-6)
    assert torch.linalg.det(r) == pytest.approx(1.0, abs=1e-6)
    forward = -c2w[:3, 2]
    assert torch.allclose(forward, (target - eye) / (target - eye).norm(), atol=1e-6)


def test_focal_from_fov():
    assert focal_from_fov(100, math.pi / 2) == pytest.approx(50.0)


def test_ndc_maps_points_along_a_ray_onto_the_ndc_ray():
    W, H, fx, fy, near = 16, 12, 20.0, 18.0, 1.0
    o = torch.tensor([[0.1, -0.2, 0.3]])
    d = torch.tensor([[0.2, 0.1, -1.0]])
    d = d / d.norm()
    o_ndc, d_ndc = to_ndc(o, d, fx, fy, W, H, near)
    assert o_ndc[0, 2] == pytest.approx(-1.0)  # the origin moves to the near plane
    for s in (2.0, 5.0, 50.0):
        p = o[0] + s * d[0]
        q = torch.stack([-2 * fx / W * p[0] / p[2], -2 * fy / H * p[1] / p[2], 1 + 2 * near / p[2]])
        t = (q[2] - o_ndc[0, 2]) / d_ndc[0, 2]
        assert 0 <= t <= 1
        assert torch.allclose(o_ndc[0] + t * d_ndc[0], q, atol=1e-5)


def test_camera_rays_adds_world_view_directions_only_for_ndc():
    c2w = torch.eye(4)
    intrinsics = torch.tensor([20.0, 20.0, 8.0, 6.0])
    xs, ys = torch.tensor([0, 5, 15]), torch.tensor([0, 7, 11])
    o, d = pixel_rays(c2w, intrinsics, xs, ys)
    o1, d1, vd = camera_rays(c2w, intrinsics, xs, ys, 16, 12, ndc=False)
    assert vd is None and torch.equal(o1, o) and torch.equal(d1, d)
    o2, d2, vd = camera_rays(c2w, intrinsics, xs, ys, 16, 12, ndc=True)
    o_ndc, d_ndc = to_ndc(o, d, 20.0, 20.0, 16, 12)
    assert torch.allclose(o2, o_ndc) and torch.allclose(d2, d_ndc) and torch.equal(vd, d)


def test_undistortion_inverts_a_known_lens_distortion():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 4000, generator=gen, dtype=torch.float64) * 1.4 - 0.7
    for coeffs in ([0.0578, -0.0805, 0.0, -0.00098, 0.00016],  # instant-ngp's fox
                   [-0.28, 0.07, 0.0, 0.001, -0.002], [0.1, 0.02, -0.01, 0.0, 0.0]):
        c = torch.tensor(coeffs, dtype=torch.float64)
        xd, yd = distort(x, y, c)
        assert (xd - x).abs().max() > 1e-3  # the lens moves the points
        xu, yu = undistort(xd, yd, c)
        assert torch.allclose(xu, x, atol=1e-9) and torch.allclose(yu, y, atol=1e-9)


def test_a_distorted_pixel_ray_passes_through_the_point_the_lens_imaged_there():
    c2w = look_at(torch.tensor([0.0, 0.0, 3.0]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]))
    intrinsics = torch.tensor([40.0, 40.0, 32.0, 24.0])
    coeffs = torch.tensor([0.05, -0.08, 0.0, -0.001, 0.0002])
    point = torch.tensor([1.2, -0.9, 0.2])  # camera frame: x right, y up, looking down -z
    cam = point - torch.tensor([0.0, 0.0, 3.0])
    x, y = cam[0] / -cam[2], -cam[1] / -cam[2]  # normalized, y down
    xd, yd = distort(x, y, coeffs)
    u, v = intrinsics[0] * xd + intrinsics[2] - 0.5, intrinsics[1] * yd + intrinsics[3] - 0.5
    o, d = pixel_rays(c2w, intrinsics, u[None], v[None], coeffs)
    assert torch.linalg.cross(point - o[0], d[0]).norm() < 1e-5
    _, pinhole = pixel_rays(c2w, intrinsics, u[None], v[None])
    assert torch.linalg.cross(point - o[0], pinhole[0]).norm() > 1e-3


def test_lens_coefficients_that_fold_the_image_over_are_refused(ngp_scene, tmp_path):
    folder = ngp_scene(meta={"camera_angle_x": 1.0, "k1": -3.0})
    with pytest.raises(InputError, match="folds the image over"):
        load_scene(folder, cache_dir=tmp_path / "c")


def test_transforms_json_lens_distortion_reaches_the_rays(ngp_scene, tmp_path):
    folder = ngp_scene(meta={"camera_angle_x": 1.0, "k1": 0.05, "p2": 0.001})
    scene = load_scene(folder, cache_dir=tmp_path / "c")
    train = scene.splits["train"]
    assert torch.allclose(train.distortion[0], torch.tensor([0.05, 0.0, 0.0, 0.0, 0.001]))
    assert any("lens distortion (k1, p2)" in n for n in scene.notes)
    ys, xs = torch.tensor([0, 5]), torch.tensor([0, 7])
    bent = train.rays(torch.zeros(2, dtype=torch.long), ys, xs)[1]
    straight = pixel_rays(train.c2w[0], train.intrinsics[0], xs, ys)[1]
    assert not torch.allclose(bent, straight)


def test_a_camera_path_within_a_ray_budget_sees_the_same_field_of_view():
    from spiknerf.nerf.camera_path import CameraPath
    from spiknerf.nerf.rays import frame_rays

    c2w = torch.eye(4)[None].repeat(60, 1, 1)
    intrinsics = torch.tensor([[420.0, 410.0, 252.0, 189.0]]).repeat(60, 1)
    path = CameraPath(c2w, intrinsics, 504, 378)
    small = path.within(1 << 20)
    assert 60 * small.width * small.height <= 1 << 20 and small.width < 504
    assert abs(small.width / small.height - 504 / 378) < 0.02
    corners = lambda p: frame_rays(p.c2w[0], p.intrinsics[0], p.width, p.height)[1].reshape(  # noqa: E731
        p.height, p.width, 3)[[0, 0, -1, -1], [0, -1, 0, -1]]
    # the corner pixels' rays agree within the larger pixel's angle: the frame is downscaled, not cropped
    assert torch.allclose(corners(small), corners(path), atol=1.5 * 504 / small.width / 420)
    assert path.within(60 * 504 * 378) is path
