"""The exact payloads of the real agents (docs/API.md §1), for the tests."""


def register_v4(*, token, instance_id="i-0aaa1111", logical_agent_id="web-1", mode="spot", az="us-east-1a"):
    return {
        "client_token": token,
        "hostname": "ip-10-0-0-12",
        "instance_id": instance_id,
        "instance_type": "t3.medium",
        "region": "us-east-1",
        "az": az,
        "ami_id": "ami-0abc",
        "agent_version": "4.0.0",
        "logical_agent_id": logical_agent_id,
        "mode": mode,
        "private_ip": "10.0.0.12",
        "public_ip": None,
    }


def register_v3(*, token, instance_id="i-0ccc3333", logical_agent_id="i-0ccc3333"):
    return {
        "client_token": token,
        "hostname": "ip-10-0-0-13",
        "instance_id": instance_id,
        "instance_type": "t3.medium",
        "region": "us-east-1",
        "az": "us-east-1a",
        "ami_id": "ami-0abc",
        "agent_version": "3.2.0",
        "logical_agent_id": logical_agent_id,
    }


def heartbeat(*, instance_id="i-0aaa1111", status="online", mode="spot", az="us-east-1a"):
    return {
        "status": status,
        "monitored_instances": [instance_id],
        "instance_id": instance_id,
        "instance_type": "t3.medium",
        "mode": mode,
        "az": az,
    }


def pricing_v4(*, instance_id="i-0aaa1111", mode="spot", pool_id="t3.medium.us-east-1a",
               collected_at="2026-11-26T19:23:54.196952", prices=None, on_demand=0.0416):
    prices = prices or {"us-east-1a": 0.0125, "us-east-1b": 0.0131, "us-east-1c": 0.0119}
    pools = [
        {"pool_id": f"t3.medium.{az}", "instance_type": "t3.medium", "az": az, "price": p}
        for az, p in prices.items()
    ]
    cheapest = min(pools, key=lambda p: p["price"])
    return {
        "instance": {
            "instance_id": instance_id,
            "instance_type": "t3.medium",
            "region": "us-east-1",
            "az": pool_id.rpartition(".")[2] if pool_id else "us-east-1a",
            "mode": mode,
            "pool_id": pool_id if mode == "spot" else None,
        },
        "pricing": {
            "on_demand_price": on_demand,
            "current_spot_price": prices.get(pool_id.rpartition(".")[2]) if mode == "spot" and pool_id else None,
            "cheapest_pool": {"pool_id": cheapest["pool_id"], "price": cheapest["price"]} if mode == "spot" else None,
            "spot_pools": pools,
            "collected_at": collected_at,
        },
    }


def pricing_v3(*, instance_id="i-0ccc3333", current_mode="spot", on_demand=0.0416):
    return {
        "instance": {
            "instance_id": instance_id,
            "instance_type": "t3.medium",
            "region": "us-east-1",
            "az": "us-east-1a",
            "current_mode": current_mode,
            "current_pool_id": "t3.medium.us-east-1a" if current_mode == "spot" else None,
        },
        "on_demand_price": {"price": on_demand},
        "spot_pools": [
            {"pool_id": "t3.medium.us-east-1a", "instance_type": "t3.medium", "az": "us-east-1a", "price": 0.0125},
            {"pool_id": "t3.medium.us-east-1b", "instance_type": "t3.medium", "az": "us-east-1b", "price": 0.0131},
        ],
    }


def switch_report_v4(*, old_id="i-0aaa1111", new_id="i-0bbb2222", old_mode="ondemand", new_mode="spot",
                     new_az="us-east-1b", old_terminated=True):
    return {
        "old_instance": {"instance_id": old_id, "instance_type": "t3.medium", "region": "us-east-1",
                         "az": "us-east-1a", "ami_id": "ami-1", "mode": old_mode,
                         "pool_id": "t3.medium.us-east-1a" if old_mode == "spot" else None},
        "new_instance": {"instance_id": new_id, "instance_type": "t3.medium", "region": "us-east-1",
                         "az": new_az, "ami_id": "ami-2", "mode": new_mode,
                         "pool_id": f"t3.medium.{new_az}" if new_mode == "spot" else None},
        "snapshot": {"used": True, "ami_id": "ami-2", "ami_name": "SpotOptimizer-i-old-20261126-192327"},
        "prices": {"on_demand": 0.1 if old_mode == "ondemand" else 0.0416,
                   "old_spot": 0.031 if old_mode == "spot" else None,
                   "new_spot": 0.029 if new_mode == "spot" else None},
        "timing": {"switch_initiated_at": "2026-11-26T19:20:00.000000Z", "ami_created_at": "2026-11-26T19:21:00Z",
                   "new_instance_launched_at": "2026-11-26T19:21:30Z", "new_instance_ready_at": "2026-11-26T19:22:30Z",
                   "traffic_switched_at": "2026-11-26T19:22:40Z",
                   "old_instance_terminated_at": "2026-11-26T19:27:40Z" if old_terminated else None},
        "trigger": "manual",
    }


def switch_report_v3(*, old_id="i-0ccc3333", new_id="i-0ddd4444"):
    return {
        "old_instance": {"instance_id": old_id, "instance_type": "t3.medium", "region": "us-east-1",
                         "az": "us-east-1a", "ami_id": "ami-1", "mode": "spot", "pool_id": "t3.medium.us-east-1a"},
        "new_instance": {"instance_id": new_id, "instance_type": "t3.medium", "region": "us-east-1",
                         "az": "us-east-1a", "ami_id": "ami-2", "mode": "ondemand", "pool_id": None},
        "snapshot": {"used": True, "snapshot_id": "snap-1", "volume_id": "vol-1"},
        "prices": {"on_demand": 0.0416, "old_spot": 0.0125, "new_spot": 0.0},
        "timing": {"switch_initiated_at": "2026-11-26T19:20:00", "traffic_switched_at": "2026-11-26T19:22:40"},
        "trigger": "manual",
    }


def termination_v4(*, instance_id="i-0aaa1111", termination_time="2026-11-30T00:02:00Z"):
    """What the v4 agent posts to termination-imminent while the notice is shown (docs/API.md §1.8)."""
    return {"instance_id": instance_id, "termination_time": termination_time, "detected_at": "2026-11-30T00:00:03.243454"}
