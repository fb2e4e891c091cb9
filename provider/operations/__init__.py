"""DSP0200 operation semantics over the schema and the provider registry."""
from provider.operations.dispatcher import OPERATIONS, Dispatcher, is_write
from provider.operations.pull import PullLimits

__all__ = ["Dispatcher", "OPERATIONS", "PullLimits", "is_write"]
