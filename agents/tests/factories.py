from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from agents.models import Agent, Command, Instance, Replica, SpotPool, SpotPriceSample, Switch, TerminationEvent
from clients.tests.factories import ClientFactory


class SpotPoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SpotPool
        django_get_or_create = ("id",)

    instance_type = "t3.medium"
    az = factory.Iterator(["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"])
    region = "us-east-1"
    id = factory.LazyAttribute(lambda o: f"{o.instance_type}.{o.az}")
    latest_price = Decimal("0.0125")
    latest_price_at = factory.LazyFunction(timezone.now)


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent
        skip_postgeneration_save = True

    client = factory.SubFactory(ClientFactory)
    logical_agent_id = factory.Sequence(lambda n: f"agent-{n}")
    hostname = factory.Sequence(lambda n: f"host-{n}")
    instance_id = factory.Sequence(lambda n: f"i-{n:017x}")
    instance_type = "t3.medium"
    region = "us-east-1"
    az = "us-east-1a"
    current_mode = "spot"
    status = "online"
    agent_version = "4.0.0"
    last_heartbeat_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def with_instance(obj, create, extracted, **kwargs):
        """Give the agent its primary Instance row (pass with_instance=False to skip)."""
        if create and extracted is not False and obj.instance_id:
            Instance.objects.create(
                agent=obj,
                client=obj.client,
                instance_id=obj.instance_id,
                instance_type=obj.instance_type,
                region=obj.region,
                az=obj.az,
                mode=obj.current_mode,
                pool=obj.current_pool,
                started_at=timezone.now() - timedelta(hours=1),
            )


class CommandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Command

    agent = factory.SubFactory(AgentFactory)
    target_mode = "ondemand"
    priority = 50


class SwitchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Switch

    agent = factory.SubFactory(AgentFactory)
    client = factory.SelfAttribute("agent.client")
    old_instance_id = "i-old"
    new_instance_id = factory.Sequence(lambda n: f"i-new{n}")
    old_mode = "ondemand"
    new_mode = "spot"
    savings_impact = Decimal("0.02")
    initiated_at = factory.LazyFunction(timezone.now)


class ReplicaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Replica

    agent = factory.SubFactory(AgentFactory)
    client = factory.SelfAttribute("agent.client")
    instance_id = factory.Sequence(lambda n: f"i-replica{n}")
    replica_type = "emergency"
    status = "ready"


class SpotPriceSampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SpotPriceSample

    pool = factory.SubFactory(SpotPoolFactory)
    price = Decimal("0.0125")
    observed_at = factory.LazyFunction(timezone.now)


class TerminationEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TerminationEvent

    agent = factory.SubFactory(AgentFactory)
    client = factory.SelfAttribute("agent.client")
    instance_id = factory.SelfAttribute("agent.instance_id")
    event_type = "termination_notice"
    notice_key = factory.Sequence(lambda n: f"notice-{n}")
    detected_at = factory.LazyFunction(timezone.now)
