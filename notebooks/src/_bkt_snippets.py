"""Code shared by the bi-knowledge transfer notebook generators (make_50..54): the parameters that fix the two
synthetic domains, so that every notebook renders the same source and target scenes (and shares cached runs)."""

#: Parameters of notebooks 50-54 that enter the domain specs (defaults: the smoke profile's values).
DOMAIN_PARAMS = """
domains = {"A": "sha_like", "B": "shb_like"}  # synthetic stand-ins of ShanghaiTech A and B (paper: SHA, SHB; C and Q have no stand-in here)
image_sizes = {"sha_like": [128, 192], "shb_like": [128, 160]}  # height, width in px (presets: 640 x 960 and 768 x 1024 as the datasets; heads scale with the height)
n_train = 6  # training scenes per domain (paper: SHA 300, SHB 400); the source's validation split is carved from them
n_test = 3  # held-out test scenes per domain (paper: SHA 182, SHB 316)
data_seed = {"A": 11, "B": 12}  # training-scene seed per domain
test_seed = {"A": 5011, "B": 5012}  # test-scene seed per domain (fresh: no other notebook renders them)
"""

#: Notebook code (indented as the cells) defining ``domain_spec(key)``.
DOMAIN_CODE = """
     def domain_spec(key):
         \"\"\"The bkt domain spec of domain ``key`` ("A" or "B"): preset, scene counts, seeds and image size.\"\"\"
         preset = domains[key]
         h, w = image_sizes[preset]
         return {"preset": preset, "n": int(n_train), "seed": int(data_seed[key]), "height": int(h), "width": int(w),
                 "test_n": int(n_test), "test_seed": int(test_seed[key])}
     """

IMPORTS = """
     import matplotlib.pyplot as plt
     import numpy as np
     import pandas as pd

     from crowdlib import viz
     from crowdlib.device import apply_thread_limit
     from crowdlib.methods import bkt
     from crowdlib.report import Reporter
     from crowdlib.repro import Claim, Row
     """
