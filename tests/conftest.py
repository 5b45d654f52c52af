"""Shared test settings: hypothesis gets a bounded, deterministic budget so the suite stays fast."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "chainrule",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("chainrule")
