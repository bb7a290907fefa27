"""Go-style channels on anyio memory object streams, counting their own blocking."""

from channels.channel import Channel, ChannelClosed
from channels.stats import ChannelStats

__all__ = ["Channel", "ChannelClosed", "ChannelStats"]
