"""The fleet status route's work: read the inventory, ask every host, shape the answer.

The inventory is read on every call, so an edited inventory takes effect without
restarting serve; it is small, and asking the hosts costs far more.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from controller.api_errors import ApiError
from controller.errors import InventoryError


async def fleet_status_body(inventory_path: Path | None, config_dir: Path) -> dict[str, Any]:
    """The body of ``hotconf status --json`` for every host of the inventory.

    Raises ApiError 503 when there is no usable inventory or bus key.
    """
    # Imported here: asyncssh and redis are loaded only by a server that is asked.
    from controller.fleet_options import fleet_bus_settings
    from controller.inventory import Host, default_inventory_path, load_inventory
    from controller.push import PushOptions, make_target
    from controller.status import fleet_status
    from controller.targets import HostTarget
    from hotconf.errors import HotconfError

    try:
        path = inventory_path if inventory_path is not None else default_inventory_path()
        inventory = await asyncio.to_thread(load_inventory, path)
        redis_url, bus_key = fleet_bus_settings(inventory.hosts)
    except InventoryError as exc:
        raise ApiError(
            503, "no_inventory",
            f"the fleet's inventory is unusable: {exc}. Fix it, or restart serve with -i FILE",
        ) from exc
    except HotconfError as exc:
        raise ApiError(503, "bus_key", f"{exc}; fix the inventory's bus_key_file") from exc

    options = PushOptions(config_dir=config_dir)

    def target(host: Host) -> HostTarget:
        return make_target(host, options)

    status = await fleet_status(
        inventory.hosts, config_dir, redis_url=redis_url, bus_key=bus_key,
        target_factory=target,
    )
    return status.to_dict()
