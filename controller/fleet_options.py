"""What fleet commands read from the inventory besides the hosts: Redis and the bus key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from controller.inventory import Host
from hotconf.bus import load_bus_key


def fleet_bus_settings(hosts: Sequence[Host]) -> tuple[str | None, bytes | None]:
    """The Redis URL and shared bus key the selected hosts use.

    The main host's (``connection: local``) settings win; otherwise the URL most
    hosts share. Raises HotconfError when the bus key file is unusable.
    """
    local = [host for host in hosts if host.is_local]
    chosen = local[0] if local else None
    urls = Counter(host.redis_url for host in hosts if host.redis_url)
    redis_url = (chosen.redis_url if chosen and chosen.redis_url else
                 urls.most_common(1)[0][0] if urls else None)
    key_files = [host.bus_key_file for host in ([chosen] if chosen else list(hosts))
                 if host is not None and host.bus_key_file is not None]
    bus_key = load_bus_key(key_files[0]) if key_files else None
    return redis_url, bus_key
