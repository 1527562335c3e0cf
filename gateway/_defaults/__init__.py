"""Packaged copies of the repository's ``config/*.toml`` (the defaults, the FX table, the sandbox
template). The files are not kept here in git: ``setup.py``'s ``build_py`` copies them in when a
wheel is built, so an installed ``qrgw`` finds its defaults without the checkout
(``gateway.config.config_dir``)."""
