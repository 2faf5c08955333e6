"""Spot pools: their ids, regions and rows. Which pool to choose is agents/services/pool_policy.py."""
from agents.models import SpotPool


def pool_id_for(*, instance_type: str, az: str) -> str:
    return f"{instance_type}.{az}"


def region_of_az(az: str) -> str:
    """'us-east-1b' -> 'us-east-1' (an AZ is its region plus one letter, or a local-zone suffix)."""
    if not az or az == "unknown":
        return ""
    parts = az.split("-")
    if len(parts) >= 3 and parts[2] and parts[2][-1].isalpha() and parts[2][:-1].isdigit():
        return "-".join(parts[:2] + [parts[2][:-1]])
    return az.rstrip("abcdefghijklmnopqrstuvwxyz")


def pool_parse_id(pool_id: str) -> tuple[str, str] | None:
    """'t3.medium.us-east-1b' -> ('t3.medium', 'us-east-1b'): the AZ follows the last dot."""
    if not pool_id or "." not in pool_id:
        return None
    instance_type, _, az = pool_id.rpartition(".")
    if not instance_type or not az:
        return None
    return instance_type, az


def pool_get_or_create(*, pool_id: str, instance_type: str = "", az: str = "") -> SpotPool | None:
    parsed = pool_parse_id(pool_id)
    if parsed is None:
        return None
    instance_type = instance_type or parsed[0]
    az = az or parsed[1]
    pool, _ = SpotPool.objects.get_or_create(
        pk=pool_id, defaults={"instance_type": instance_type, "az": az, "region": region_of_az(az)}
    )
    return pool


def pools_ensure(pool_regions: dict[str, str]) -> None:
    """Create the pools (id -> region of the report) that do not exist yet: one INSERT IGNORE, pool-id
    order. Type and AZ come from the id alone: a quote's own fields cannot file a pool under another type."""
    ids = sorted(pool_regions)
    if not ids:
        return
    existing = set(SpotPool.objects.filter(pk__in=ids).values_list("pk", flat=True).order_by())
    new_pools = []
    for pid in ids:
        if pid not in existing:
            instance_type, az = pool_parse_id(pid)
            new_pools.append(SpotPool(id=pid, instance_type=instance_type, az=az,
                                      region=region_of_az(az) or pool_regions[pid]))
    if new_pools:
        SpotPool.objects.bulk_create(new_pools, ignore_conflicts=True)
