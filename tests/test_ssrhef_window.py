"""Windows of calibrated synthetic scenes (ssrhef.data.window_record) and the engine's warm-up + cosine schedule."""
import numpy as np
import pytest
import torch

from crowdlib.data.records import CrowdRecord
from crowdlib.engine import make_lr_schedule
from crowdlib.methods.ssrhef.data import window_record, window_records


def _rec() -> CrowdRecord:
    img = np.zeros((40, 60, 3), np.uint8)
    pts = np.array([[5, 5], [50, 30], [52, 32], [55, 35]], np.float32)
    return CrowdRecord(image_id="s", points=pts, image=img, image_size=(40, 60),
                       meta={"sizes": np.array([1.0, 2.0, 3.0, 4.0]), "domain": "x"})


def test_window_keeps_the_heads_inside_and_shifts_them():
    w = window_record(_rec(), 20, 20, np.random.default_rng(0), candidates=50)
    x0, y0, ww, hh = w.meta["window"]
    assert w.image.shape == (20, 20, 3) and (ww, hh) == (20, 20)
    assert w.count == 3  # of 50 candidate windows the most crowded holds the three heads near (52, 32)
    assert np.all((w.points >= 0) & (w.points < 20))
    np.testing.assert_allclose(w.points + np.array([x0, y0]), _rec().points[1:])
    np.testing.assert_array_equal(w.meta["sizes"], [2.0, 3.0, 4.0])


def test_windows_are_deterministic_under_a_seed_and_errors_are_named():
    a = [r.meta["window"] for r in window_records([_rec()] * 3, (20, 20), seed=1)]
    b = [r.meta["window"] for r in window_records([_rec()] * 3, (20, 20), seed=1)]
    assert a == b
    with pytest.raises(ValueError, match="does not fit"):
        window_record(_rec(), 50, 20, np.random.default_rng(0))
    with pytest.raises(ValueError, match="candidates"):
        window_record(_rec(), 10, 10, np.random.default_rng(0), candidates=0)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_lr_schedule(opt, "cosine", warmup=4, total=12)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0) and lrs[8] == pytest.approx(0.5) and lrs[-1] < 0.05
    assert make_lr_schedule(opt, "constant", 0, 10) is None
    with pytest.raises(ValueError, match="schedule"):
        make_lr_schedule(opt, "step", 0, 10)
