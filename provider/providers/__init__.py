"""CIM class families. Each family is one module with an ``install(registry, env)`` function
that registers its providers (and its profiles through ``env.profiles``)."""
from __future__ import annotations

import importlib

from provider.providers.profiles import ProfileRegistry
from provider.providers.registry import ProviderEnvironment, ProviderRegistry

# Installed in this order; interop first, since it registers Profile Registration, which
# the other families' profiles reference.
# The VM model's families (hpvm_*) read through env.agent and install nothing without one.
FAMILIES = ["provider.providers.interop",
            "provider.providers.hpvm_systems", "provider.providers.hpvm_devices",
            "provider.providers.hpvm_settings", "provider.providers.hpvm_pools",
            "provider.providers.hpvm_capabilities", "provider.providers.hpvm_switches",
            "provider.providers.hpvm_services", "provider.providers.hpvm_devicedb",
            "provider.providers.hpvm_associations", "provider.providers.hpvm_profiles",
            "provider.providers.hpvm_jobs"]


def install_all(registry: ProviderRegistry, env: ProviderEnvironment,
                families: list[str] | None = None) -> ProviderRegistry:
    if env.profiles is None:
        env.profiles = ProfileRegistry()
    for module_name in families or FAMILIES:
        importlib.import_module(module_name).install(registry, env)
    return registry


__all__ = ["FAMILIES", "ProfileRegistry", "ProviderEnvironment", "ProviderRegistry",
           "install_all"]
