"""Code shared by the Crowd-SDNet notebook generators (make_10/11/12): the run configs built from the parameters."""

#: The notebook cell lines that turn the parameters cell into the shared run config ``base`` (the dataset of the
#: notebook, ``dataset``) and ``common``, the arguments every stand-in shares (schedule, model, data seed).
BASE_CONFIG = """     common = dict(n_train=n_train, image_size=image_size, crop=crop, epochs=epochs, max_steps=max_steps,
                   batch_size=batch_size, lr=lr, width=width, up_width=up_width, skips=skips, prior=prior,
                   warmup_epochs=warmup_epochs, eta=eta, size_norm=size_norm, center_weight=center_weight,
                   data_seed=data_seed, data_root=data_root)
     base = sdnet.experiment_config(dataset=dataset, beta=beta, region_divisor=region_divisor, alpha_cap=alpha_cap,
                                    **common)
"""

#: The lines that build ``others``: one config per stand-in in ``other_sets``, each with its own Table I row and
#: fitted beta, the schedule and model of ``common`` (the sets are trained separately, as the paper's datasets).
OTHER_CONFIGS = """     others = sdnet.stand_in_configs(other_sets, **{**common, "data_root": None})
"""
