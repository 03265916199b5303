"""L2R studies: Table 2 and scarcity settings, the claims restated from the review, the per-seed gain rows."""
from __future__ import annotations

import pandas as pd
import pytest

from crowdlib.methods.l2r import study as l2s
from crowdlib.models.l2r import resolve_freeze_bn
from crowdlib.repro import evaluate_claims
from crowdlib.study import rows_from_long


def test_table2_settings_and_claims():
    s = l2s.table2_settings()
    assert len(s) == 8 and s["multi-task, ImageNet"] == {"paradigm": "multitask", "pretrained": True}
    assert s["multi-task, scratch"] == {"paradigm": "multitask", "pretrained": False}
    # with the default freeze_bn ("pretrained") the scratch rows' networks train batch norm (no statistics to keep)
    # and the ImageNet rows' keep it in eval mode: the rule lives in crowdlib.models.l2r.resolve_freeze_bn alone
    base = {"pretrained": True}
    scratch = l2s.setting_config(base, s["counting only, scratch"], 0)
    imagenet = l2s.setting_config(base, s["counting only, ImageNet"], 0)
    assert scratch["freeze_bn"] == imagenet["freeze_bn"] == "pretrained"
    assert resolve_freeze_bn(scratch["freeze_bn"], scratch["pretrained"]) is False
    assert resolve_freeze_bn(imagenet["freeze_bn"], imagenet["pretrained"]) is True
    claims = l2s.table2_claims()
    assert len(claims) == 4 + 4 and all(c.metric == "MAE" for c in claims)
    assert {c.better for c in claims[:4]} == {"multi-task, ImageNet", "multi-task, scratch"}
    assert len(l2s.table2_claims(inits=["scratch"])) == 2  # no ImageNet rows: no initialisation claim
    with pytest.raises(ValueError, match="paradigm"):
        l2s.table2_settings(paradigms=["rank"])


def test_scarcity_gain_rows_and_claims_evaluate():
    fr = [0.05, 1.0]
    recs = []
    for seed, (c5, m5, c1, m1) in enumerate([(30, 20, 10, 9), (32, 21, 10, 11), (31, 19, 10, 10)]):
        for name, v in ((l2s.fraction_name("count", 0.05), c5), (l2s.fraction_name("multitask", 0.05), m5),
                        (l2s.fraction_name("count", 1.0), c1), (l2s.fraction_name("multitask", 1.0), m1)):
            recs.append({"setting": name, "seed": seed, "metric": "MAE", "value": float(v)})
    long = pd.DataFrame(recs)
    gain = l2s.scarcity_gain_long(long, fr)
    assert gain[gain.setting == "gain @ 5%"]["value"].tolist() == [10.0, 11.0, 12.0]
    rows = rows_from_long(long, "scarcity", None, ["MAE"])
    rows += rows_from_long(gain, "scarcity gain", None, ["MAE gain"], higher_is_better={"MAE gain": True})
    claims = evaluate_claims(rows, l2s.scarcity_claims(fr))
    assert [c.state for c in claims] == ["reproduced", "inconclusive", "reproduced"]
    assert l2s.scarcity_settings([0.1])["multi-task @ 10%"] == {"paradigm": "multitask", "labelled_fraction": 0.1}
    with pytest.raises(ValueError, match="fractions"):
        l2s.scarcity_settings([0.0])
    assert l2s.shb_claims()[0].better == "multi-task"
