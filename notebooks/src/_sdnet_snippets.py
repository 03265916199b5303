"""Code shared by the Crowd-SDNet notebook generators (make_10/11/12): the run config built from the parameters."""

#: The notebook cell lines that turn the parameters cell into the shared run config ``base``.
BASE_CONFIG = """     base = sdnet.experiment_config(dataset=dataset, n_train=n_train, image_size=image_size, crop=crop,
                                    epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr, width=width,
                                    up_width=up_width, skips=skips, beta=beta, region_divisor=region_divisor, prior=prior,
                                    warmup_epochs=warmup_epochs, alpha_cap=alpha_cap, eta=eta, size_norm=size_norm,
                                    center_weight=center_weight, data_seed=data_seed,
                                    data_root=data_root)
"""
