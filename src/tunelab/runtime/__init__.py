"""Machine capabilities and the one runtime plan (precision, attention, loaders) decided from them."""

from tunelab.runtime.plan import Capabilities, RuntimePlan, apply_global_settings, decide_plan, detect_capabilities

__all__ = ["Capabilities", "RuntimePlan", "apply_global_settings", "decide_plan", "detect_capabilities"]
